"""Re-identification attackers: ``dlib`` (ResNet-29), ``sface``, ``facenet``.

>>> from facedeid.evaluate.attackers import get_attacker
>>> att = get_attacker("sface")          # nothing is loaded until first use
>>> att.metric, round(att.threshold, 3)
('cosine', 0.637)

See :mod:`.base` for the interface and docs/ATTACKERS.md for models,
licences, alignment and measured accuracy.
"""

from __future__ import annotations

from ...registry import Registry
from .base import Attacker

ATTACKERS = Registry("attacker", {
    "dlib": "facedeid.evaluate.attackers.dlib_resnet:DlibResNetAttacker",
    "sface": "facedeid.evaluate.attackers.sface:SFaceAttacker",
    "facenet": "facedeid.evaluate.attackers.facenet:FaceNetAttacker",
})

_instances: dict[str, Attacker] = {}


def get_attacker(name: str, **options) -> Attacker:
    """An attacker by name. Without options the instance is shared (models
    load once per process); with options a new instance is built."""
    if options:
        return ATTACKERS.get(name)(**options)
    if name not in _instances:
        _instances[name] = ATTACKERS.get(name)()
    return _instances[name]


def attacker_names() -> list[str]:
    return ATTACKERS.names()


__all__ = ["ATTACKERS", "Attacker", "attacker_names", "get_attacker"]
