"""Name -> implementation registries with lazy imports.

A registry maps a public name to ``"module:attribute"``; the module is imported
only when the name is first used, so ``import facedeid`` loads no model and no
heavy backend.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import UnknownNameError


class Registry:
    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self._entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def register(self, name: str, target: str | Any) -> None:
        """Add an entry: ``"pkg.module:attr"`` or the object itself."""
        self._entries[name] = target

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Any:
        try:
            target = self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'; choose one of: {', '.join(self.names())}"
            ) from None
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target
