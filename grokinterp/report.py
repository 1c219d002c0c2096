"""One self-contained HTML page of an analysed run, written by ``grokinterp report``.

The page holds the summary (the contents of ``summary.json`` as tables), the phases
(their one-line description and a table) and every figure of ``standard_figures``, each
with the phase bands. It opens offline and loads nothing from anywhere: plotly.js is
embedded once, in the page head, and each figure is a ``div`` plus a short script that
calls it; MathJax is not included (the figures use no LaTeX); the fonts are the system's
(no web fonts); and the favicon is an empty ``data:`` URL, so the browser asks for none.
With plotly.js at about 4.7 MB, the page weighs about 5 MB.

The measures come from ``RUN_DIR/analysis`` when ``measures.csv`` and ``summary.json``
there cover exactly the run's checkpoints. Otherwise (never analysed, or trained further
since) the run is analysed first by ``write_analysis`` without figure files, which
rewrites ``measures.csv`` and ``summary.json``. The neuron clusters are not stored on
disk, so they are recomputed from the final checkpoint: one forward pass over the
p * p grid, next to the one per checkpoint that the measures cost. A notebook that must
leave the run untouched calls ``load_or_analyze(run, write=False)``.

Example:
    >>> path = write_report(load_run("checkpoints/demo"))  # doctest: +SKIP
    >>> path.name
    'report.html'
"""

from __future__ import annotations

import html
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from grokinterp.analysis.measures import Analysis, analyze, final_clusters
from grokinterp.runs import Run, atomic_write_text

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"

# Shown in the modebar; the camera button saves an SVG, which scales in a paper.
_PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "svg"}}

# One or two sentences under each figure of standard_figures; a figure added there
# later, without an entry here, is still shown, under its own title only.
CAPTIONS = {
    "loss_curves": "Train and test loss of every epoch, log scale. Grokking is the late, "
    "sudden fall of the test loss long after the train loss is near zero.",
    "accuracy_curves": "Train and test accuracy of every epoch.",
    "progress_panels": "The four progress measures of Nanda et al. 2023 (Fig. 7) at every "
    "checkpoint: (a) excluded loss, which rises while the Fourier circuit forms; "
    "(b) restricted loss, which falls before the test loss does; (c) Gini coefficient of "
    "the Fourier norms of W_E and W_L, which rises as they become sparse; (d) total sum "
    "of squared weights, which falls in cleanup.",
    "excluded_loss_per_freq": "Train loss with one key frequency removed from the logits "
    "at a time, and with all of them removed (dotted).",
    "restricted_accuracy": "Accuracy of the logits restricted to the key-frequency "
    "directions, on all pairs, against the model's test accuracy.",
    "cos_coefficients": "Coefficient of the logits along cos(w_k (a + b - c)) for each key "
    "frequency k, and the share of the logits' squared norm those directions explain.",
    "embed_fourier_norms": "Norm of each Fourier component of the embedding W_E at the "
    "final checkpoint; the key frequencies are highlighted.",
    "logit_fourier_norms": "Norm of each Fourier component of the neuron-logit map "
    "W_L = W_out W_U at the final checkpoint.",
    "logit_fourier_2d": "Norm of the logits in the 2D Fourier basis over the inputs "
    "(a, b): a grokked model concentrates them on a few key frequencies.",
    "neuron_frac_explained": "For each MLP neuron, the largest fraction of its variance "
    "over the input grid explained by one frequency; the dashed line is the cluster "
    "threshold.",
    "cluster_sizes": "Neurons in each key-frequency cluster, and those in none.",
    "attention_patterns": "Attention from the '=' token to a, for every head and every "
    "input (a, b), at the final checkpoint.",
    "neuron_activations": "Activations of a few MLP neurons over the input grid at the "
    "final checkpoint: periodic in a and b at their cluster's frequency.",
}

# Measures of summary.json's "final" and "initial", in the order and words of the page.
MEASURE_LABELS = {
    "train_loss": "train loss",
    "test_loss": "test loss",
    "train_acc": "train accuracy",
    "test_acc": "test accuracy",
    "restricted_loss": "restricted loss (all pairs)",
    "restricted_loss_test": "restricted loss (test pairs)",
    "restricted_acc": "restricted accuracy (all pairs)",
    "excluded_loss": "excluded loss (train pairs)",
    "gini_embed": "Gini of the Fourier norms of W_E",
    "gini_logit": "Gini of the Fourier norms of W_L",
    "sum_sq_weights": "sum of squared weights",
}

# Keys of summary.json shown elsewhere on the page, or not meant for it.
_NOT_IN_TABLE = {"final", "initial", "phases", "phases_text", "figures", "figures_note"}

# Figures are up to 1200 px wide (four heatmaps in a row), so the page is 1280 px wide.
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Arial, sans-serif;
       margin: 2rem auto; max-width: 1280px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; } code { font-size: 0.9em; }
