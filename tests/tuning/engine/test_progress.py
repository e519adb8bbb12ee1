"""Progress events: the contract's keys, and a callback's request to stop."""

from __future__ import annotations

import pytest

from tuning.engine.errors import Cancelled
from tuning.engine.progress import Reporter


def test_events_carry_the_contract_keys():
    events = []
    reporter = Reporter(events.append, phase="train", total=4)
    reporter.send(1, loss=0.5)
    reporter.send(2, loss=0.4)
    assert set(events[1]) >= {"phase", "step", "total_steps", "progress", "eta_s", "loss"}
    assert events[1]["progress"] == 0.5
    assert events[1]["eta_s"] >= 0


def test_returning_true_stops_with_cancelled():
    reporter = Reporter(lambda event: event["step"] == 2, phase="train", total=5)
    reporter.send(1)
    with pytest.raises(Cancelled, match="step 2 of 5"):
        reporter.send(2)


def test_a_message_is_an_event_of_its_phase():
    events = []
    reporter = Reporter(events.append, phase="prepare", total=3)
    reporter.send(1)
    reporter.message("3 rows truncated")
    assert events[-1]["message"] == "3 rows truncated"
    assert events[-1]["phase"] == "prepare" and events[-1]["step"] == 1
