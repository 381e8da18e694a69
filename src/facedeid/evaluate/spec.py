"""Method specifications for ``facedeid evaluate --methods``.

Grammar (one command-line word per method; spaces separate methods)::

    spec    := NAME [ ":" clause ( ":" clause )* ]
    clause  := PARAM "=" values        a named parameter
             | values                  the method's strength parameter (at most once)
    values  := VALUE ( "," VALUE )*    several values = a sweep

``:`` separates clauses, ``,`` separates the values of one parameter, and
``=`` binds a parameter name; none of the three can appear inside a value, so
every spec has exactly one reading. ``;`` is accepted in place of ``:``
(quote it in a shell). Several swept parameters give their cartesian product.

Values are read as int, then float, then ``true``/``false``/``none``, else text.
A parameter that takes a tuple (e.g. a colour) is written with ``+`` between its
components: ``color=255+0+0``.

Examples::

    blur                         defaults
    blur:k=5,15,31               three strengths (``k`` is blur's strength)
    blur:5,15,31                 the same: a bare value list sets the strength
    noise:kind=gaussian:sigma=10,20
    pixelate:k=8,16:shape=box    ``shape``/``mask_scale``/``feather`` set the region
    none                         the untouched baseline (always evaluated anyway)

>>> [s.label for s in parse_method_spec("blur:k=5,15", known={"blur": ("k", ["k"])})]
['blur:k=5', 'blur:k=15']
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..errors import FaceDeidError, UnknownNameError

#: name of the untouched baseline "method"
BASELINE = "none"
#: region options of the Anonymizer that a spec may set per method
REGION_OPTIONS = ("shape", "mask_scale", "feather")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class SpecError(FaceDeidError, ValueError):
    """A method specification that does not follow the grammar."""


@dataclass(frozen=True)
class MethodSpec:
    """One concrete method configuration (one point of a sweep).

    Attributes:
        method: registry name, or ``"none"`` for the baseline.
        params: the parameters the user set (strength included, under its real name).
        region: Anonymizer region options set in the spec (``shape``, ...).
        strength: the name of the method's strength parameter (None if it has none).
    """

    method: str
    params: dict[str, Any] = field(default_factory=dict)
    region: dict[str, Any] = field(default_factory=dict)
    strength: str | None = None

    @property
    def strength_value(self) -> Any:
        return self.params.get(self.strength) if self.strength else None

    @property
    def label(self) -> str:
        """Canonical text form, parseable again (``blur:k=31``)."""
        items = {**self.params, **self.region}
        if not items:
            return self.method
        return self.method + ":" + ":".join(f"{k}={format_value(v)}" for k, v in items.items())

    @property
    def all_params(self) -> dict[str, Any]:
        """``params`` and ``region`` together (what results.json records)."""
        return {**self.params, **self.region}

    def __hash__(self) -> int:
        return hash(self.label)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MethodSpec) and self.label == other.label


def parse_value(text: str) -> Any:
    """``8`` -> 8, ``0.5`` -> 0.5, ``true`` -> True, ``none`` -> None, ``1+2`` -> (1, 2)."""
    if text == "":
        raise SpecError("empty value")
    if "+" in text and not _is_number(text):
        return tuple(parse_value(t) for t in text.split("+"))
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "+".join(format_value(v) for v in value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _method_table(names: Iterable[str] | None = None) -> dict[str, tuple[str | None, list[str]]]:
    """``{name: (strength_param, [param names])}`` from the methods registry."""
    from ..methods import METHODS

    table = {}
    for name in (names if names is not None else METHODS.names()):
        m = METHODS.get(name)
        table[name] = (m.strength, sorted(m.defaults))
    return table


def parse_method_spec(text: str,
                      known: Mapping[str, tuple[str | None, list[str]]] | None = None
                      ) -> list[MethodSpec]:
    """Expand one spec word into its concrete configurations (sweep order kept).

    Args:
        text: e.g. ``"blur:k=5,15,31"``.
        known: ``{method: (strength_param, param_names)}``; default: the registry.

    Raises:
        SpecError: grammar errors, unknown parameters, a strength for a method without one.
        UnknownNameError: an unknown method name.
    """
    text = text.strip()
    if not text:
        raise SpecError("empty method specification")
    name, _, rest = text.partition(":")
    name = name.strip()
    if not _NAME.match(name):
        raise SpecError(f"bad method name '{name}' in '{text}'")
    if name == BASELINE:
        if rest.strip():
            raise SpecError(f"the baseline '{BASELINE}' takes no parameters ('{text}')")
        return [MethodSpec(BASELINE)]
    if known is None:
        from ..methods import METHODS

        if name not in METHODS:
            raise UnknownNameError(
                f"unknown method '{name}' in '{text}'; choose one of: "
                f"{', '.join([BASELINE] + METHODS.names())}")
        known = _method_table([name])
    if name not in known:
        raise UnknownNameError(f"unknown method '{name}' in '{text}'; choose one of: "
                               f"{', '.join([BASELINE] + sorted(known))}")
    strength, param_names = known[name]

    sweeps: dict[str, list[Any]] = {}
    clauses = [c.strip() for c in re.split(r"[:;]", rest)] if rest.strip() else []
    for clause in clauses:
        if not clause:
            raise SpecError(f"empty clause in '{text}' (doubled ':'?)")
        key, eq, values = clause.partition("=")
        if not eq:
            if strength is None:
                raise SpecError(f"method '{name}' has no strength parameter; "
                                f"write PARAM=VALUE in '{text}'")
            key, values = strength, clause
        key = key.strip().replace("-", "_")
        if not _NAME.match(key):
            raise SpecError(f"bad parameter name '{key}' in '{text}'")
        if key not in param_names and key not in REGION_OPTIONS:
            raise SpecError(
                f"method '{name}' has no parameter '{key}' (parameters: "
                f"{', '.join(list(param_names) + list(REGION_OPTIONS))}) in '{text}'")
        if key in sweeps:
            raise SpecError(f"parameter '{key}' given twice in '{text}'")
        parts = [v.strip() for v in values.split(",")]
        if any(p == "" for p in parts):
            raise SpecError(f"empty value for '{key}' in '{text}'")
        sweeps[key] = [parse_value(p) for p in parts]

    keys = list(sweeps)
    out = []
    for combo in itertools.product(*(sweeps[k] for k in keys)):
        params = {k: v for k, v in zip(keys, combo) if k not in REGION_OPTIONS}
        region = {k: v for k, v in zip(keys, combo) if k in REGION_OPTIONS}
        out.append(MethodSpec(name, params, region, strength))
    return out


def parse_method_specs(texts: Iterable[str],
                       known: Mapping[str, tuple[str | None, list[str]]] | None = None,
                       with_baseline: bool = True) -> list[MethodSpec]:
    """Expand several spec words; duplicates dropped; baseline ``none`` first.

    >>> known = {"blur": ("k", ["k"]), "noise": ("amount", ["amount", "kind"])}
    >>> [s.label for s in parse_method_specs(["blur:5,9", "noise:kind=salt:amount=10"], known)]
    ['none', 'blur:k=5', 'blur:k=9', 'noise:kind=salt:amount=10']
    """
    specs: list[MethodSpec] = [MethodSpec(BASELINE)] if with_baseline else []
    for text in texts:
        # a word may itself hold several specs separated by whitespace (quoted lists)
        for word in str(text).split():
            for spec in parse_method_spec(word, known):
                if spec not in specs:
                    specs.append(spec)
    if not specs:
        raise SpecError("no methods given")
    return specs


def spec_payload(spec: MethodSpec) -> dict:
    """What a worker needs to build the method (JSON-ready)."""
    from .results import json_safe as _json

    return {"method": spec.method, "params": _json(spec.params),
            "region": _json(spec.region)}


def validate_specs(specs: list[MethodSpec], detector: str | None, threshold: float | None,
                   region: dict[str, Any]) -> dict[str, dict]:
    """Build each method's Anonymizer once (cheap: models load lazily) and paint one
    synthetic face, so that a bad name or value fails before a long run starts.

    Returns ``{label: {"params", "region", "fallback"}}``: what each configuration
    resolved to (recorded in ``results.json``; part of the cache key).
    """
    from ..pipeline import Anonymizer
    from .results import json_safe

    resolved = {}
    for spec in specs:
        if spec.method == BASELINE:
            resolved[spec.label] = {}
            continue
        reg = {**region, **spec.region}
        try:
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.params.items()}
            anon = Anonymizer(method=spec.method, detector=detector, threshold=threshold,
                              **reg, **params)
        except UnknownNameError:
            raise
        except (TypeError, ValueError) as exc:
            raise SpecError(f"method spec '{spec.label}': {exc}") from None
        _dry_run(anon, spec)
        resolved[spec.label] = {"params": json_safe({k: v for k, v in anon.params.items()
                                                     if k != "rng"}),
                                "region": reg, "fallback": anon.fallback.name}
    return resolved


def _dry_run(anon, spec: MethodSpec) -> None:
    """Paint one synthetic face, so that a bad parameter value fails now, not mid-run."""
    import numpy as np

    from ..types import Face

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    face = Face(box=(24, 20, 72, 80), score=1.0,
                landmarks5=[[36, 42], [60, 42], [48, 54], [38, 66], [58, 66]])
    try:
        anon.anonymize(img, faces=[face])
    except (TypeError, ValueError) as exc:
        raise SpecError(f"method spec '{spec.label}': {exc}") from None
