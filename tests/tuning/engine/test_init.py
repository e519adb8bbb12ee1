"""The engine package is cheap to import: torch and friends load only when work starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ENTRY_MODULES = (
    "tuning.engine",
    "tuning.engine.loading",
    "tuning.engine.adapters",
    "tuning.engine.generation",
    "tuning.engine.dpo",
    "tuning.engine.reward",
    "tuning.engine.rejection",
    "tuning.engine.evaluation",
    "tuning.engine.cli",
)


def test_importing_the_entry_modules_loads_no_torch():
    code = "import sys\n" + "".join(f"import {m}\n" for m in ENTRY_MODULES) + (
        "print(sorted(m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_package_docstring_names_every_entry_point():
    import tuning.engine

    doc = tuning.engine.__doc__
    for name in ("load_base", "load_policy", "generate", "train_dpo", "implicit_rewards", "train_reward_model",
                 "score", "rejection_sample", "preference_accuracy", "before_after", "drift_kl"):
        assert name in doc
