"""Progress events for the caller's callback, with ETA, and the caller's request to stop.

The callback receives a plain dict (see docs/engine.md) and may return True to ask the engine
to stop; the engine then raises Cancelled at the end of the current step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tuning.engine.errors import Cancelled

ProgressCallback = Callable[[dict], "bool | None"]


class Reporter:
    """Sends events for one phase of work (``total`` steps) and remembers a stop request."""

    def __init__(self, callback: ProgressCallback | None, *, phase: str, total: int, start: int = 0):
        self.callback = callback
        self.phase = phase
        self.total = max(int(total), 1)
        self.start_step = start
        self.last_step = start
        self.started = time.perf_counter()

    def eta(self, step: int) -> float | None:
        done = step - self.start_step
        if done <= 0:
            return None
        elapsed = time.perf_counter() - self.started
        return round(elapsed / done * (self.total - step), 1)

    def event(self, step: int, **fields: Any) -> dict:
        return {
            "phase": self.phase,
            "step": step,
            "total_steps": self.total,
            "progress": round(min(step / self.total, 1.0), 6),
            "eta_s": self.eta(step),
            **fields,
        }

    def send(self, step: int, **fields: Any) -> dict:
        """Send an event; raise Cancelled if the callback asks to stop."""
        self.last_step = step
        event = self.event(step, **fields)
        if self.callback is not None and self.callback(event) is True:
            raise Cancelled(f"stopped on request during {self.phase} at step {step} of {self.total}")
        return event

    def message(self, text: str) -> None:
        """A log line, sent as an event of this phase (it can also stop the work)."""
        event = self.event(self.last_step, message=text)
        if self.callback is not None and self.callback(event) is True:
            raise Cancelled(f"stopped on request during {self.phase}")
