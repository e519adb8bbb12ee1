"""Settings read in a fresh interpreter, as a process starting with that environment would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOW = "from django.conf import settings; print(settings.PREFLOOP_TRAIN_PROCESSES, repr(settings.PREFLOOP_TRAIN_DEVICE))"


def _settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFLOOP_TRAIN_")}
    return subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
    )


def test_training_runs_in_the_workers_process_on_the_engines_device_by_default():
    done = _settings()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "''"]


def test_training_processes_and_device_come_from_the_environment():
    done = _settings(PREFLOOP_TRAIN_PROCESSES="4", PREFLOOP_TRAIN_DEVICE="cuda")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", "'cuda'"]


def test_nonsense_training_settings_stop_the_start():
    assert "PREFLOOP_TRAIN_PROCESSES must be 1 or more" in _settings(PREFLOOP_TRAIN_PROCESSES="0").stderr
    both = _settings(PREFLOOP_TRAIN_PROCESSES="2", PREFLOOP_TRAIN_DEVICE="auto")
    assert both.returncode != 0 and "cannot be combined" in both.stderr
