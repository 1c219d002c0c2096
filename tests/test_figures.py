"""Figures carry the values they claim to show, and saving writes whole, readable files.

One tiny run (p = 11, 30 epochs) is trained once for the module. Expected values are
computed here independently: from ``run_with_cache`` on the plain forward, from the
Fourier helpers, or from numpy.
"""

from __future__ import annotations

import logging
import math
import os
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

import grokinterp
from grokinterp import figures
from grokinterp.analysis.measures import analyze
from grokinterp.analysis.neurons import neuron_clusters
from grokinterp.figures import export
from grokinterp.fourier import (
    component_names,
    embed_fourier_norms,
    fourier_basis,
    logit_fourier_norms,
)

P = 11
D_MLP = 64
N_HEADS = 2
PHASES = {"memorization": (0, 10), "circuit_formation": (10, 20), "cleanup": (20, 30)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = grokinterp.preset("demo").replace(
        p=P,
        epochs=30,
        checkpoint_every=10,
        early_checkpoints=2,
        d_model=32,
        d_mlp=D_MLP,
        n_heads=N_HEADS,
        d_head=16,
    )
    return grokinterp.train(config, tmp_path_factory.mktemp("figs") / "run", progress=False)


@pytest.fixture(scope="module")
def analysis(run):
    return analyze(run, progress=False)


@pytest.fixture(scope="module")
def cache(run):
    model = run.model(run.epochs[-1])
    with torch.no_grad():
        logits, cache = model.run_with_cache(run.tokens)
    return logits, cache


@pytest.fixture(scope="module")
def planted_clusters():
    """Neurons 0-2 are pure frequency 2, 3-4 pure frequency 5, neuron 5 is noise."""
    a = torch.arange(P, dtype=torch.float64)
    grid = a[:, None] + a[None, :]
    waves = [
        torch.cos(2 * math.pi * k * grid / P + phase)
        for k, phase in ((2, 0.0), (2, 1.0), (2, 2.0), (5, 0.5), (5, 3.0))
    ]
    noise = torch.randn(P, P, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return neuron_clusters(torch.stack([*waves, noise], dim=-1))


def by_name(fig: go.Figure) -> dict[str, list]:
    out: dict[str, list] = {}
    for trace in fig.data:
        out.setdefault(trace.name, []).append(trace)
    return out


# -- curves over training ---------------------------------------------------------------


def test_loss_curves_show_the_metrics_on_log_axes(run):
    metrics = run.metrics
    fig = figures.loss_curves(metrics)
    traces = by_name(fig)
    np.testing.assert_array_equal(traces["train loss"][0].x, metrics["epoch"])
    np.testing.assert_array_equal(traces["train loss"][0].y, metrics["train_loss"])
    np.testing.assert_array_equal(traces["test loss"][0].y, metrics["test_loss"])
    assert fig.layout.yaxis.type == "log"
    assert "epoch" in fig.layout.xaxis.title.text
    assert "nats" in fig.layout.yaxis.title.text
    assert fig.layout.template.layout.font.size == 14
    log_fig = figures.loss_curves(metrics, log_x=True)
    assert log_fig.layout.xaxis.type == "log"
    assert list(log_fig.data[0].x) == list(metrics["epoch"][metrics["epoch"] > 0])


def test_accuracy_curves(run):
    fig = figures.accuracy_curves(run.metrics)
    np.testing.assert_array_equal(by_name(fig)["test accuracy"][0].y, run.metrics["test_acc"])


def test_phase_bands_are_shapes_at_the_given_epochs(run):
    fig = figures.loss_curves(run.metrics, phases=PHASES)
    assert [(s.x0, s.x1) for s in fig.layout.shapes] == list(PHASES.values())
    assert all(s.yref == "y domain" and (s.y0, s.y1) == (0, 1) for s in fig.layout.shapes)
    assert [a.text for a in fig.layout.annotations] == [
        "memorization",
        "circuit formation",
        "cleanup",
    ]
    # On a log axis plotly places shapes in data units and annotations in log10 units.
    log_fig = figures.loss_curves(run.metrics, phases=PHASES, log_x=True)
    assert [(s.x0, s.x1) for s in log_fig.layout.shapes] == [(1, 10), (10, 20), (20, 30)]
    assert log_fig.layout.annotations[0].x == pytest.approx(0.5)
    assert figures.loss_curves(run.metrics).layout.shapes == ()


def test_bad_phase_and_missing_column_raise(run, analysis):
    with pytest.raises(ValueError, match="start <= end"):
        figures.loss_curves(run.metrics, phases={"cleanup": (20, 10)})
    with pytest.raises(ValueError, match="restricted_loss"):
        figures.progress_panels(analysis.measures.drop(columns="restricted_loss"))


def test_progress_panels_carry_the_measures(analysis):
    measures = analysis.measures
    fig = figures.progress_panels(measures, phases=PHASES)
    column_of = {
        "train loss": "train_loss",
        "test loss": "test_loss",
        "excluded loss (train)": "excluded_loss",
        "restricted loss (all pairs)": "restricted_loss",
        "restricted loss (test)": "restricted_loss_test",
        "Gini of W_E": "gini_embed",
        "Gini of W_L": "gini_logit",
        "sum of squared weights": "sum_sq_weights",
    }
    panel_of = {
        "train_loss": {"y", "y2"},
        "test_loss": {"y", "y2"},
        "excluded_loss": {"y"},
        "restricted_loss": {"y2"},
        "restricted_loss_test": {"y2"},
        "gini_embed": {"y3"},
        "gini_logit": {"y3"},
        "sum_sq_weights": {"y4"},
    }
    seen: dict[str, set] = {}
    for trace in fig.data:
        column = column_of[trace.name]
        np.testing.assert_array_equal(trace.x, measures["epoch"])
        np.testing.assert_array_equal(trace.y, measures[column].to_numpy(float))
        seen.setdefault(column, set()).add(trace.yaxis)
    assert seen == panel_of
    assert sum(t.showlegend is not False for t in fig.data) == len(column_of)
    assert (fig.layout.yaxis.type, fig.layout.yaxis2.type) == ("log", "log")
    assert fig.layout.yaxis3.type != "log" and fig.layout.yaxis4.type != "log"
    assert len(fig.layout.shapes) == 4 * len(PHASES)  # a band per phase in every panel
    assert len(fig.layout.annotations) == 4 + 2 * len(PHASES)  # titles + top-row names


def test_excluded_loss_per_freq_has_one_line_per_key_frequency(analysis):
    measures = analysis.measures.copy()
    for k in (12, 3, 5):  # deliberately unsorted; the run is too short to have any
        measures[f"excluded_loss_k{k}"] = np.linspace(1, 2, len(measures)) * k
    fig = figures.excluded_loss_per_freq(measures, phases=PHASES)
    names = [t.name for t in fig.data]
    assert names == [
        "train loss",
        "all key frequencies removed",
        "k = 3 removed",
        "k = 5 removed",
        "k = 12 removed",
    ]
    np.testing.assert_array_equal(fig.data[4].y, measures["excluded_loss_k12"])
    assert fig.layout.yaxis.type == "log"


def test_restricted_accuracy(analysis):
    fig = figures.restricted_accuracy(analysis.measures)
    traces = by_name(fig)
    np.testing.assert_array_equal(
        traces["restricted accuracy (all pairs)"][0].y, analysis.measures["restricted_acc"]
    )
    np.testing.assert_array_equal(traces["test accuracy"][0].y, analysis.measures["test_acc"])


# -- one checkpoint ---------------------------------------------------------------------


def test_embed_fourier_bars_equal_the_fourier_norms(run):
    state = run.state_dict(run.epochs[-1])
    fig = figures.embed_fourier_norms_fig(run, highlight=[2])
    bars = fig.data[0]
    assert list(bars.x) == component_names(P)
    expected = embed_fourier_norms(state["embed.W_E"].double(), P).numpy()
    np.testing.assert_allclose(bars.y, expected, rtol=1e-12)
    colors = list(bars.marker.color)
    assert colors[3] == colors[4] != colors[1]  # cos 2 and sin 2 highlighted, cos 1 not


def test_logit_fourier_bars_use_w_out_times_w_u(run):
    epoch = run.epochs[1]
    state = run.state_dict(epoch)
    W_L = state["blocks.0.mlp.W_out"].double() @ state["unembed.W_U"].double()
    fig = figures.logit_fourier_norms_fig(run, epoch=epoch)
    np.testing.assert_allclose(fig.data[0].y, logit_fourier_norms(W_L, P).numpy(), rtol=1e-12)
    assert f"epoch {epoch}" in fig.layout.title.text


def test_attention_heatmaps_equal_the_cached_pattern(run, cache):
    _, activations = cache
    pattern = activations["blocks.0.attn.hook_pattern"]
    fig = figures.attention_patterns(run)
    assert len(fig.data) == N_HEADS
    for head, heatmap in enumerate(fig.data):
        expected = pattern[:, head, -1, 0].reshape(P, P).numpy()
        np.testing.assert_allclose(np.asarray(heatmap.z), expected, rtol=1e-6)
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 1


def test_neuron_heatmaps_equal_the_cached_activations(run, cache, analysis):
    post = cache[1]["blocks.0.mlp.hook_post"][:, -1]
    fig = figures.neuron_activations(run, neurons=[3, 7])
    for n, heatmap in zip([3, 7], fig.data, strict=True):
        np.testing.assert_allclose(np.asarray(heatmap.z), post[:, n].reshape(P, P).numpy())
    default = figures.neuron_activations(run, clusters=analysis.clusters)
    assert len(default.data) == len(figures.default_neurons(analysis.clusters)) > 0
    with pytest.raises(ValueError, match="0..63"):
        figures.neuron_activations(run, neurons=[D_MLP])


def test_default_neurons_take_the_best_of_each_cluster(planted_clusters):
    chosen = figures.default_neurons(planted_clusters)
    assert len(chosen) == 2
    assert [int(planted_clusters.cluster[n]) for n in chosen] == [2, 5]


def test_logit_fourier_2d_matches_an_independent_transform(run, cache):
    logits = cache[0][:, -1].double().reshape(P, P, P).numpy()  # plain hooked forward
    F = fourier_basis(P).numpy()
    expected = np.linalg.norm(np.einsum("ia,abc,jb->ijc", F, logits, F), axis=-1)
    fig = figures.logit_fourier_2d(run)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), expected, rtol=1e-5)
    assert list(fig.data[0].x) == list(fig.data[0].y) == component_names(P)


