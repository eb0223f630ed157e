"""Data-parallel training through ``torchrun``, invisible to the loop's reader.

Launched with ``torchrun --nproc_per_node N script.py``, each process sees
RANK / WORLD_SIZE / LOCAL_RANK in its environment. ``setup`` joins the group
(gloo on CPU, nccl on CUDA). Every rank draws the same global batch from the
same seeded generator and keeps its own slice of rows, so N processes see
exactly the batch one process would; DistributedDataParallel averages the
gradients, so the update is the same as one process's (up to float rounding).
Run without torchrun, everything here is a no-op.
Built in: notebooks/11_training_loop.ipynb (described; a notebook is one
process).
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_type: str) -> DistInfo:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(
        int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))
    )
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return info


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_slice(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's rows of a global batch. Shapes: (B, T) -> (B / N, T)."""
    if not info.enabled:
        return x
    per = x.shape[0] // info.world_size
    return x[info.rank * per : (info.rank + 1) * per]


def mean_over_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of a scalar tensor over all ranks (itself with one process)."""
    if not info.enabled:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


def wrap(model: torch.nn.Module, info: DistInfo, device: torch.device):
    """DistributedDataParallel around the model on more than one process."""
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
