"""Explicit helpers for PyTorch DDP (``torchrun``), in the style of DINO/MAE's ``utils``.

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything is one process and these
helpers are no-ops. ``train.batch_size`` is always the *global* batch: each of the W processes
takes its own B/W slice of the same globally drawn batch, so k steps on W processes give the
weights of one process with batch B (DDP averages the gradients of equal-sized slices).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(device_kind: str) -> None:
    """Join the process group that torchrun describes in the environment (once)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return
    backend = "nccl" if device_kind == "cuda" else "gloo"
    if device_kind == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_max(t: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of ``t`` over processes, in place (no gradient: for running statistics)."""
    if is_distributed():
        dist.all_reduce(t)
        t /= world_size()
    return t


def average_gradients(params) -> None:
    """Mean of each parameter's gradient over processes (for updates DDP does not manage)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or not is_distributed():
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward returns each process the gradient of its own slice, summed
    over processes (every process computes the loss on the gathered tensor)."""

    @staticmethod
    def forward(ctx, x):
        out = [torch.zeros_like(x) for _ in range(world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        g = torch.stack(grads)
        dist.all_reduce(g)
        return g[rank()]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every process along dim 0, keeping gradients (for contrastive
    losses that use every process's negatives)."""
    if not is_distributed() or world_size() == 1:
        return x
    return torch.cat(_GatherWithGrad.apply(x), dim=0)
