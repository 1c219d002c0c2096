"""Training side of the benchmark: both trainers side by side, FLOPs, matmul peak."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import reference_trainer
import torch

from grokinterp.config import RunConfig
from grokinterp.tasks import make_split


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median(values) -> float:
    return float(statistics.median(values))


def fast_setup(config: RunConfig, device: str, dtype=torch.float32):
    """grokinterp's trainer, without a run directory (nothing is saved)."""
    from grokinterp.training import _Trainer

    # The run directory is never written: the benchmark does not call save().
    trainer = _Trainer(Path("unused-run-dir"), config, make_split(config.task))
    trainer.model.to(dtype)
    trainer.pending = []
    return trainer


def fast_epoch(trainer) -> None:
    """The body of ``_Trainer.run`` for an epoch without a checkpoint."""
    train_loss, train_acc = trainer.forward_train()
    test_loss, test_acc = trainer.evaluate_test()
    trainer.pending.append(torch.stack([train_loss.detach(), train_acc, test_loss, test_acc]))
    trainer.step(train_loss)
    trainer.epoch += 1


def fast_losses(trainer) -> list[float]:
    return [float(row[0]) for row in trainer.pending]


def train_side_by_side(
    config: RunConfig, epochs: int, block: int, device: str, dtype=torch.float32
) -> dict:
    """Both trainers from the same weights, alternating blocks of ``block`` epochs.

    Returns per-epoch times of each block and the train losses of every epoch.
    """
    fast = fast_setup(config, device, dtype)
    ref = reference_trainer.setup(config, device, dtype)
    ref_rows, fast_times, ref_times = [], [], []
    for start in range(0, epochs, block):
        n = min(block, epochs - start)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            fast_epoch(fast)
        sync(device)
        t1 = time.perf_counter()
        for _ in range(n):
            ref_rows.append(reference_trainer.train_epoch(ref))
        sync(device)
        t2 = time.perf_counter()
        fast_times.append((t1 - t0) / n)
        ref_times.append((t2 - t1) / n)
    return {
        "fast_times": fast_times,
        "ref_times": ref_times,
        "fast_loss": fast_losses(fast),
        "ref_loss": [r["train_loss"] for r in ref_rows],
    }


def rel_diff(a, b) -> list[float]:
    return [abs(x - y) / max(abs(y), 1e-300) for x, y in zip(a, b, strict=True)]


def loss_agreement(fast_loss, ref_loss, tol) -> dict:
    rel = rel_diff(fast_loss, ref_loss)
    over = [i for i, r in enumerate(rel) if r > tol]
    return {
        "max_rel": max(rel),
        "max_rel_epoch": rel.index(max(rel)),
        "first_epoch_over_tol": over[0] if over else None,
        "rel_at": {e: rel[e] for e in (0, 5, 10, 20, 50, 100, 150, 199) if e < len(rel)},
    }


def training_flops(
    p: int, n_train: int, n_test: int, d_model=128, n_heads=4, d_head=32, d_mlp=512, n_ctx=3
) -> dict:
    """Multiply-add FLOPs (2 per MAC) of one epoch, useful and as the reference runs it.

    Useful: what the result needs, the last position only (keys and values of the
    other positions come from per-token tables). Backward costs twice the forward.
    """
    hd = n_heads * d_head
    last = (
        2 * n_heads * n_ctx * d_head * 2  # scores and pattern @ values
        + 2 * hd * d_model  # W_O
        + 2 * 2 * d_model * d_mlp  # W_in and W_out
        + 2 * d_model * p  # W_U
    )
    tables = 2 * (p + 1) * d_model * hd * (2 * n_ctx + 1)  # K, V per position, Q
    useful = 3 * (n_train * last + tables) + n_test * last + tables
    full = n_ctx * (
        3 * 2 * d_model * hd  # Q, K, V projections
        + 2 * 2 * n_heads * n_ctx * d_head  # every query, every key
        + 2 * hd * d_model
        + 2 * 2 * d_model * d_mlp
        + 2 * d_model * p
    )
    reference = 3 * n_train * full + n_test * full
    return {
        "useful": float(useful),
        "reference": float(reference),
        "per_sample_forward": float(last),
    }


def matmul_peak(device: str, n: int = 2048, reps: int = 5) -> float:
    """GFLOP/s of a large float32 matmul: the practical peak of this machine."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times) / 1e9


def profile_fast_epoch(config: RunConfig, device: str, epochs: int = 5) -> str:
    """torch.profiler table of grokinterp's epoch, top operators by self time."""
    from torch.profiler import ProfilerActivity, profile

    trainer = fast_setup(config, device)
    for _ in range(3):
        fast_epoch(trainer)
    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(epochs):
            fast_epoch(trainer)
    key = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=18)
