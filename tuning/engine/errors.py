"""The engine's errors: each message names the cause, so a job log can show it as is."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class BadInput(EngineError):
    """The caller's input cannot be used (empty set, missing or foreign adapter, over-long rows...)."""


class TrainingDiverged(EngineError):
    """The loss became NaN or infinite; the run stopped and wrote nothing."""


class Cancelled(EngineError):
    """The progress callback asked to stop; nothing partial was left behind."""
