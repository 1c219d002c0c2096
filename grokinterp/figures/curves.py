"""Quantities over training: losses, accuracies and the progress measures.

The progress measures are those of Nanda et al. 2023 (arXiv 2301.05217, §5 and Fig. 7;
REFERENCE.md §2). Losses are drawn on a log y axis as in the paper. Every function takes
``phases`` (name -> (start_epoch, end_epoch)) and shades them as bands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokinterp.figures.style import (
    ACCURACY,
    COLORS,
    EPOCH_AXIS,
    GINI,
    LOSS,
    SEQUENCE,
    SUM_SQ,
    add_phases,
    finish,
    line,
    require_columns,
)

Phases = Mapping[str, tuple[int, int]]

_EXCLUDED_K = re.compile(r"^excluded_loss_k(\d+)$")


def _epochs(table: pd.DataFrame, log_x: bool) -> pd.DataFrame:
    # Epoch 0 has no place on a log axis; dropping it is clearer than plotly hiding it.
    return table[table["epoch"] > 0] if log_x else table


def loss_curves(
    metrics: pd.DataFrame, phases: Phases | None = None, log_x: bool = False
) -> go.Figure:
    """Train and test loss against epoch, log y axis.

    Args:
        metrics: ``run.metrics`` (columns epoch, train_loss, test_loss), one row per epoch.
        phases: optional phase bands, name -> (start_epoch, end_epoch).
        log_x: logarithmic epoch axis (epoch 0 is then left out).

    Returns:
        A figure with traces "train loss" and "test loss".
    """
    require_columns(metrics, ["epoch", "train_loss", "test_loss"], "metrics")
    data = _epochs(metrics, log_x)
    fig = go.Figure()
    fig.add_trace(line(data["epoch"], data["train_loss"], "train loss", COLORS["train"]))
    fig.add_trace(line(data["epoch"], data["test_loss"], "test loss", COLORS["test"]))
    fig.update_xaxes(**EPOCH_AXIS, type="log" if log_x else "linear")
    fig.update_yaxes(title_text=LOSS, type="log")
    add_phases(fig, phases, log_x=log_x)
    return finish(fig, "Train and test loss")


def accuracy_curves(
    metrics: pd.DataFrame, phases: Phases | None = None, log_x: bool = False
) -> go.Figure:
    """Train and test accuracy against epoch.

    Args:
        metrics: ``run.metrics`` (columns epoch, train_acc, test_acc).
        phases: optional phase bands.
        log_x: logarithmic epoch axis (epoch 0 is then left out).

    Returns:
        A figure with traces "train accuracy" and "test accuracy".
    """
    require_columns(metrics, ["epoch", "train_acc", "test_acc"], "metrics")
    data = _epochs(metrics, log_x)
    fig = go.Figure()
    fig.add_trace(line(data["epoch"], data["train_acc"], "train accuracy", COLORS["train"]))
    fig.add_trace(line(data["epoch"], data["test_acc"], "test accuracy", COLORS["test"]))
    fig.update_xaxes(**EPOCH_AXIS, type="log" if log_x else "linear")
    fig.update_yaxes(title_text=ACCURACY, range=[0, 1.02])
    add_phases(fig, phases, log_x=log_x)
    return finish(fig, "Train and test accuracy")


_PANEL_TITLES = (
    "(a) excluded loss",
    "(b) restricted loss",
    "(c) Gini of Fourier norms",
    "(d) total sum of squared weights",
)

# (row, col, column, legend name, colour, dash) of every line in progress_panels.
_PANEL_LINES = (
    (1, 1, "train_loss", "train loss", COLORS["train"], "solid"),
    (1, 1, "test_loss", "test loss", COLORS["test"], "solid"),
    (1, 1, "excluded_loss", "excluded loss (train)", COLORS["excluded"], "solid"),
    (1, 2, "train_loss", "train loss", COLORS["train"], "solid"),
    (1, 2, "test_loss", "test loss", COLORS["test"], "solid"),
    (1, 2, "restricted_loss", "restricted loss (all pairs)", COLORS["restricted"], "solid"),
    (1, 2, "restricted_loss_test", "restricted loss (test)", COLORS["restricted"], "dash"),
    (2, 1, "gini_embed", "Gini of W_E", COLORS["embed"], "solid"),
    (2, 1, "gini_logit", "Gini of W_L", COLORS["logit"], "solid"),
    (2, 2, "sum_sq_weights", "sum of squared weights", COLORS["weights"], "solid"),
)


def progress_panels(measures: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """The four progress-measure panels of Nanda et al. 2023 (Fig. 7) in one figure.

    (a) excluded loss with train and test loss; (b) restricted loss on all pairs and on
    the test pairs with train and test loss; (c) Gini coefficient of the per-frequency
    Fourier norms of W_E and of W_L = W_out W_U; (d) total sum of squared weights.
    Panels (a) and (b) have log y axes.

    Args:
        measures: ``analyze(run).measures``, one row per checkpoint.
        phases: optional phase bands, drawn in every panel and named in the top row.

    Returns:
        A 2 x 2 subplot figure with one trace per entry of ``_PANEL_LINES``, in that
        order; train and test loss appear once in the legend.
    """
    require_columns(measures, ["epoch", *dict.fromkeys(s[2] for s in _PANEL_LINES)], "measures")
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=_PANEL_TITLES,
        horizontal_spacing=0.14,
        vertical_spacing=0.16,
    )
    shown = set()
    for row, col, column, name, color, dash in _PANEL_LINES:
        trace = line(
            measures["epoch"],
            measures[column],
            name,
            color,
            dash=dash,
            legendgroup=name,
            showlegend=name not in shown,
        )
        fig.add_trace(trace, row=row, col=col)
        shown.add(name)
    fig.update_xaxes(**EPOCH_AXIS)
    # One explicit range for all four panels, so their phase bands line up.
    fig.update_xaxes(range=[float(measures["epoch"].min()), float(measures["epoch"].max())])
    fig.update_yaxes(title_text=LOSS, type="log", row=1)
    fig.update_yaxes(title_text=GINI, row=2, col=1)
    fig.update_yaxes(title_text=SUM_SQ, row=2, col=2)
    add_phases(fig, phases, cells=[(1, 1), (1, 2), (2, 1), (2, 2)])
    return finish(fig, "Progress measures", width=1100, height=820)


def excluded_loss_columns(measures: pd.DataFrame) -> list[tuple[int, str]]:
    """(k, column) for every ``excluded_loss_k{k}`` column, sorted by k."""
    found = ((_EXCLUDED_K.match(str(c)), c) for c in measures.columns)
    return sorted((int(m.group(1)), c) for m, c in found if m)


def excluded_loss_per_freq(measures: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Excluded loss with one key frequency removed at a time, and the train loss.

    Removing a frequency the model relies on raises the train loss; the paper reads a
    rise during circuit formation as the circuit being used while memorization still
    hides it (Nanda et al. 2023, §5.1). The loss with all key frequencies removed is
    drawn too, dotted, for reference.

    Args:
        measures: ``analyze(run).measures``.
        phases: optional phase bands.

    Returns:
        A figure, log y, with traces "train loss", "all key frequencies removed" and
        "k = {k} removed" for each ``excluded_loss_k{k}`` column.
    """
    require_columns(measures, ["epoch", "train_loss"], "measures")
    x = measures["epoch"]
    fig = go.Figure()
    fig.add_trace(line(x, measures["train_loss"], "train loss", COLORS["train"]))
    if "excluded_loss" in measures.columns:
        fig.add_trace(
            line(
                x,
                measures["excluded_loss"],
                "all key frequencies removed",
                COLORS["excluded"],
                dash="dot",
            )
        )
    for i, (k, column) in enumerate(excluded_loss_columns(measures)):
        color = SEQUENCE[i % len(SEQUENCE)]
        fig.add_trace(line(x, measures[column], f"k = {k} removed", color))
    fig.update_xaxes(**EPOCH_AXIS)
    fig.update_yaxes(title_text=f"train {LOSS}", type="log")
    add_phases(fig, phases)
    return finish(fig, "Excluded loss per key frequency (train pairs)")


