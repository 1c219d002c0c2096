"""Activations over the input grid: attention patterns and MLP neurons.

Each heatmap has a on the vertical axis (0 at the top) and b on the horizontal axis, so
entry [a][b] is the input (a, b), row a * p + b of ``run.tokens``. A grokked model's
attention and neurons are periodic in a and b at the key frequencies (Nanda et al. 2023,
§4, Fig. 3). Activations come from ``run_with_cache`` on the hooked model, at the last
('=') position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from grokinterp.analysis.measures import final_clusters
from grokinterp.analysis.neurons import NeuronClusters
from grokinterp.figures.style import finish
from grokinterp.figures.weights import resolve_epoch
from grokinterp.runs import Run

GRID_COLS = 4


def grid_cache(run: Run, epoch: int, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The named activations of checkpoint ``epoch`` on all p * p inputs.

    Args:
        run: a run from ``load_run``.
        epoch: checkpoint.
        names: hook names, e.g. ``["blocks.0.attn.hook_pattern"]``.

    Returns:
        hook name -> activation tensor with batch = a * p + b.
    """
    model = run.model(epoch)
    wanted = set(names)
    with torch.no_grad():
        _, cache = model.run_with_cache(run.tokens, names_filter=lambda n: n in wanted)
    return {name: cache[name] for name in names}


def _heatmap_grid(
    panels: list[tuple[str, np.ndarray]], p: int, title: str, colorscale: str, zrange
) -> go.Figure:
    """Square heatmaps over (a, b), several per row, sharing one colour axis."""
    cols = min(len(panels), GRID_COLS)
    rows = math.ceil(len(panels) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[name for name, _ in panels],
        horizontal_spacing=0.06,
        vertical_spacing=0.12,
    )
    for i, (_, z) in enumerate(panels):
        row, col = i // cols + 1, i % cols + 1
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=np.arange(p),
                y=np.arange(p),
                coloraxis="coloraxis",
                hovertemplate="a: %{y}<br>b: %{x}<br>value: %{z:.4g}<extra></extra>",
            ),
            row=row,
            col=col,
        )
        anchor = "x" if i == 0 else f"x{i + 1}"
        fig.update_yaxes(scaleanchor=anchor, autorange="reversed", row=row, col=col)
    fig.update_layout(coloraxis=dict(colorscale=colorscale, cmin=zrange[0], cmax=zrange[1]))
    fig.update_xaxes(title_text="b", showgrid=False, constrain="domain")
    fig.update_yaxes(title_text="a", showgrid=False, constrain="domain")
    finish(fig, title, width=260 * cols + 160, height=270 * rows + 110)
    return fig


def attention_patterns(run: Run, epoch: int | None = None, layer: int = 0) -> go.Figure:
    """Attention from the '=' position to the a token, per head, over the input grid.

    Args:
        run: a run from ``load_run``.
        epoch: checkpoint to show; default the last.
        layer: transformer block.

    Returns:
        One heatmap per head (subplot title "head h"); z[a][b] is the pattern
        ``blocks.{layer}.attn.hook_pattern[a * p + b, h, -1, 0]``. The colour scale is
        fixed to [0, 1].
    """
    epoch = resolve_epoch(run, epoch)
    p = run.p
    name = f"blocks.{layer}.attn.hook_pattern"
    pattern = grid_cache(run, epoch, [name])[name]  # [batch, head, q, k]
    panels = [
        (f"head {h}", pattern[:, h, -1, 0].reshape(p, p).numpy()) for h in range(pattern.shape[1])
    ]
    title = f"Attention from '=' to a, epoch {epoch}"
    fig = _heatmap_grid(panels, p, title, "Viridis", (0.0, 1.0))
    fig.update_layout(coloraxis_colorbar=dict(title=dict(text="attention", side="right")))
    return fig


def default_neurons(clusters: NeuronClusters, max_neurons: int = 4) -> list[int]:
    """One neuron per key-frequency cluster (the best explained), for the first clusters.

    Without any cluster (a run that has not grokked), the neurons with the largest
    best-frequency fraction explained are taken instead.

    Args:
        clusters: e.g. ``analyze(run).clusters``.
        max_neurons: at most this many neurons.

    Returns:
        Neuron indices.
    """
    best = clusters.frac_explained.max(dim=1).values
    chosen = []
    for k in clusters.key_frequencies[:max_neurons]:
        members = torch.nonzero(clusters.cluster == k).flatten()
        chosen.append(int(members[best[members].argmax()]))
    if not chosen:
        chosen = [int(n) for n in best.argsort(descending=True)[:max_neurons]]
    return chosen


def neuron_activations(
    run: Run,
    neurons: Sequence[int] | None = None,
    epoch: int | None = None,
    clusters: NeuronClusters | None = None,
    layer: int = 0,
) -> go.Figure:
    """Last-position MLP activations of a few neurons over the input grid.

    Args:
        run: a run from ``load_run``.
        neurons: neuron indices; default ``default_neurons(clusters)``.
        epoch: checkpoint to show; default the last.
        clusters: clusters used to choose and label the default neurons; computed on
            the final checkpoint when needed and not given.
        layer: transformer block.

    Returns:
        One heatmap per neuron; z[a][b] is ``blocks.{layer}.mlp.hook_post[a * p + b,
        -1, n]``, on one colour scale from 0 to the largest value shown.
    """
    epoch = resolve_epoch(run, epoch)
    if neurons is None:
        clusters = clusters if clusters is not None else final_clusters(run)
        neurons = default_neurons(clusters)
    neurons = [int(n) for n in neurons]
    if not neurons:
        raise ValueError("neurons is empty; pass at least one neuron index")
    p = run.p
    name = f"blocks.{layer}.mlp.hook_post"
    post = grid_cache(run, epoch, [name])[name][:, -1]  # [batch, d_mlp]
    if max(neurons) >= post.shape[1] or min(neurons) < 0:
        raise ValueError(f"neuron indices must lie in 0..{post.shape[1] - 1}, got {neurons}")
    panels = [(_neuron_title(n, clusters), post[:, n].reshape(p, p).numpy()) for n in neurons]
    top = max(float(z.max()) for _, z in panels) or 1.0
    fig = _heatmap_grid(panels, p, f"Neuron activations, epoch {epoch}", "Blues", (0.0, top))
    fig.update_layout(coloraxis_colorbar=dict(title=dict(text="ReLU output", side="right")))
    return fig


def _neuron_title(n: int, clusters: NeuronClusters | None) -> str:
    if clusters is None:
        return f"neuron {n}"
    k = int(clusters.best_freq[n])
    frac = float(clusters.frac_explained[n, k - 1])
    return f"neuron {n} (k = {k}, {frac:.0%})"
