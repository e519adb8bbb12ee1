"""Run under a launcher (two ranks): a cancel asked on rank 0, then a NaN loss, must stop every rank.

Each rank writes what happened to it into ``<out>/rank-<N>.json``; the test reads them.
Usage: ``torchrun --standalone --nproc_per_node 2 ranks_stop_together.py MODEL OUT``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from tests.tuning.engine.data.pairs import polite_rude_pairs  # noqa: E402
from tuning.engine.distributed import leave  # noqa: E402
from tuning.engine.dpo import train_dpo  # noqa: E402
from tuning.engine.errors import Cancelled, TrainingDiverged  # noqa: E402

FAST = {"batch_size": 4, "learning_rate": 1e-2, "lora": {"r": 4, "alpha": 8}}


def outcome(**kwargs) -> str:
    try:
        train_dpo(source=model, rows=polite_rude_pairs(16), **kwargs)
    except (Cancelled, TrainingDiverged) as error:
        return f"{type(error).__name__}: {error}"
    return "finished"


model, out = sys.argv[1], Path(sys.argv[2])
seen: list[dict] = []


def stop_at_step_2(event: dict) -> bool:
    # Only rank 0's callback is called; the others learn its answer.
    seen.append(event)
    return event["phase"] == "train" and event["step"] == 2


cancelled = outcome(
    output_dir=out / "cancelled",
    config={**FAST, "checkpoint_every": 1},
    checkpoint_dir=out / "checkpoints",
    progress=stop_at_step_2,
)
diverged = outcome(output_dir=out / "diverged", config={**FAST, "learning_rate": 1e30, "max_grad_norm": 0.0, "epochs": 3})
(out / f"rank-{os.environ['RANK']}.json").write_text(
    json.dumps({"cancelled": cancelled, "diverged": diverged, "events": len(seen)})
)
# As the engine's command line does: both ranks wait, then close the process group. A rank that
# exits with gloo still open can die with SIGABRT on the way out.
leave(together=True)
