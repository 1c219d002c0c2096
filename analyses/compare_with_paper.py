"""Print our numbers for analysed canonical runs beside Nanda et al. 2023's.

Usage:
    python analyses/compare_with_paper.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR must have been analysed (``grokinterp analyze RUN_DIR``). The paper's
numbers are those of its main seed at 40k epochs (arXiv 2301.05217; restated in the
project's REFERENCE.md §1). Prints a markdown table, as used in docs/reproduction.md.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

import grokinterp

PAPER = {
    "epochs": "40,000",
    "key frequencies": "14, 35, 41, 42, 52",
    "cluster sizes": "44, 93, 145, 87, 64",
    "neurons explained": "433 / 512 (84.6%)",
    "phases": "memorization 0-1.4k, circuit formation 1.4k-9.4k, cleanup 9.4k-14k",
    "loss on all pairs (final)": "2.41e-7",
}


def loss_all_pairs(run) -> float:
    """Cross-entropy of the final checkpoint on all p^2 pairs, in float64."""
    model = run.model(run.epochs[-1])
    with torch.no_grad():
        logits = model.last_logits(run.tokens).double()
    return F.cross_entropy(logits, run.labels).item()


def ours(run_dir: Path) -> dict[str, str]:
    run = grokinterp.load_run(run_dir)
    summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
    measures = pd.read_csv(run_dir / "analysis" / "measures.csv")
    sizes = summary["cluster_sizes"]
    n, n_un = summary["n_neurons"], summary["n_neurons_unexplained"]
    final = summary["final"]
    gen = summary["first_epoch_test_acc_0.99"]
    # Restricted loss below test loss, epoch by epoch, is the paper's sign that the
    # circuit alone generalizes before the full model does.
    lead = measures[(measures.restricted_loss_test < measures.test_loss / 10)]
    return {
        "epochs": f"{summary['epochs_trained']:,}",
        "key frequencies": ", ".join(map(str, summary["key_frequencies"])),
        "cluster sizes": ", ".join(str(sizes[k]) for k in sorted(sizes, key=int)),
        "neurons explained": f"{n - n_un} / {n} ({100 * (n - n_un) / n:.1f}%)",
        "phases": summary.get("phases_text", "n/a"),
        "loss on all pairs (final)": f"{loss_all_pairs(run):.3g}",
        "first epoch test acc >= 0.99": str(gen),
        "final train / test loss": f"{final['train_loss']:.3g} / {final['test_loss']:.3g}",
        "final restricted loss (all / test)": (
            f"{final['restricted_loss']:.3g} / {final['restricted_loss_test']:.3g}"
        ),
        "final excluded loss (train)": f"{final['excluded_loss']:.3g}",
        "first epoch restricted test loss < test loss / 10": (
            str(int(lead.epoch.iloc[0])) if len(lead) else "never"
        ),
        "Gini W_E / W_L (final)": f"{final['gini_embed']:.2f} / {final['gini_logit']:.2f}",
        "sum of squared weights (initial -> final)": (
            f"{summary['initial']['sum_sq_weights']:.0f} -> {final['sum_sq_weights']:.0f}"
        ),
        "log p (excluded loss of uniform logits)": f"{math.log(run.p):.3g}",
    }


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    runs = {Path(a).name: ours(Path(a)) for a in argv}
    rows = list(dict.fromkeys([*PAPER, *next(iter(runs.values()))]))
    header = ["quantity", "paper (main seed)", *runs]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        cells = [row, PAPER.get(row, ""), *(r.get(row, "") for r in runs.values())]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
