"""Exceptions with messages meant for a user's terminal (one line, names the file)."""


class FaceDeidError(Exception):
    """Base class: a clear, expected failure (bad input, missing model, bad option)."""


class InputError(FaceDeidError):
    """An input file cannot be read: missing, empty, truncated, corrupt, unknown format, too large."""


class OutputError(FaceDeidError):
    """An output cannot be written: not writable, or it would overwrite an input."""


class ModelNotFoundError(FaceDeidError):
    """A model-carrying package is not installed."""


class UnknownNameError(FaceDeidError, KeyError):
    """An unknown detector, method, attacker or region name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
