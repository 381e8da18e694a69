"""Evaluation: how much identity survives a de-identification, how much utility is kept.

>>> from facedeid.evaluate import EvaluationConfig, run_evaluation   # doctest: +SKIP
>>> result = run_evaluation(EvaluationConfig(data="../shared/data",
...                                          methods=["blur:k=5,31"], attackers=["sface"],
...                                          scenarios=["pairs", "self"], limit_pairs=200))
>>> result.metric("accuracy", method="blur", params={"k": 31}, attacker="sface",
...               scenario="pairs", alignment="template")

Submodules: :mod:`.metrics` (EER, DET, AUC, TAR@FMR, rank-k), :mod:`.scenarios`
(naive, reverse, parrot, pairs, self), :mod:`.utility` (SSIM, PSNR, detection kept,
landmark displacement), :mod:`.datasets` (identity folders, LFW pairs files),
:mod:`.spec` (method sweep grammar), :mod:`.results` (configuration, records,
``results.json``), :mod:`.runner` (orchestration), :mod:`.worker` (per-process image
work, process pool), :mod:`.cache` (embedding cache and run store), :mod:`.command`
(``facedeid evaluate`` options), :mod:`.report` (report.md / report.html and figures),
:mod:`.attackers` (recognizers).
Nothing heavy is imported until used.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "EvaluationConfig": "results",
    "EvaluationResult": "results",
    "Record": "results",
    "run_evaluation": "runner",
    "evaluate_main": "command",
    "add_evaluate_arguments": "command",
    "MethodSpec": "spec",
    "parse_method_specs": "spec",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
