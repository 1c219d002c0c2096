"""The analysis notebook runs from top to bottom on a tiny run, so it cannot rot unseen.

nbclient executes it in a kernel of this very Python: the kernel spec is written to a
temporary folder, so a user's own ``python3`` kernel, which may belong to another
environment, is never picked up instead. The kernel works in a temporary directory, with
Jupyter's and IPython's state folders there too, and the test checks that the notebook
wrote nothing, neither there nor into the run directory.
"""

import json
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import tiny_config
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

import grokinterp
from grokinterp.analysis.measures import analyze
from grokinterp.analysis.phases import detect_phases
from grokinterp.figures import standard_figures

NOTEBOOK = Path(__file__).resolve().parents[1] / "analyses" / "progress_measures.ipynb"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
KERNEL = "grokinterp-test"


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def kernel_manager(folder: Path) -> AsyncKernelManager:
    """A kernel manager whose only kernel spec runs ipykernel under ``sys.executable``."""
    spec = folder / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "grokinterp test", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    specs = KernelSpecManager(kernel_dirs=[str(folder)], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert "GROKINTERP_RUN" in code_cells(nb)[0].source


@pytest.mark.slow
def test_notebook_shows_every_standard_figure(tmp_path, monkeypatch):
    run = grokinterp.train(tiny_config(p=11, epochs=120), tmp_path / "run", progress=False)
    before = files_under(run.path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("GROKINTERP_RUN", str(run.path))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("PLOTLY_RENDERER", "plotly_mimetype")  # the same output everywhere
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        km=kernel_manager(tmp_path / "kernels"),
        timeout=120,
        resources={"metadata": {"path": str(work)}},
    )
    client.execute(cleanup_kc=True)  # shut the kernel down: the manager is ours, not its

    assert files_under(run.path) == before, "the notebook wrote into the run directory"
    assert files_under(work) == [], "the notebook wrote into its working directory"
    shown = [
        out.data[PLOTLY_MIME]
        for cell in code_cells(nb)
        for out in cell.outputs
        if PLOTLY_MIME in out.get("data", {})
    ]
    titles = [fig["layout"]["title"]["text"] for fig in shown]
    analysis = analyze(run, progress=False)
    bands = detect_phases(analysis.measures, run.metrics).as_bands()
    assert "memorization" in bands
    expected = standard_figures(run, analysis, phases=bands)
    assert sorted(titles) == sorted(fig.layout.title.text for fig in expected.values())
    panels = shown[titles.index("Progress measures")]
    assert panels["layout"].get("shapes"), "the progress panels lack their phase bands"
