"""Errors of the reversible mode. Messages are one line, name the file, and never
hold key material, passphrases or pixel data."""

from __future__ import annotations

from ..errors import FaceDeidError, InputError


class KeyFileError(FaceDeidError):
    """A key file or passphrase source cannot be used (missing, wrong size, exists already)."""


class PayloadError(InputError):
    """A payload is missing, truncated or malformed (found by the strict parser)."""


class WrongKeyError(FaceDeidError):
    """The key or passphrase opens nothing in this payload."""


class TamperError(FaceDeidError):
    """Authentication failed: the payload, or the de-identified image it belongs to, was
    changed after writing (or the payload belongs to another image)."""


__all__ = ["KeyFileError", "PayloadError", "WrongKeyError", "TamperError"]