def restricted_accuracy(measures: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Accuracy of the restricted logits (all pairs) against the model's test accuracy.

    Args:
        measures: ``analyze(run).measures`` (columns epoch, restricted_acc, test_acc).
        phases: optional phase bands.

    Returns:
        A figure with traces "restricted accuracy (all pairs)" and "test accuracy".
    """
    require_columns(measures, ["epoch", "restricted_acc", "test_acc"], "measures")
    x = measures["epoch"]
    fig = go.Figure()
    fig.add_trace(
        line(x, measures["restricted_acc"], "restricted accuracy (all pairs)", COLORS["restricted"])
    )
    fig.add_trace(line(x, measures["test_acc"], "test accuracy", COLORS["test"]))
    fig.update_xaxes(**EPOCH_AXIS)
    fig.update_yaxes(title_text=ACCURACY, range=[0, 1.02])
    add_phases(fig, phases)
    return finish(fig, "Restricted accuracy")


_COS_K = re.compile(r"^cos_coef_k(\d+)$")


def cos_coefficients_fig(measures: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Coefficients of the logits along cos(w_k (a + b - c)) over training, key k only.

    The top panel shows alpha_k for each key frequency (``analysis.logit_coefs``); the
    bottom panel the share of the logits' squared norm (centered over classes) those
    directions explain, which approaches 1 once the circuit alone sets the logits
    (Nanda et al. 2023, §4.2).

    Args:
        measures: ``analyze(run).measures`` (columns epoch, cos_coef_k{k},
            cos_frac_explained).
        phases: optional phase bands.

    Returns:
        A two-row figure: traces "k = {k}" in row 1, "fraction explained" in row 2.
    """
    require_columns(measures, ["epoch", "cos_frac_explained"], "measures")
    columns = sorted(
        (int(m.group(1)), c) for m, c in ((_COS_K.match(str(c)), c) for c in measures.columns) if m
    )
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    x = measures["epoch"]
    for i, (k, column) in enumerate(columns):
        fig.add_trace(line(x, measures[column], f"k = {k}", SEQUENCE[i % len(SEQUENCE)]), 1, 1)
    fig.add_trace(
        line(x, measures["cos_frac_explained"], "fraction explained", COLORS["weights"]), 2, 1
    )
    fig.update_xaxes(**EPOCH_AXIS, row=2, col=1)
    fig.update_yaxes(title_text="coefficient of cos(w(a+b-c))", row=1, col=1)
    fig.update_yaxes(title_text="fraction of |L|^2", range=[0, 1.02], row=2, col=1)
    add_phases(fig, phases, cells=[(1, 1), (2, 1)])
    return finish(fig, "Logits along cos(w(a + b - c))", height=700)
