"""The set of figures ``grokinterp analyze`` writes for a run."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import plotly.graph_objects as go

from grokinterp.analysis.measures import Analysis
from grokinterp.figures.activations import attention_patterns, neuron_activations
from grokinterp.figures.curves import (
    accuracy_curves,
    cos_coefficients_fig,
    excluded_loss_per_freq,
    loss_curves,
    progress_panels,
    restricted_accuracy,
)
from grokinterp.figures.neurons import cluster_sizes_fig, neuron_frac_explained_hist
from grokinterp.figures.weights import (
    embed_fourier_norms_fig,
    logit_fourier_2d,
    logit_fourier_norms_fig,
)
from grokinterp.runs import Run

log = logging.getLogger(__name__)


def standard_figures(
    run: Run,
    analysis: Analysis,
    phases: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, go.Figure]:
    """Every figure of the package for one run, keyed by the file name to save it under.

    Curves over training come from ``run.metrics`` (every epoch) or, when the run has
    no metrics file, from the measures table; weight and activation figures show the
    final checkpoint; neuron figures use ``analysis.clusters``. Each single-checkpoint
    figure costs one forward pass over the p * p grid.

    Args:
        run: a run from ``load_run``.
        analysis: ``analyze(run)``.
        phases: optional phase bands for the figures over epochs.

    Returns:
        name -> figure, in this order: loss_curves, accuracy_curves, progress_panels,
        excluded_loss_per_freq, restricted_accuracy, cos_coefficients, embed_fourier_norms,
        logit_fourier_norms, logit_fourier_2d, neuron_frac_explained, cluster_sizes,
        attention_patterns, neuron_activations.
    """
    measures, clusters = analysis.measures, analysis.clusters
    metrics = run.metrics
    if metrics.empty:
        log.info("%s has no metrics file; drawing loss curves from the measures", run.path)
        metrics = measures
    key = clusters.key_frequencies
    return {
        "loss_curves": loss_curves(metrics, phases),
        "accuracy_curves": accuracy_curves(metrics, phases),
        "progress_panels": progress_panels(measures, phases),
        "excluded_loss_per_freq": excluded_loss_per_freq(measures, phases),
        "restricted_accuracy": restricted_accuracy(measures, phases),
        "cos_coefficients": cos_coefficients_fig(measures, phases),
        "embed_fourier_norms": embed_fourier_norms_fig(run, highlight=key),
        "logit_fourier_norms": logit_fourier_norms_fig(run, highlight=key),
        "logit_fourier_2d": logit_fourier_2d(run),
        "neuron_frac_explained": neuron_frac_explained_hist(clusters),
        "cluster_sizes": cluster_sizes_fig(clusters),
        "attention_patterns": attention_patterns(run),
        "neuron_activations": neuron_activations(run, clusters=clusters),
    }
