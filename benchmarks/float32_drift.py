"""How far two float32 runs of the same reference trainer drift apart.

The training target of docs/performance.md asks grokinterp's and the reference's
float32 train losses to agree within 1e-3 relative for 200 epochs. This script asks
how well the reference agrees with itself under the smallest changes there are:

- ``threads``: the same run with another torch thread count (the matrix products may
  partition their sums differently);
- ``ulp``: every initial weight moved by one float32 unit in the last place
  (``torch.nextafter``), a relative change of at most 1.2e-7, the size of one
  rounding.

    .venv/bin/python benchmarks/float32_drift.py --epochs 200

For each it prints the largest relative train-loss difference from the unchanged
run, the epoch where it occurs, and the first epoch where it exceeds 1e-3.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from reference_trainer import setup, train_epoch

from grokinterp.config import RunConfig


def drift(a: list[float], b: list[float], tol: float = 1e-3) -> dict:
    """Largest relative difference of two loss curves, and where it first tops ``tol``."""
    rel = [abs(x - y) / abs(y) for x, y in zip(a, b, strict=True)]
    worst = max(range(len(rel)), key=rel.__getitem__)
    first = next((i for i, r in enumerate(rel) if r > tol), None)
    return {"max_rel": rel[worst], "at_epoch": worst, "first_above_tol": first, "tol": tol}


def train_losses(config: RunConfig, epochs: int, threads: int, nudge: bool) -> list[float]:
    """Float32 train losses of the reference; ``nudge`` moves each weight one ulp up."""
    torch.set_num_threads(threads)
    run = setup(config)
    if nudge:
        with torch.no_grad():
            for param in run["model"].parameters():
                if param.requires_grad:  # the frozen zero biases stay zero
                    param.copy_(torch.nextafter(param, torch.full_like(param, float("inf"))))
    return [train_epoch(run)["train_loss"] for _ in range(epochs)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--p", type=int, default=113)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--threads", type=int, nargs=2, default=(1, 2))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    config = RunConfig().replace(p=args.p)
    one, other = args.threads
    start = time.perf_counter()
    curves = {"base": train_losses(config, args.epochs, one, nudge=False)}
    curves["threads"] = train_losses(config, args.epochs, other, nudge=False)
    curves["ulp"] = train_losses(config, args.epochs, one, nudge=True)
    result = {"p": args.p, "epochs": args.epochs, "thread_counts": [one, other]}
    for name in ("threads", "ulp"):
        result[name] = drift(curves[name], curves["base"])
        for epoch in (5, 10, 20, 50, 100):
            if epoch < args.epochs:
                a, b = curves[name][epoch], curves["base"][epoch]
                result[name][f"rel_at_{epoch}"] = abs(a - b) / abs(b)
    result["seconds"] = time.perf_counter() - start
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**result, "losses": curves}, f)


if __name__ == "__main__":
    main()