# -- neuron clusters --------------------------------------------------------------------


def test_frac_explained_histogram_counts_every_neuron(analysis):
    clusters = analysis.clusters
    fig = figures.neuron_frac_explained_hist(clusters)
    counts = np.asarray(fig.data[0].y)
    assert counts.sum() == D_MLP
    best = clusters.frac_explained.max(dim=1).values.double().numpy()
    np.testing.assert_array_equal(counts, np.histogram(best, bins=np.linspace(0, 1, 41))[0])
    threshold_line = fig.layout.shapes[0]
    assert threshold_line.x0 == threshold_line.x1 == clusters.threshold


def test_cluster_sizes_count_planted_frequencies(planted_clusters):
    fig = figures.cluster_sizes_fig(planted_clusters)
    assert list(fig.data[0].x) == ["k = 2", "k = 5", "none"]
    assert list(fig.data[0].y) == [3, 2, 1]
    hist = figures.neuron_frac_explained_hist(planted_clusters)
    assert hist.data[0].y[-1] == 5  # the five pure waves explain all their variance


def test_standard_figures(run, analysis):
    figs = figures.standard_figures(run, analysis, phases=PHASES)
    for name in (
        "loss_curves",
        "progress_panels",
        "embed_fourier_norms",
        "neuron_frac_explained",
        "attention_patterns",
        "logit_fourier_2d",
    ):
        assert isinstance(figs[name], go.Figure), name
    assert all(f.layout.title.text for f in figs.values())
    assert len(figs["loss_curves"].layout.shapes) == len(PHASES)


