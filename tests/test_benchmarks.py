"""The benchmark references agree with grokinterp on tiny configurations.

``benchmarks/reference_trainer.py`` and ``benchmarks/reference_analysis.py`` are plain
TransformerLens 4 code (a ``boot_native`` bridge); these tests check that they compute
the same numbers as grokinterp's fast paths, so the timings in docs/performance.md
compare equal work. The ``--quick`` smoke run of ``run_benchmarks.py`` is marked slow.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from grokinterp.analysis.measures import analyze
from grokinterp.config import RunConfig
from grokinterp.runs import load_run

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    """The benchmark scripts as modules (benchmarks/ is not a package)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield {
            name: importlib.import_module(name)
            for name in (
                "reference_trainer",
                "reference_analysis",
                "synthetic_run",
                "bench_training",
                "bench_analysis",
                "float32_drift",
            )
        }
    finally:
        sys.path.remove(str(BENCH))


def tiny_config(p: int = 17) -> RunConfig:
    return RunConfig().replace(p=p, d_model=32, n_heads=4, d_head=8, d_mlp=64, seed=3)


def test_bridge_matches_grokinterp_forward(bench):
    rt = bench["reference_trainer"]
    from grokinterp.model import GrokTransformer
    from grokinterp.tasks import grid_tokens

    cfg = tiny_config()
    model = GrokTransformer(cfg.model, seed=5)
    bridge = rt.bridge_from_state(rt.bridge_config(17, 32, 4, 8, 64), model.state_dict())
    tokens = grid_tokens(17)
    with torch.no_grad():
        expected = model(tokens)
        got = bridge(tokens)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert all(
        not q.requires_grad and (q == 0).all()
        for n, q in bridge.named_parameters()
        if n.endswith("bias")
    )


def test_reference_trainer_matches_grokinterp(bench):
    """Same weights, same math: train losses agree over the first epochs."""
    rb, rt = bench["bench_training"], bench["reference_trainer"]
    cfg = tiny_config()
    ref = rt.train_reference(cfg, 6)
    trainer = rb.fast_setup(cfg, "cpu")
    for _ in range(6):
        rb.fast_epoch(trainer)
    fast = rb.fast_losses(trainer)
    assert [r["epoch"] for r in ref] == list(range(6))
    assert max(rb.rel_diff(fast, [r["train_loss"] for r in ref])) < 1e-5
    # the warm-up moved the weights: losses differ from epoch to epoch
    assert abs(fast[-1] - fast[0]) > 1e-4


def test_reference_analysis_matches_grokinterp(bench, tmp_path):
    syn, ra, ba = bench["synthetic_run"], bench["reference_analysis"], bench["bench_analysis"]
    run_dir = syn.write_synthetic_run(tmp_path / "run", p=23, n_checkpoints=4, every=10)
    run = load_run(run_dir)
    fast = analyze(run, progress=False)
    assert fast.key_frequencies == syn.planted_freqs(23)
    ref = ra.reference_analyze(run_dir, fast.key_frequencies)
    cmp = ba.compare_tables(fast.measures, ref)
    assert cmp["columns_not_in_reference"] == []
    # float32 as run: the logits of the two differ by their rounding only
    assert cmp["max_rel"] < 2e-5, cmp
    # float64 on both sides: the same math
    cmp64 = ba.analysis_f64_agreement(run_dir, fast.key_frequencies, run.epochs, "cpu")
    assert cmp64["max_rel"] < 1e-9, cmp64


def test_reference_neuron_clusters_find_planted_frequencies(bench, tmp_path):
    syn, ra = bench["synthetic_run"], bench["reference_analysis"]
    run_dir = syn.write_synthetic_run(tmp_path / "run", p=23, n_checkpoints=2, every=10)
    run = load_run(run_dir)
    row = ra.reference_measures(
        run.state_dict(run.epochs[-1]), 23, run.labels, run.split.train, run.split.test, []
    )
    assert ra.neuron_key_frequencies(row["_post"], 23) == syn.planted_freqs(23)


def test_synthetic_run_has_the_run_format(bench, tmp_path):
    syn = bench["synthetic_run"]
    run = load_run(syn.write_synthetic_run(tmp_path / "run", p=11, n_checkpoints=3, every=5))
    assert run.epochs == [0, 5, 10]
    assert run.finished
    assert list(run.metrics["epoch"]) == list(range(11))


def test_training_flops_counts(bench):
    flops = bench["bench_training"].training_flops(113, 3830, 8939)
    # 2 d_model (d_head heads + 2 d_mlp + p) dominates the per-sample forward
    assert flops["per_sample_forward"] == 325376
    assert 3.5 < flops["reference"] / flops["useful"] < 4.5


def test_float32_drift_summary(bench):
    d = bench["float32_drift"].drift([1.0, 0.5, 0.2, 0.1], [1.0, 0.5, 0.2004, 0.1001])
    assert d["first_above_tol"] == 2  # 0.0004 / 0.2004 = 2.0e-3 > 1e-3
    assert d["at_epoch"] == 2 and d["max_rel"] == pytest.approx(0.0004 / 0.2004)
    assert bench["float32_drift"].drift([1.0], [1.0])["first_above_tol"] is None


@pytest.mark.slow
def test_run_benchmarks_quick(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run_benchmarks.py"),
            "--quick",
            "--threads",
            "1",
            "--sections",
            "training,analysis",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["training"]["speedup"] > 1
    assert result["analysis"]["comparison_f64"]["max_rel"] < 1e-9
    assert result["analysis"]["comparison"]["max_rel"] < 1e-5  # float32 rounding
    assert "| measure |" in proc.stdout
    assert isinstance(pd.DataFrame(result["analysis"]["scaling_checkpoints"]), pd.DataFrame)
