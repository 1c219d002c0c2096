"""The fast measures (``GridMeasures``) against the plain definitions, and ``analyze``.

``checkpoint_measures`` applies losses.py to the [p², p] logits of the hooked model's
plain forward; ``GridMeasures`` uses ``grid_logits`` and residue sums. In float64 they
must agree to rounding on any weights, including every special case of the shortcut.
"""

import math

import pytest
import torch

import grokinterp
import grokinterp.analysis.measures as measures_module
from grokinterp.analysis.measures import (
    GridMeasures,
    analyze,
    checkpoint_measures,
    logit_measures,
    weight_measures,
)
from grokinterp.errors import CheckpointError
from grokinterp.model import GrokTransformer, ModelConfig
from grokinterp.runs import load_run
from grokinterp.tasks import TaskConfig, grid_labels, grid_tokens, make_split


def random_model(p: int, seed: int, scale: float = 3.0) -> GrokTransformer:
    """float64 weights large enough for non-uniform attention and sharp logits."""
    cfg = ModelConfig.for_task(p, d_model=32, n_heads=2, d_head=16, d_mlp=64)
    model = GrokTransformer(cfg, seed=seed).double()
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(scale)
    return model


def plain_row(model: GrokTransformer, p: int, split, keys) -> dict[str, float]:
    """The definitions on the logits of the plain hooked forward."""
    with torch.no_grad():
        logits = model(grid_tokens(p))[:, -1]
    row = logit_measures(logits, grid_labels(p), split.train, split.test, keys)
    return {**row, **weight_measures(model)}


def assert_rows_close(fast: dict, plain: dict, rel: float) -> None:
    assert fast.keys() == plain.keys()
    for key, want in plain.items():
        got = fast[key]
        if math.isnan(want):
            assert math.isnan(got), key
            continue
        # cos coefficients are signed projections: compared on the logits' scale
        scale = 1.0 if key.startswith("cos_coef") else max(abs(want), 1e-300)
        assert abs(got - want) <= rel * scale, (key, got, want)


@pytest.mark.parametrize(
    "p,keys,seed",
    [
        (13, [2, 5], 0),
        (13, [], 1),  # no key frequencies: excluded = plain loss, no cos share
        (10, [1, 5], 2),  # even p: k = p / 2 has no sin direction
        (17, [1, 3, 4, 8], 3),
    ],
)
def test_grid_measures_equal_plain_definitions(p, keys, seed):
    model = random_model(p, seed)
    split = make_split(TaskConfig(p=p, train_frac=0.4, data_seed=seed))
    fast = GridMeasures(p, split.train, split.test, keys)(model)
    plain = plain_row(model, p, split, keys)
    assert plain["train_loss"] > 0.1 and plain["excluded_loss"] != plain["train_loss"] or not keys
    assert_rows_close(fast, plain, rel=1e-9)
    # checkpoint_measures (last_logits shortcut) is the same row again
    same = checkpoint_measures(model, grid_tokens(p), grid_labels(p), split.train, split.test, keys)
    assert_rows_close(same, plain, rel=1e-9)


def test_grid_measures_row_by_row_fallback_agrees(monkeypatch):
    # Beyond a projection spread of _MAX_PROJECTION_SPREAD the excluded losses are
    # computed one log-sum-exp per row; force that path and compare with both.
    model, keys = random_model(13, 4), [3, 6]
    split = make_split(TaskConfig(p=13, train_frac=0.5))
    measure = GridMeasures(13, split.train, split.test, keys)
    shortcut = measure(model)
    monkeypatch.setattr(measures_module, "_MAX_PROJECTION_SPREAD", -1.0)
    direct = measure(model)
    assert_rows_close(direct, shortcut, rel=1e-11)
    assert_rows_close(direct, plain_row(model, 13, split, keys), rel=1e-9)


def test_grid_measures_survive_huge_logits():
    # Logits in the thousands: exp(-G) would overflow; the row-by-row path takes over.
    model, keys = random_model(11, 5, scale=12.0), [2]
    split = make_split(TaskConfig(p=11, train_frac=0.5))
    fast = GridMeasures(11, split.train, split.test, keys)(model)
    plain = plain_row(model, 11, split, keys)
    assert max(abs(v) for v in plain.values() if not math.isnan(v)) > 100
    assert all(math.isfinite(v) for v in fast.values())
    assert_rows_close(fast, plain, rel=1e-9)


