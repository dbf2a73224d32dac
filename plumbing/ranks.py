"""Which process of a multi-process launch (torchrun, ``accelerate launch``) this is.

A study under such a launcher runs its training and scoring steps on every rank together
(DDP training, documents split across ranks) and everything that writes shared files (merges,
deviations, tables, the board) on rank 0 alone; these helpers keep the ranks in step.
"""
from __future__ import annotations

import os
import sys


def world_size() -> int:
    """Processes in this launch (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def join_process_group() -> int:
    """This process's rank, the process group started (gloo on CPU, nccl on GPUs) when the
    launch has several processes; accelerate's PartialState, as training and lm-eval use it."""
    if world_size() == 1:
        return 0
    from datetime import timedelta

    import torch
    from accelerate import PartialState

    # The other ranks wait at a barrier while rank 0 alone merges, measures or tabulates, which
    # at the papers' sizes can outlast torch's 30-minute default.
    return PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(hours=12)).process_index


def _group():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def group_size() -> int:
    """Processes in the running process group (1 when none is running)."""
    dist = _group()
    return dist.get_world_size() if dist is not None else 1


def wait_for_all() -> None:
    dist = _group()
    if dist is not None:
        dist.barrier()


def rank_zero_says(value: bool) -> bool:
    """Rank 0's ``value`` on every rank (the broadcast makes the ranks meet): a step's "already
    done" check reads files rank 0 may be writing, so the ranks take one answer rather than each
    its own."""
    dist = _group()
    if dist is None:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def leave_process_group() -> None:
    """Every rank waits for the others, then leaves the process group: a rank that exits first
    (its answers all cached, say) while gloo's threads still run aborts with "terminate called
    without an active exception"."""
    dist = _group()
    if dist is not None:
        dist.barrier()
        dist.destroy_process_group()


def exit_launched_rank(code: int) -> None:
    """End a process of a multi-process launch without the interpreter's teardown, after it
    left the process group: at exit, C++ destructors of torch.distributed's state (gloo's
    threads) can run in an order that aborts ("terminate called without an active
    exception", SIGABRT, no Python frame left), which turned a finished study into a failed
    launch (seen about once in five runs on 2 busy cores). Every result is written and closed
    by then (atomic writes), so only the streams need flushing. A process without a launcher
    returns and exits as usual."""
    if world_size() == 1:
        return
    import logging

    leave_process_group()  # a no-op where the command left it already
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
