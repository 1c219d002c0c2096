"""Neuron frequency clusters (Nanda et al. 2023, §4; REFERENCE.md §2).

Each MLP neuron's activation over the input grid is explained, to a fraction, by one
frequency; above the threshold (0.85 in the paper) the neuron joins that frequency's
cluster. The paper reports 433 of 512 neurons clustered for its main run.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from grokinterp.analysis.neurons import NeuronClusters
from grokinterp.figures.style import COLORS, SEQUENCE, finish

N_BINS = 40


def best_fraction(clusters: NeuronClusters) -> np.ndarray:
    """Each neuron's largest fraction explained by a single frequency, [neuron]."""
    return clusters.frac_explained.max(dim=1).values.double().numpy()


def neuron_frac_explained_hist(clusters: NeuronClusters, n_bins: int = N_BINS) -> go.Figure:
    """Histogram of each neuron's best single-frequency fraction explained.

    The counts are computed here (``numpy.histogram`` on [0, 1]) and drawn as bars, so
    the figure holds them exactly; they sum to the number of neurons.

    Args:
        clusters: e.g. ``analyze(run).clusters``.
        n_bins: equal-width bins on [0, 1].

    Returns:
        A bar chart (x: bin centres, y: neuron counts) with the threshold as a dashed
        vertical line.
    """
    best = best_fraction(clusters)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts, _ = np.histogram(np.clip(best, 0.0, 1.0), bins=edges)
    fig = go.Figure(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=counts,
            width=np.diff(edges),
            marker=dict(color=COLORS["train"], line=dict(width=0.5, color="white")),
            name="neurons",
            customdata=np.stack([edges[:-1], edges[1:]], axis=1),
            hovertemplate="%{customdata[0]:.3f} to %{customdata[1]:.3f}: %{y}<extra></extra>",
        )
    )
    fig.add_vline(
        x=clusters.threshold,
        line=dict(color=COLORS["threshold"], dash="dash"),
        annotation_text=f"threshold {clusters.threshold:g}",
        annotation_position="top left",
    )
    fig.update_xaxes(
        title_text="fraction of variance explained by the best frequency", range=[0, 1]
    )
    fig.update_yaxes(title_text="neurons (count)", rangemode="tozero")
    n = len(best)
    clustered = int((np.asarray(clusters.cluster) > 0).sum())
    title = f"Neuron frequency fit: {clustered} of {n} neurons ({clustered / n:.1%}) clustered"
    return finish(fig, title)


def cluster_sizes_fig(clusters: NeuronClusters) -> go.Figure:
    """Neurons per key-frequency cluster, plus the unclustered ones ("none").

    Args:
        clusters: e.g. ``analyze(run).clusters``.

    Returns:
        A bar chart; x labels "k = {k}" for each key frequency, then "none"; the
        heights sum to the number of neurons.
    """
    sizes = clusters.cluster_sizes
    labels = [f"k = {k}" for k in sizes] + ["none"]
    counts = [*sizes.values(), clusters.n_unexplained]
    colors = [SEQUENCE[i % len(SEQUENCE)] for i in range(len(sizes))] + [COLORS["neutral"]]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=counts,
            marker_color=colors,
            text=counts,
            textposition="outside",
            name="neurons",
            cliponaxis=False,
        )
    )
    fig.update_xaxes(title_text="key frequency cluster", type="category")
    fig.update_yaxes(title_text="neurons (count)", rangemode="tozero")
    return finish(fig, f"Neurons per key frequency (threshold {clusters.threshold:g})")
