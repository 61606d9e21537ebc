"""Data-parallel helpers: which process am I in a torchrun job."""
from __future__ import annotations

import os
import sys


def distributed_context() -> tuple[int, int]:
    """``(rank, world_size)``; joins the gloo process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def is_main_process() -> bool:
    """False on the ranks > 0 of a torchrun job: only rank 0 writes files. Before the
    process group is joined, torchrun's ``RANK`` says (so a second rank never takes the
    output's training lock, which it would find held on a shared file system)."""
    dist = sys.modules.get("torch.distributed")  # a process that never loaded it has no process group
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0
