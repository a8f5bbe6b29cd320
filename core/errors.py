"""Errors the engine raises for bad input; each carries a one-line, human message."""

from __future__ import annotations


class LstmTuiError(Exception):
    """Base for every error caused by the user's input rather than a bug."""


class CorpusError(LstmTuiError):
    """The text to train on cannot be used (missing, empty, binary, undecodable...)."""


class ConfigError(LstmTuiError):
    """A setting is out of range (sizes <= 0, negative temperature, ...)."""


class CheckpointError(LstmTuiError):
    """A checkpoint file is missing, corrupt, of another version or does not match."""