section.figure { margin: 1.8rem 0; overflow-x: auto; }
p.caption { max-width: 60rem; color: #444; }
nav ol { columns: 2; }
"""


def write_report(run: Run, device: str = "cpu", progress: bool = True) -> Path:
    """Write ``RUN_DIR/analysis/report.html``, analysing the run first if needed.

    Args:
        run: a run from ``load_run`` with at least one checkpoint.
        device: torch device for the analysis and the figures' forward passes.
        progress: show a progress bar while analysing.

    Returns:
        The path of the page, written atomically.
    """
    start = time.perf_counter()
    summary, analysis = load_or_analyze(run, device=device, progress=progress)
    from grokinterp.figures import standard_figures  # plotly figures: a heavier import

    bands = {name: (int(a), int(b)) for name, (a, b) in summary.get("phases", {}).items()}
    figs = standard_figures(run, analysis, phases=bands or None)
    page = build_report(summary, figs)
    path = run.path / "analysis" / REPORT_FILE
    path.parent.mkdir(exist_ok=True)
    atomic_write_text(path, page)
    log.info(
        "wrote %s (%.1f MB, %d figures) in %.1f s",
        path,
        len(page.encode()) / 1e6,
        len(figs),
        time.perf_counter() - start,
    )
    return path


def load_or_analyze(
    run: Run, device: str = "cpu", progress: bool = True, write: bool = True
) -> tuple[dict, Analysis]:
    """The run's summary and measures: read from ``RUN_DIR/analysis`` when current.

    Args:
        run: a run with at least one checkpoint.
        device: torch device.
        progress: progress bar while analysing.
        write: when the stored analysis is missing or stale, write the new
            ``measures.csv`` and ``summary.json`` (as ``grokinterp analyze --no-figures``
            would); False keeps it in memory and leaves the run directory untouched.

    Returns:
        (summary as in ``summary.json``, Analysis with the measures table and the
        final checkpoint's neuron clusters).
    """
    from grokinterp.analysis import summary as summaries

    stored = read_analysis(run)
    if stored is not None:
        summary, measures = stored
        clusters = final_clusters(run, threshold=summary["cluster_threshold"], device=device)
        if clusters.key_frequencies == summary["key_frequencies"]:
            return summary, Analysis(measures, clusters)
        log.info("stored key frequencies differ from the final checkpoint's; re-analysing")
    else:
        log.info("%s has no current analysis; analysing it first", run.path)
    if not write:
        analysis = analyze(run, device=device, progress=progress)
        return summaries.build_summary(run, analysis, summaries.detect(analysis, run)), analysis
    summary, _ = summaries.write_analysis(run, figures=False, device=device, progress=progress)
    measures = pd.read_csv(run.path / "analysis" / "measures.csv")
    clusters = final_clusters(run, threshold=summary["cluster_threshold"], device=device)
    return summary, Analysis(measures, clusters)


def read_analysis(run: Run) -> tuple[dict, pd.DataFrame] | None:
    """``summary.json`` and ``measures.csv`` if they are current, else None.

    Current means: ``measures.csv`` has a row for each of ``run.epochs`` and no other,
    and every column that the figures read (an analysis by an older grokinterp may
    lack some); ``summary.json`` has the keys the page needs.
    """
    from grokinterp.analysis.summary import FINAL_COLUMNS

    folder = run.path / "analysis"
    try:
        summary = json.loads((folder / "summary.json").read_text())
        measures = pd.read_csv(folder / "measures.csv")
    except (OSError, ValueError) as exc:  # missing, half-copied or from another tool
        log.debug("no usable analysis in %s (%s)", folder, exc)
        return None
    needed = {"key_frequencies", "cluster_threshold", "final", "initial"}
    if not isinstance(summary, dict) or not needed <= summary.keys():
        return None
    keys = summary["key_frequencies"]
    columns = {"epoch", "cos_frac_explained", *FINAL_COLUMNS}
    columns |= {f"{name}_k{k}" for k in keys for name in ("excluded_loss", "cos_coef")}
    if not columns <= set(measures.columns) or measures["epoch"].tolist() != run.epochs:
        log.info("the analysis in %s is out of date", folder)
        return None
    summary["run"] = str(run.path)  # the run may have been moved or copied since
    return summary, measures


def build_report(summary: Mapping, figs: Mapping[str, go.Figure]) -> str:
    """The whole page as one HTML string.

    Args:
        summary: as written to ``summary.json`` by ``build_summary``.
        figs: name -> figure, e.g. ``standard_figures(run, analysis, phases)``.

    Returns:
        An HTML document with plotly.js inline once and no external resource.
    """
    run_name = html.escape(Path(str(summary.get("run", "run"))).name)
    toc = "".join(
        f'<li><a href="#{html.escape(name)}">{html.escape(_title(name, fig))}</a></li>'
        for name, fig in figs.items()
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>grokinterp report: {run_name}</title>",
        f"<style>{_STYLE}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        f"<h1>grokinterp report: {run_name}</h1>",
        f"<nav><h2>Contents</h2><p>Summary, phases, then the figures:</p><ol>{toc}</ol></nav>",
        summary_section(summary),
        phases_section(summary),
        "<h2>Figures</h2>",
        *(figure_section(name, fig) for name, fig in figs.items()),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def summary_section(summary: Mapping) -> str:
    """The run's facts and its initial and final measures, as two HTML tables."""
    n, n_un = summary.get("n_neurons"), summary.get("n_neurons_unexplained")
    frac = summary.get("fraction_neurons_explained")
    sizes = summary.get("cluster_sizes", {})
    rows = [
        ("run directory", f"<td><code>{html.escape(str(summary.get('run')))}</code></td>"),
        ("modulus p", _cell(summary.get("p"))),
        ("preset", _cell(summary.get("preset"))),
        ("epochs trained", _cell(summary.get("epochs_trained"))),
        ("finished", _cell(summary.get("finished"))),
        ("checkpoints", _cell(summary.get("n_checkpoints"))),
        ("key frequencies", _cell(", ".join(map(str, summary.get("key_frequencies", []))))),
        ("cluster sizes (k: neurons)", _cell(", ".join(f"{k}: {v}" for k, v in sizes.items()))),
        ("cluster threshold", _cell(summary.get("cluster_threshold"))),
    ]
    if n is not None and n_un is not None and frac is not None:
        explained = f"{n - n_un} of {n} ({100 * frac:.1f}%), {n_un} in no cluster"
        rows.append(("neurons explained by one frequency", _cell(explained)))
    firsts = [k for k in summary if k.startswith("first_epoch_")]
    for key in sorted(firsts, key=lambda k: (not k.startswith("first_epoch_train"), k)):
        what = key.removeprefix("first_epoch_").replace("_acc_", " accuracy >= ")
        rows.append((f"first epoch with {what.replace('_', ' ')}", _cell(summary[key])))
    shown = {"run", "p", "preset", "epochs_trained", "finished", "n_checkpoints"}
    shown |= {"key_frequencies", "cluster_sizes", "cluster_threshold", "n_neurons"}
    shown |= {"n_neurons_unexplained", "fraction_neurons_explained"}
    for key in summary:  # keys added to summary.json later still reach the page
        if key not in shown | _NOT_IN_TABLE and not key.startswith("first_epoch_"):
            rows.append((key, _cell(summary[key])))
    facts = "".join(f"<tr><th>{html.escape(label)}</th>{cell}</tr>" for label, cell in rows)
    return (
        f"<h2>Summary</h2><table>{facts}</table>"
        f"<h3>Measures at the first and last checkpoint</h3>{measures_table(summary)}"
    )


def measures_table(summary: Mapping) -> str:
    """Initial and final value of every measure in ``summary['final']``, as a table."""
    final, initial = summary.get("final", {}), summary.get("initial", {})
    names = [k for k in MEASURE_LABELS if k in final]
    names += [k for k in final if k not in MEASURE_LABELS]
    rows = "".join(
        f"<tr><th>{html.escape(MEASURE_LABELS.get(k, k))} <code>{html.escape(k)}</code></th>"
        f"{_cell(initial.get(k))}{_cell(final.get(k))}</tr>"
        for k in names
    )
    head = "<tr><th>measure</th><th>first checkpoint</th><th>last checkpoint</th></tr>"
    return f"<table>{head}{rows}</table>"


def phases_section(summary: Mapping) -> str:
    """The phase description and a table of (phase, start, end, length) in epochs."""
    text = summary.get("phases_text", "phases were not detected for this run")
    out = f"<h2>Phases</h2><p>{html.escape(text)}</p>"
    bands = summary.get("phases") or {}
    if bands:
        head = "<tr><th>phase</th><th>start epoch</th><th>end epoch</th><th>epochs</th></tr>"
        rows = "".join(
            f"<tr><th>{html.escape(name.replace('_', ' '))}</th>"
            f"{_cell(a)}{_cell(b)}{_cell(b - a)}</tr>"
            for name, (a, b) in bands.items()
        )
        out += f"<table>{head}{rows}</table>"
    return out


def figure_section(name: str, fig: go.Figure) -> str:
    """One figure as an HTML section: heading, caption and the plot (no plotly.js)."""
    div = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=f"figure-{name}",
        config=_PLOT_CONFIG,
    )
    caption = CAPTIONS.get(name, "")
    return (
        f'<section class="figure" id="{html.escape(name)}">'
        f"<h3>{html.escape(_title(name, fig))}</h3>"
        f'<p class="caption">{html.escape(caption)}</p>{div}</section>'
    )


def _title(name: str, fig: go.Figure) -> str:
    return fig.layout.title.text or name.replace("_", " ")


def _cell(value) -> str:
    """A table cell; numbers are right-aligned with four significant digits."""
    if value is None:
        return "<td>n/a</td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if not isinstance(value, str):
        value = json.dumps(value)
    return f"<td>{html.escape(value)}</td>"
