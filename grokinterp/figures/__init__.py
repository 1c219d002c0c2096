"""Figures of a grokking run, as functions that return plotly figures.

Nothing here shows or saves a figure by itself; ``save_figure`` / ``save_figures`` write
HTML (always possible) and PNG, PDF or SVG (when a Chrome or Chromium is found; see
``export``). All figures share one template (``style.TEMPLATE``).

- over training: ``loss_curves``, ``accuracy_curves``, ``progress_panels``,
  ``excluded_loss_per_freq``, ``restricted_accuracy``, ``cos_coefficients_fig``; each
  takes optional ``phases`` (name -> (start_epoch, end_epoch)) and shades them.
- one checkpoint: ``embed_fourier_norms_fig``, ``logit_fourier_norms_fig``,
  ``logit_fourier_2d``, ``attention_patterns``, ``neuron_activations``.
- neuron clusters: ``neuron_frac_explained_hist``, ``cluster_sizes_fig``.
- ``standard_figures(run, analysis, phases)``: all of them, keyed by file name.

Example:
    >>> from grokinterp.analysis.measures import analyze
    >>> run = load_run("checkpoints/demo")  # doctest: +SKIP
    >>> figs = standard_figures(run, analyze(run))  # doctest: +SKIP
    >>> files, note = save_figures(figs, run.path / "analysis" / "figures")  # doctest: +SKIP
"""

from grokinterp.figures.activations import (
    attention_patterns,
    default_neurons,
    neuron_activations,
)
from grokinterp.figures.curves import (
    accuracy_curves,
    cos_coefficients_fig,
    excluded_loss_per_freq,
    loss_curves,
    progress_panels,
    restricted_accuracy,
)
from grokinterp.figures.export import (
    FigureExportError,
    find_chrome,
    save_figure,
    save_figures,
    static_export_available,
    static_skip_message,
)
from grokinterp.figures.neurons import cluster_sizes_fig, neuron_frac_explained_hist
from grokinterp.figures.standard import standard_figures
from grokinterp.figures.style import TEMPLATE, add_phases
from grokinterp.figures.weights import (
    embed_fourier_norms_fig,
    logit_fourier_2d,
    logit_fourier_norms_fig,
)

__all__ = [
    "TEMPLATE",
    "FigureExportError",
    "accuracy_curves",
    "add_phases",
    "attention_patterns",
    "cluster_sizes_fig",
    "cos_coefficients_fig",
    "default_neurons",
    "embed_fourier_norms_fig",
    "excluded_loss_per_freq",
    "find_chrome",
    "logit_fourier_2d",
    "logit_fourier_norms_fig",
    "loss_curves",
    "neuron_activations",
    "neuron_frac_explained_hist",
    "progress_panels",
    "restricted_accuracy",
    "save_figure",
    "save_figures",
    "standard_figures",
    "static_export_available",
    "static_skip_message",
]