def test_constant_logits_give_nan_share_not_an_error():
    model = random_model(7, 6)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    split = make_split(TaskConfig(p=7, train_frac=0.5))
    fast = GridMeasures(7, split.train, split.test, [1])(model)
    plain = plain_row(model, 7, split, [1])
    assert math.isnan(fast["cos_frac_explained"]) and math.isnan(plain["cos_frac_explained"])
    assert fast["train_loss"] == pytest.approx(math.log(7), rel=1e-12)
    assert_rows_close(fast, plain, rel=1e-12)


def test_key_frequency_out_of_range_is_refused():
    split = make_split(TaskConfig(p=7, train_frac=0.5))
    with pytest.raises(ValueError, match="outside 1..3"):
        GridMeasures(7, split.train, split.test, [4])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import tiny_config

    path = tmp_path_factory.mktemp("grid") / "run"
    grokinterp.train(tiny_config(epochs=60), path, progress=False)
    return load_run(path)


def test_analyze_on_trained_checkpoints_matches_plain_path(tiny_run):
    run = tiny_run
    keys = [2, 4]  # a 60-epoch run has no clusters of its own yet
    table = analyze(run, key_freqs=keys, progress=False, workers=1).measures
    model = GrokTransformer(run.config.model).double().eval()
    for _, row in table.iterrows():
        model.load_state_dict(run.state_dict(int(row["epoch"])))
        plain = plain_row(model, run.p, run.split, keys)
        # float32 logits (fast path) against float64 (plain): float32 rounding only
        assert_rows_close(row.drop("epoch").to_dict(), plain, rel=1e-4)


def test_workers_give_the_same_table_and_restore_threads(tiny_run):
    threads = torch.get_num_threads()
    one = analyze(tiny_run, [1, 5], progress=False, workers=1).measures
    three = analyze(tiny_run, [1, 5], progress=False, workers=3).measures
    assert torch.get_num_threads() == threads
    assert list(three["epoch"]) == tiny_run.epochs
    assert one.equals(three)


def test_bad_checkpoint_in_a_worker_stops_analysis_cleanly(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(tiny_run.path, copy)
    run = load_run(copy)
    victim = run.checkpoint_path(run.epochs[len(run.epochs) // 2])
    victim.write_bytes(victim.read_bytes()[:100])
    threads = torch.get_num_threads()
    with pytest.raises(CheckpointError):
        analyze(run, progress=False, workers=2)
    assert torch.get_num_threads() == threads


def test_workers_must_be_positive(tiny_run):
    with pytest.raises(ValueError, match="workers"):
        analyze(tiny_run, progress=False, workers=0)


def test_analyze_argument_checks(tiny_run):
    # Values of the wrong type are stopped by the test suite's runtime type checks
    # before analyze sees them; the checks that users without them get are tested on
    # the helpers directly.
    from grokinterp.analysis.measures import _checked_epochs, _integer

    run = tiny_run
    for bad, what in [(1.5, "workers"), (True, "workers"), ("2", "workers"), (2.7, "x")]:
        with pytest.raises(ValueError, match=f"{what} must be an integer"):
            _integer(bad, what)
    assert _integer(3.0, "x") == 3 and _integer(torch.tensor(4), "x") == 4
    with pytest.raises(ValueError, match="an epoch must be an integer"):
        _checked_epochs(run, [10.5])
    with pytest.raises(ValueError, match="epochs is empty"):
        analyze(run, [1], epochs=[], progress=False)
    with pytest.raises(CheckpointError, match="no checkpoint for epoch"):
        analyze(run, [1], epochs=[run.epochs[1], 12345], progress=False)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        analyze(run, [1], progress=False, workers=-1)
    # repeated and unsorted epochs: measured once each, in increasing order
    picked = [run.epochs[3], run.epochs[1], run.epochs[3], run.epochs[2]]
    table = analyze(run, [1], epochs=picked, progress=False).measures
    assert list(table["epoch"]) == [run.epochs[1], run.epochs[2], run.epochs[3]]


@pytest.mark.parametrize("chunk", [0, -1])
def test_grid_logits_refuses_bad_chunks(chunk):
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        random_model(7, 0).grid_logits(chunk=chunk)


def test_grid_logits_chunk_larger_than_p_is_capped():
    model = random_model(7, 0)
    with torch.no_grad():
        torch.testing.assert_close(model.grid_logits(chunk=10**6), model.grid_logits(chunk=2))
