"""Several processes training one adapter together (data parallel), or just this one.

``accelerate launch --num_processes N -m tuning.engine dpo ...`` (or ``torchrun``) starts N copies
of the engine; each learns its place (rank) from the environment the launcher sets, and
``join()`` connects them through ``accelerate.PartialState`` (NCCL between cards, gloo on CPU).
The training loop then splits each optimiser step's fixed micro-batches between the ranks, sums
their gradients, and gathers their metrics, so N processes compute the same steps, the same
global batch and the same numbers as one process does alone.

A process that was not launched that way gets ``SINGLE``, whose methods do nothing and cost
nothing: a one-process run neither imports accelerate nor talks to anyone.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tuning.engine.errors import BadInput
from tuning.engine.progress import ProgressCallback


def launched_world_size() -> int:
    """How many processes the launcher started (1 when there is no launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """Whether this process speaks for the run (rank 0, or the only process)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def step_share(micro: Sequence[Sequence[int]], rank: int, world: int) -> list[tuple[int, list[int]]]:
    """This rank's part of one optimiser step: ``(position in the step, pair indices)`` items.

    With at least as many micro-batches as ranks, each rank takes whole micro-batches, dealt in
    turn, so every forward pass is exactly the one a single process runs. With fewer, the ranks
    that share a micro-batch split its pairs into contiguous parts; the loss then divides by the
    whole micro-batch's size, so the summed gradient is still the single-process one.
    """
    if world <= 1:
        return [(position, list(indices)) for position, indices in enumerate(micro)]
    if len(micro) >= world:
        return [(position, list(micro[position])) for position in range(rank, len(micro), world)]
    position = rank % len(micro)
    sharers = [r for r in range(world) if r % len(micro) == position]
    part, parts = sharers.index(rank), len(sharers)
    indices = list(micro[position])
    start, end = part * len(indices) // parts, (part + 1) * len(indices) // parts
    return [(position, indices[start:end])] if end > start else []


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run, and the few collective operations training needs.

    Every collective must be called by all ranks in the same order; the training loop does so by
    calling them at the same points whatever share of work a rank had.
    """

    rank: int = 0
    world: int = 1
    # This rank's device when several run (its own card, or the CPU); None for one process.
    device: str | None = None
    # Where collective tensors live: the card for NCCL, the CPU for gloo.
    comm_device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world > 1

    def step_share(self, micro: Sequence[Sequence[int]]) -> list[tuple[int, list[int]]]:
        """This rank's part of one step's micro-batches (see ``step_share``)."""
        return step_share(micro, self.rank, self.world)

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
        if not self.several:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, value)
        return gathered

    def sum_(self, tensor):
        """Sum ``tensor`` over the ranks (every rank gets the sum); returns it on its device."""
        if not self.several:
            return tensor
        import torch.distributed as dist

        moved = tensor.to(self.comm_device)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM)
        return moved.to(tensor.device)

    def sum_gradients(self, params: Sequence[Any]) -> None:
        """Replace each parameter's gradient with its sum over the ranks (one flat all_reduce).

        Each rank's loss is already divided by the whole step's size, so the sum is the gradient
        one process would have. A rank with no pairs this step contributes zeros.
        """
        if not self.several:
            return
        import torch

        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        # Summed in fp32 whatever the parameters' dtype, so N ranks round no worse than one.
        flat = torch.cat([param.grad.detach().float().reshape(-1) for param in params])
        flat = self.sum_(flat)
        offset = 0
        for param in params:
            count = param.grad.numel()
            param.grad.copy_(flat[offset : offset + count].view_as(param.grad))
            offset += count

    def broadcast_parameters(self, params: Sequence[Any]) -> None:
        """Make every rank start from rank 0's weights (they agree already; this guarantees it)."""
        if not self.several:
            return
        import torch
        import torch.distributed as dist

        with torch.no_grad():
            for param in params:
                moved = param.data.to(self.comm_device)
                dist.broadcast(moved, src=0)
                param.data.copy_(moved.to(param.device))

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag``, on every rank."""
        if not self.several:
            return flag
        import torch
        import torch.distributed as dist

        value = torch.tensor([1 if flag else 0], device=self.comm_device)
        dist.broadcast(value, src=0)
        return bool(value.item())

    def relay(self, callback: ProgressCallback | None) -> ProgressCallback | None:
        """A progress callback that only rank 0 really calls; its answer (stop or go) reaches all.

        The returned callback is a collective: every rank must call it for the same events,
        which the engine does since the ranks walk through the same steps.
        """
        if not self.several:
            return callback

        def relayed(event: dict) -> bool:
            stop = False
            if self.is_main and callback is not None:
                stop = callback(event) is True
            return self.agree(stop)

        return relayed


SINGLE = Ranks()


def join(device: str | None = None) -> Ranks:
    """This process's ``Ranks``: ``SINGLE`` unless a launcher started several processes.

    With several, each rank trains on its own card (CUDA) or on the CPU (no CUDA, or
    ``device="cpu"``); ``device="auto"`` (one model spread over all cards) cannot be combined.
    """
    if launched_world_size() <= 1:
        return SINGLE
    if device is not None and str(device) == "auto":
        raise BadInput(
            "device 'auto' spreads one model over all of this host's cards; it cannot be combined "
            "with several processes (launch one process, or give each process its own card)"
        )
    import torch
    from accelerate import PartialState

    # accelerate sets up gloo only when told to run on the CPU; left alone on a machine without
    # CUDA it would silently treat every process as a lone one.
    cpu = (device is not None and str(device) == "cpu") or not torch.cuda.is_available()
    state = PartialState(cpu=cpu)
    if state.num_processes <= 1:
        return SINGLE
    own = "cpu" if cpu else str(state.device)
    return Ranks(
        rank=state.process_index,
        world=state.num_processes,
        device=own,
        comm_device=own,
    )


def leave(*, together: bool = False) -> None:
    """Close the process group, if one was opened (so the launcher sees a clean exit).

    When every rank stopped `together` at the same point (a run done, cancelled or diverged), the ranks
    first wait for each other: a rank that tore gloo down while another still talked to it
    sometimes died with SIGABRT ("terminate called without an active exception") after training
    was done. Not after other errors: a rank that failed alone would wait there for ranks still
    inside a step.
    """
    if launched_world_size() <= 1:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def launch(engine_args: Sequence[str], processes: int) -> int:
    """Run ``python -m tuning.engine <engine_args>`` as ``processes`` ranks on this host.

    The same machinery as ``torchrun --standalone`` (and ``accelerate launch --multi_gpu``, which
    calls it), but the exit status is the failing rank's own (2 bad input, 3 diverged, 130
    stopped) rather than the launcher's 1, so a caller can tell the causes apart.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=processes,
        run_id=str(uuid.uuid4()),
        # A rendezvous on a free local port, as torchrun --standalone does.
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        # A failed rank fails the run: restarting would repeat a bad input or a divergence.
        max_restarts=0,
    )
    from torch.distributed.elastic.multiprocessing import SignalException

    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", "tuning.engine", *engine_args)
    except ChildFailedError as error:
        _, failure = error.get_first_failure()
        # A rank killed by a signal reports minus the signal's number; shells say 128 + it.
        return failure.exitcode if failure.exitcode >= 0 else 128 - failure.exitcode
    except SignalException as error:
        # The launcher itself was signalled (SIGINT: a stop request). It has passed the signal on
        # to every rank, which stop at the end of their step, and waited for them; say so as a
        # shell would (130 for SIGINT) rather than with a traceback.
        return 128 + int(error.sigval)
    return 0


# prctl(2) option: the signal this process gets when the thread that started it dies.
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux; elsewhere nothing).

    A job runner that starts the engine sets this (``--die-with-parent``) so a worker killed
    outright (OOM, SIGKILL, a lost container) leaves no training behind that would keep writing
    into the job's folders while a retry runs. The ranks of ``--processes`` inherit the flag, so
    they die with their launcher in turn.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return
    # The parent may have died before prctl took effect; then this process was already
    # re-parented and nobody would kill it.
    if os.getppid() != parent or parent == 1:
        os._exit(128 + int(signal.SIGKILL))