# -- saving -----------------------------------------------------------------------------


class _Scripts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts: list[str] = []
        self._inside = False

    def handle_starttag(self, tag, attrs):
        self._inside = tag == "script"
        if self._inside:
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._inside = False

    def handle_data(self, data):
        if self._inside:
            self.scripts[-1] += data


def leftovers(folder) -> list[str]:
    return [name for name in os.listdir(folder) if ".tmp" in name]


def test_save_html_is_whole_and_offline(run, tmp_path):
    fig = figures.loss_curves(run.metrics)
    written = figures.save_figure(fig, tmp_path / "loss.html", formats=("html",))
    assert written == [tmp_path / "loss.html"]
    parser = _Scripts()
    parser.feed(written[0].read_text())
    parser.close()
    assert any("Plotly.newPlot" in s and "train loss" in s for s in parser.scripts)
    assert any("plotly.js" in s.lower() and len(s) > 1_000_000 for s in parser.scripts)
    assert not leftovers(tmp_path)


def test_save_with_a_shared_plotlyjs(run, analysis, tmp_path):
    figs = {
        "a": figures.loss_curves(run.metrics),
        "b": figures.cluster_sizes_fig(analysis.clusters),
    }
    written, note = figures.save_figures(figs, tmp_path, ("html",), include_plotlyjs="directory")
    assert [p.name for p in written] == ["plotly.min.js", "a.html", "b.html"] and note is None
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    assert 'src="plotly.min.js"' in written[1].read_text()


