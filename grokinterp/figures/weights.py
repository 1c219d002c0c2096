"""Weights and logits in the Fourier basis (Nanda et al. 2023, §4; REFERENCE.md §2).

The embedding of a grokked model uses a handful of frequencies: the bars of
``embed_fourier_norms_fig`` are flat at initialization and a few spikes at the end.
``logit_fourier_norms_fig`` shows the same for the neuron-logit map W_L = W_out W_U, and
``logit_fourier_2d`` the logits over the input grid, transformed on both input axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from grokinterp.figures.style import COLORS, finish
from grokinterp.fourier import (
    component_freqs,
    component_names,
    embed_fourier_norms,
    fourier_basis,
    logit_fourier_norms,
)
from grokinterp.runs import Run

COMPONENT = "Fourier component"
NORM = "norm (L2, weight units)"


def resolve_epoch(run: Run, epoch: int | None) -> int:
    """``epoch``, or the run's last checkpoint when it is None.

    Raises:
        ValueError: the run has no checkpoint yet.
    """
    if epoch is not None:
        return int(epoch)
    if not run.epochs:
        raise ValueError(f"{run.path} has no checkpoints yet; train it first")
    return run.epochs[-1]


def neuron_logit_map(state: dict[str, torch.Tensor]) -> torch.Tensor:
    """W_L = W_out @ W_U of the last block, [d_mlp, d_vocab_out], in float64."""
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.")})
    W_out = state[f"blocks.{blocks[-1]}.mlp.W_out"].double()
    return W_out @ state["unembed.W_U"].double()


def _norm_bars(
    norms: torch.Tensor, p: int, highlight: Sequence[int] | None, title: str
) -> go.Figure:
    freqs = component_freqs(p).numpy()
    key = set(int(k) for k in (highlight or ()))
    colors = [COLORS["excluded"] if f in key else COLORS["train"] for f in freqs]
    fig = go.Figure(
        go.Bar(
            x=component_names(p),
            y=norms.double().cpu().numpy(),
            marker_color=colors,
            name="norm",
            hovertemplate="%{x}: %{y:.4g}<extra></extra>",
        )
    )
    fig.update_xaxes(
        title_text=COMPONENT, type="category", tickangle=-90, tickfont_size=9 if p > 40 else 12
    )
    fig.update_yaxes(title_text=NORM, rangemode="tozero")
    if key:
        title += f" (key frequencies {sorted(key)} highlighted)"
    return finish(fig, title, width=max(720, 9 * p), height=460)


def embed_fourier_norms_fig(
    run: Run, epoch: int | None = None, highlight: Sequence[int] | None = None
) -> go.Figure:
    """Norm of each Fourier component of the number-token embedding W_E[:p].

    Args:
        run: a run from ``load_run``.
        epoch: checkpoint to show; default the last.
        highlight: frequencies whose cos and sin bars are coloured, e.g. the key
            frequencies.

    Returns:
        A bar chart with one bar per component (``component_names(p)``, const first);
        bar heights equal ``fourier.embed_fourier_norms``.
    """
    epoch = resolve_epoch(run, epoch)
    W_E = run.state_dict(epoch)["embed.W_E"].double()
    norms = embed_fourier_norms(W_E, run.p)
    return _norm_bars(norms, run.p, highlight, f"Fourier norms of W_E, epoch {epoch}")


def logit_fourier_norms_fig(
    run: Run, epoch: int | None = None, highlight: Sequence[int] | None = None
) -> go.Figure:
    """Norm of each Fourier component of the neuron-logit map W_L = W_out @ W_U.

    Args:
        run: a run from ``load_run``.
        epoch: checkpoint to show; default the last.
        highlight: frequencies whose bars are coloured.

    Returns:
        A bar chart, one bar per output-axis component; heights equal
        ``fourier.logit_fourier_norms``.
    """
    epoch = resolve_epoch(run, epoch)
    W_L = neuron_logit_map(run.state_dict(epoch))
    norms = logit_fourier_norms(W_L, run.p)
    return _norm_bars(norms, run.p, highlight, f"Fourier norms of W_L, epoch {epoch}")


def logit_fourier_2d_values(run: Run, epoch: int) -> np.ndarray:
    """The values drawn by ``logit_fourier_2d``: [component of a, component of b].

    With L[a, b, c] the last-position logits, L_hat[i, j, c] = sum_{a,b} F[i, a] F[j, b]
    L[a, b, c], and the result is the norm of L_hat over c. The logits are not
    centred, so (const, const) holds the mean logit of each class.
    """
    p = run.p
    model = run.model(epoch)
    with torch.no_grad():
        logits = model.grid_logits().double().reshape(p, p, p)
    fb = fourier_basis(p)
    transformed = torch.einsum("ia,abc,jb->ijc", fb, logits, fb)
    return transformed.norm(dim=-1).numpy()


def logit_fourier_2d(run: Run, epoch: int | None = None) -> go.Figure:
    """Norm of the logits in the 2D Fourier basis of the inputs, as a heatmap.

    A grokked model concentrates the logits on a few (cos k, cos k), (sin k, sin k),
    (cos k, sin k) entries of its key frequencies k (Nanda et al. 2023, §4).

    Args:
        run: a run from ``load_run``.
        epoch: checkpoint to show; default the last.

    Returns:
        A heatmap; z[i][j] is the norm over classes c of the logits' component i on the
        a axis and j on the b axis (``logit_fourier_2d_values``), labelled with
        ``component_names(p)``; row 0 (const) at the top.
    """
    epoch = resolve_epoch(run, epoch)
    names = component_names(run.p)
    z = logit_fourier_2d_values(run, epoch)
    finite = np.isfinite(z)
    color_range = {}
    if not finite.all():  # a diverged run: plotly.js cannot draw NaN or infinity
        z = np.where(finite, z, None)
        if not finite.any():
            color_range = dict(zmin=0.0, zmax=1.0)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            colorscale="Blues",
            **color_range,
            colorbar=dict(title=dict(text="norm over c", side="right")),
            hovertemplate="a: %{y}<br>b: %{x}<br>norm: %{z:.4g}<extra></extra>",
        )
    )
    small = dict(
        tickfont_size=9 if run.p > 40 else 12, type="category", showgrid=False, constrain="domain"
    )
    fig.update_xaxes(title_text="Fourier component of b", tickangle=-90, **small)
    # (square cells need finite values: plotly.js fails on an all-empty anchored axis)
    fig.update_yaxes(
        title_text="Fourier component of a",
        autorange="reversed",
        scaleanchor="x" if finite.any() else None,
        **small,
    )
    if not finite.all():
        fig.add_annotation(
            text=f"{(~finite).sum()} of {z.size} values are NaN or infinite (the run diverged?)",
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            showarrow=False,
            bgcolor="white",
        )
    size = max(640, 7 * run.p)
    return finish(
        fig, f"Logits in the 2D Fourier basis, epoch {epoch}", width=size + 120, height=size
    )
