"""Shared look of every grokinterp figure, and the phase bands.

One plotly template (white background, 14 pt text, light grid, outside ticks) is applied
by every figure function through ``finish``, so the figures match each other in a paper.
The template is an object, not a registered global default: importing grokinterp does
not change how the caller's own plotly figures look.

Colours come from the Okabe-Ito palette, which stays distinguishable under the common
forms of colour blindness; a quantity keeps its colour in every figure (train loss is
always blue, test loss always vermillion).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

FONT_SIZE = 14

COLORS = {
    "train": "#0072B2",
    "test": "#D55E00",
    "restricted": "#009E73",
    "excluded": "#CC79A7",
    "embed": "#E69F00",
    "logit": "#56B4E9",
    "weights": "#000000",
    "threshold": "#D55E00",
    "neutral": "#7F7F7F",
}

# Colours cycled over lines that have no fixed meaning (one per key frequency).
SEQUENCE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]

PHASE_FILL = {
    "memorization": "#E69F00",
    "circuit_formation": "#56B4E9",
    "cleanup": "#009E73",
}
PHASE_OPACITY = 0.12
_LABEL_STEP = FONT_SIZE + 6  # pixels between staggered phase names

# Axis titles carry their units; every figure uses these strings.
EPOCH = "epoch (full-batch steps)"
LOSS = "loss (cross-entropy, nats)"
ACCURACY = "accuracy (fraction correct)"
GINI = "Gini coefficient"
SUM_SQ = "sum of squared weights"
# Epochs read better as 10,000 than as 1x10^4 or 10k.
EPOCH_AXIS = dict(title_text=EPOCH, exponentformat="none", separatethousands=True)

_AXIS = dict(
    showline=True,
    linecolor="#444444",
    linewidth=1,
    mirror=True,
    ticks="outside",
    gridcolor="#E5E5E5",
    zeroline=False,
    title=dict(standoff=8),
    exponentformat="power",
)

TEMPLATE = go.layout.Template(
    layout=dict(
        font=dict(family="Arial, Helvetica, sans-serif", size=FONT_SIZE, color="#222222"),
        title=dict(font=dict(size=FONT_SIZE + 3), x=0.02, xanchor="left"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=SEQUENCE,
        xaxis=_AXIS,
        yaxis=_AXIS,
        legend=dict(bgcolor="rgba(255,255,255,0.8)", borderwidth=0),
        margin=dict(l=80, r=30, t=70, b=65),
        coloraxis=dict(colorbar=dict(thickness=14, outlinewidth=0)),
    ),
    data=dict(heatmap=[go.Heatmap(colorbar=dict(thickness=14, outlinewidth=0))]),
)


def finish(fig: go.Figure, title: str, width: int = 720, height: int = 460) -> go.Figure:
    """Apply the shared template, a title and the size used by static export.

    Args:
        fig: the figure to style, changed in place.
        title: figure title.
        width, height: size in CSS pixels (HTML and, at ``scale``, PNG/PDF).

    Returns:
        The same figure, for chaining.
    """
    fig.update_layout(template=TEMPLATE, title_text=title, width=width, height=height)
    return fig


def require_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ValueError naming the missing columns of ``table``.

    Args:
        table: a metrics or measures table.
        columns: columns the figure needs.
        what: name of the table in the message, e.g. ``"metrics"``.
    """
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{what} lacks column(s) {missing}; found {list(table.columns)}. Pass "
            f"{'run.metrics' if what == 'metrics' else 'analyze(run).measures'}"
        )


def line(x, y, name: str, color: str, dash: str = "solid", **kwargs) -> go.Scatter:
    """A line trace with the shared width; extra keyword arguments go to ``go.Scatter``."""
    return go.Scatter(
        x=np.asarray(x),
        y=np.asarray(y, dtype=float),
        name=name,
        mode="lines",
        line=dict(color=color, dash=dash, width=2),
        **kwargs,
    )


def check_phases(phases: Mapping[str, tuple[int, int]]) -> None:
    """Raise ValueError unless every phase is a (start, end) pair with start <= end."""
    for name, span in phases.items():
        if len(span) != 2 or span[0] > span[1]:
            raise ValueError(
                f"phase {name!r} must be (start_epoch, end_epoch) with start <= end, got {span!r}"
            )


def add_phases(
    fig: go.Figure,
    phases: Mapping[str, tuple[int, int]] | None,
    cells: Sequence[tuple[int, int]] | None = None,
    log_x: bool = False,
    label_rows: Sequence[int] = (1,),
) -> go.Figure:
    """Shade each phase as a light vertical band with its name on top.

    Args:
        fig: a figure whose x axis is epochs.
        phases: phase name -> (start_epoch, end_epoch), e.g. from the phase detector;
            None or empty draws nothing.
        cells: (row, col) subplot cells to shade; None for a figure without subplots.
        log_x: the x axis is logarithmic. Bands then start at epoch 1 at the least
            (0 has no place on a log axis), and the names sit at the geometric middle;
            plotly places shapes in data units but annotations in log10 units there.
        label_rows: subplot rows whose bands carry the phase name (the top row only,
            by default, so names are not repeated in every panel).

    Returns:
        The same figure.
    """
    if not phases:
        return fig
    check_phases(phases)
    for i, (name, (start, end)) in enumerate(phases.items()):
        if log_x:
            start, end = max(start, 1), max(end, 1)
            middle = math.log10(math.sqrt(start * end))
        else:
            middle = (start + end) / 2
        fill = PHASE_FILL.get(name, SEQUENCE[i % len(SEQUENCE)])
        band = dict(
            x0=start,
            x1=end,
            fillcolor=fill,
            opacity=PHASE_OPACITY,
            line_width=0,
            layer="below",
        )
        # Names go on staggered lines: a short phase (memorization) would overlap the next.
        label = dict(
            x=middle,
            y=1,
            yref="y domain",
            yanchor="top",
            showarrow=False,
            text=name.replace("_", " "),
            font_size=FONT_SIZE - 2,
            yshift=-_LABEL_STEP * (i % 3),
        )
        for row, col in cells or [(None, None)]:
            fig.add_vrect(**band, row=row, col=col)
            if row is None or row in label_rows:
                fig.add_annotation(**label, row=row, col=col)
    return fig