def test_unknown_format_is_refused(run, tmp_path):
    with pytest.raises(ValueError, match="choose from"):
        figures.save_figure(go.Figure(), tmp_path / "x", formats=("gif",))


def test_static_formats_are_skipped_with_a_warning_without_chrome(
    run, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(export, "find_chrome", lambda: None)
    with caplog.at_level(logging.WARNING, logger="grokinterp.figures.export"):
        written = figures.save_figure(go.Figure(), tmp_path / "x", formats=("png", "pdf"))
    assert written == [tmp_path / "x.html"]  # HTML as a fallback, so a file exists
    assert "PNG/PDF skipped: no Chrome or Chromium found" in caplog.text
    assert "plotly_get_chrome" in caplog.text
    files, note = figures.save_figures({"y": go.Figure()}, tmp_path, formats=("html", "svg"))
    assert files[-1] == tmp_path / "y.html" and note.startswith("SVG skipped")


def test_find_chrome_honours_browser_path(tmp_path, monkeypatch, caplog):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(fake))
    assert figures.find_chrome() == str(fake)
    fake.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="grokinterp.figures.export"):
        assert figures.find_chrome() != str(fake)
    assert "BROWSER_PATH" in caplog.text


@pytest.mark.skipif(not figures.static_export_available(), reason="no Chrome or Chromium")
def test_save_png_and_pdf(run, analysis, tmp_path):
    figs = {
        "loss": figures.loss_curves(run.metrics, PHASES),
        "panels": figures.progress_panels(analysis.measures, PHASES),
    }
    written, note = figures.save_figures(figs, tmp_path, formats=("html", "png", "pdf"))
    assert note is None
    assert sorted(p.name for p in written) == [
        "loss.html",
        "loss.pdf",
        "loss.png",
        "panels.html",
        "panels.pdf",
        "panels.png",
        "plotly.min.js",
    ]
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "panels.pdf").read_bytes()[:5] == b"%PDF-"
    width = int.from_bytes((tmp_path / "loss.png").read_bytes()[16:20], "big")
    assert width == 2 * figs["loss"].layout.width  # scale 2
    assert not leftovers(tmp_path)


def test_metrics_without_rows_still_plot():
    empty = pd.DataFrame(columns=["epoch", "train_loss", "test_loss"])
    assert len(figures.loss_curves(empty).data) == 2


def test_cos_coefficients_fig_carries_the_measures():
    import pandas as pd

    from grokinterp.figures import cos_coefficients_fig

    measures = pd.DataFrame(
        {
            "epoch": [0, 10, 20],
            "cos_coef_k3": [0.1, 5.0, 9.0],
            "cos_coef_k11": [0.0, -2.0, -4.0],
            "cos_frac_explained": [0.0, 0.4, 0.9],
        }
    )
    fig = cos_coefficients_fig(measures, phases={"cleanup": (10, 20)})
    names = [t.name for t in fig.data]
    assert names == ["k = 3", "k = 11", "fraction explained"]
    assert list(fig.data[1].y) == [0.0, -2.0, -4.0]
    assert list(fig.data[2].y) == [0.0, 0.4, 0.9]
    assert len(fig.layout.shapes) == 2  # one band per panel


def test_diverged_run_draws_a_labelled_empty_fourier_map(tmp_path):
    # A run trained at a huge learning rate ends with NaN weights; its 2D Fourier map
    # has no finite value. plotly.js cannot draw NaN on the square (anchored) axes, so
    # the figure shows an empty map and says why, and exports as a PNG.
    config = grokinterp.preset("demo").replace(
        p=7, epochs=20, checkpoint_every=10, lr=1000.0, d_model=16, d_mlp=32, d_head=8
    )
    run = grokinterp.train(config, tmp_path / "run", progress=False)
    assert not math.isfinite(run.metrics["train_loss"].iloc[-1])
    fig = figures.logit_fourier_2d(run)
    assert all(v is None for row in fig.data[0].z for v in row)
    assert fig.layout.yaxis.scaleanchor is None
    assert "49 of 49 values are NaN" in fig.layout.annotations[0].text
    if figures.static_export_available():
        written = figures.save_figure(fig, tmp_path / "map", formats=("png",))
        assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
