"""Analyse a run directory end to end and write ``RUN_DIR/analysis``.

Writes ``measures.csv`` (one row per checkpoint), ``summary.json`` and the standard
figures. Everything is computed before anything is written, and each file is written
atomically, so a failure (a corrupt checkpoint, say) leaves earlier results intact.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from grokinterp.analysis.measures import LOGIT_COLUMNS, Analysis, analyze
from grokinterp.runs import Run, atomic_write_text

log = logging.getLogger(__name__)

ACC_LEVEL = 0.99
FINAL_COLUMNS = (
    *LOGIT_COLUMNS,
    "gini_embed",
    "gini_logit",
    "sum_sq_weights",
)


def first_epoch_at(table: pd.DataFrame, column: str, level: float = ACC_LEVEL) -> int | None:
    """First epoch at which ``column`` reaches ``level``, or None."""
    hits = table.loc[table[column] >= level, "epoch"]
    return None if hits.empty else int(hits.iloc[0])


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def build_summary(run: Run, analysis: Analysis, phases=None) -> dict:
    """The JSON summary of an analysed run."""
    measures = analysis.measures
    clusters = analysis.clusters
    metrics = run.metrics
    per_epoch = metrics if len(metrics) else measures  # per-epoch log is denser
    final = measures.iloc[-1]
    first = measures.iloc[0]
    summary = {
        "run": str(run.path),
        "p": run.p,
        "preset": run.config.preset,
        "epochs_trained": int(measures["epoch"].max()),
        "finished": run.finished,
        "n_checkpoints": len(measures),
        "key_frequencies": clusters.key_frequencies,
        "cluster_sizes": {str(k): v for k, v in clusters.cluster_sizes.items()},
        "n_neurons": int(clusters.cluster.numel()),
        "n_neurons_unexplained": clusters.n_unexplained,
        "fraction_neurons_explained": clusters.fraction_explained,
        "cluster_threshold": clusters.threshold,
        "first_epoch_train_acc_0.99": first_epoch_at(per_epoch, "train_acc"),
        "first_epoch_test_acc_0.99": first_epoch_at(per_epoch, "test_acc"),
        "final": {col: _finite(final[col]) for col in FINAL_COLUMNS},
        "initial": {col: _finite(first[col]) for col in FINAL_COLUMNS},
    }
    if phases is not None:
        summary["phases"] = phases.to_dict()
        summary["phases_text"] = phases.describe()
    elif not np.isfinite(measures.drop(columns="epoch").to_numpy(dtype=float)).all():
        summary["phases_text"] = (
            "not detected: some measures are NaN or infinite (the run diverged?)"
        )
    return summary


def describe(summary: dict) -> str:
    """A few lines for a human, printed by ``grokinterp analyze``."""
    f, i = summary["final"], summary["initial"]
    keys = ", ".join(map(str, summary["key_frequencies"])) or "none"
    n, n_un = summary["n_neurons"], summary["n_neurons_unexplained"]
    lines = [
        f"run {summary['run']}: p = {summary['p']}, {summary['epochs_trained']} epochs, "
        f"{summary['n_checkpoints']} checkpoints",
        f"key frequencies: {keys} ({n - n_un} of {n} neurons explained, "
        f"{100 * summary['fraction_neurons_explained']:.1f}%)",
        f"train acc >= 0.99 {_at_epoch(summary['first_epoch_train_acc_0.99'])}; "
        f"test acc >= 0.99 {_at_epoch(summary['first_epoch_test_acc_0.99'])}",
    ]
    if "phases_text" in summary:
        lines.append(f"phases: {summary['phases_text']}")
    lines.append(
        f"final: train loss {_fmt(f['train_loss'], '.3g')}, "
        f"test loss {_fmt(f['test_loss'], '.3g')}, test acc {_fmt(f['test_acc'], '.4f')}"
    )
    lines.append(
        f"final: restricted loss {_fmt(f['restricted_loss'], '.3g')}, excluded loss "
        f"{_fmt(f['excluded_loss'], '.3g')}, Gini W_E {_fmt(i['gini_embed'], '.2f')} -> "
        f"{_fmt(f['gini_embed'], '.2f')}, sum of squared weights "
        f"{_fmt(i['sum_sq_weights'], '.0f')} -> {_fmt(f['sum_sq_weights'], '.0f')}"
    )
    return "\n".join(lines)


def _at_epoch(epoch: int | None) -> str:
    return "never" if epoch is None else f"at epoch {epoch}"


def _fmt(value: float | None, spec: str) -> str:
    """A summary number; None (stored for NaN or infinity) prints as 'nan'."""
    return "nan" if value is None else format(value, spec)


def detect(analysis: Analysis, run: Run):
    """Phase boundaries, or None where they cannot be detected.

    A run that diverged has NaN or infinite losses; the phase rules need finite
    curves, so such a run gets no phases (``build_summary`` says why) instead of an
    error that would also lose its measures.
    """
    from grokinterp.analysis.phases import NonFiniteMeasuresError, detect_phases

    metrics = run.metrics  # read from disk on every access
    try:
        return detect_phases(analysis.measures, metrics if len(metrics) else None)
    except NonFiniteMeasuresError as exc:
        log.warning("no phases: %s", exc)
        return None


def write_analysis(
    run: Run,
    formats: Sequence[str] = ("html", "png", "pdf"),
    figures: bool = True,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[dict, list[Path]]:
    """Analyse ``run`` and write measures.csv, summary.json and figures.

    Returns:
        (summary, written files).
    """
    analysis = analyze(run, device=device, progress=progress)
    phases = detect(analysis, run)
    summary = build_summary(run, analysis, phases)
    out = run.path / "analysis"
    figs = {}
    if figures:
        from grokinterp.figures import standard_figures

        bands = phases.as_bands() if phases is not None else None
        figs = standard_figures(run, analysis, phases=bands)
    out.mkdir(exist_ok=True)
    # measures.csv and summary.json are written together, before the figures, so an
    # interruption or a failing Chromium during the (slow) figure export leaves the
    # two consistent; summary.json is rewritten with the figure list afterwards.
    written = [out / "measures.csv", out / "summary.json"]
    atomic_write_text(written[0], analysis.measures.to_csv(index=False))
    atomic_write_text(written[1], json.dumps(summary, indent=2) + "\n")
    if figs:
        from grokinterp.figures import save_figures

        files, note = save_figures(figs, out / "figures", formats)
        written.extend(files)
        summary["figures"] = sorted(str(p.relative_to(out)) for p in files)
        if note:
            summary["figures_note"] = note
        atomic_write_text(written[1], json.dumps(summary, indent=2) + "\n")
    return summary, written
