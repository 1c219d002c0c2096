"""Phase detection on synthetic progress curves with known boundaries, and on a real run.

The synthetic runs mimic the main seed of Nanda et al. 2023 (arXiv 2301.05217): train
loss falls and train accuracy saturates during memorization; the excluded loss bottoms
out where circuit formation begins (``mem``) and then rises; the test loss stays on a
high plateau, falls by about six decades in a smooth step from ``circuit`` to ``cleanup``
(a raised-cosine step, so that its start and end are sharp), then drifts down slowly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import grokinterp
from grokinterp.analysis.phases import GENERALIZED_ACC, MEMORIZED_ACC, Phases, detect_phases

# Paper-like truth (main seed) and the run length.
MEM, CIRCUIT, CLEANUP, EPOCHS = 1400, 9400, 14000, 20000
# Allowed distance from the truth: two checkpoints without noise, five with it.
TOL_CLEAN, TOL_NOISY = 200, 500


def _epochs(last: int, every: int = 100) -> np.ndarray:
    early = [0, 1, 2, 4, 8, 16, 32, 64]
    return np.unique(np.concatenate([early, np.arange(0, last + 1, every)]))


def _sigmoid(t: np.ndarray, center: float, width: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(t - center) / width))


def _step(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 before ``start``, 1 after ``end``, a raised cosine in between."""
    u = np.clip((t - start) / (end - start), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * u)


def _table(t, log_train, train_acc, log_test, test_acc, log_exc, rng, noise) -> pd.DataFrame:
    """A measures table from log10 curves, with Gaussian noise on the log losses."""

    def jitter(x):
        return x + noise * rng.standard_normal(len(t))

    def acc(x):
        return np.clip(x + noise * 0.1 * rng.standard_normal(len(t)), 0.0, 1.0)

    test_loss = 10 ** jitter(log_test)
    return pd.DataFrame(
        {
            "epoch": t,
            "train_loss": 10 ** jitter(log_train),
            "test_loss": test_loss,
            "train_acc": acc(train_acc),
            "test_acc": acc(test_acc),
            "restricted_loss": test_loss,
            "restricted_loss_test": test_loss,
            "restricted_acc": acc(test_acc),
            "excluded_loss": 10 ** jitter(log_exc),
            "gini_embed": 0.1 + 0.5 * acc(test_acc),
            "gini_logit": 0.1 + 0.6 * acc(test_acc),
            "sum_sq_weights": 2000.0 - 1000.0 * acc(test_acc),
        }
    )


def grokking_run(mem=MEM, circuit=CIRCUIT, cleanup=CLEANUP, epochs=EPOCHS, noise=0.0, seed=0):
    """A run that memorizes by ``mem`` and generalizes with a test-loss fall from
    ``circuit`` to ``cleanup``."""
    rng = np.random.default_rng(seed)
    t = _epochs(epochs).astype(float)
    fit = _sigmoid(t, mem / 3, mem / 20)  # train accuracy saturates well before mem
    fall = _step(t, circuit, cleanup)
    # Train loss: fast fit, then a slow decline until mem, a further drop in cleanup.
    log_train = 0.67 - 2.7 * fit - 0.8 * np.minimum(t, mem) / mem - 3.0 * fall
    log_exc = log_train.copy()
    after = t > mem
    rise = np.minimum((t - mem) / (cleanup - mem), 1.0)
    log_exc[after] = log_train[t <= mem][-1] + (1.0 - log_train[t <= mem][-1]) * rise[after]
    log_test = (
        0.67 + 0.5 * fit - 0.02 * t / 1000 - 6.2 * fall - 0.1 * np.maximum(t - cleanup, 0) / 1000
    )
    test_acc = 0.01 + 0.99 * _step(t, circuit, circuit + 0.7 * (cleanup - circuit))
    return _table(t, log_train, 0.01 + 0.99 * fit, log_test, test_acc, log_exc, rng, noise)


def never_grokking_run(epochs=5000, noise=0.0, seed=0):
    """No weight decay: train accuracy 1 by about 500, test accuracy stays at 0.05."""
    rng = np.random.default_rng(seed)
    t = _epochs(epochs).astype(float)
    fit = _sigmoid(t, 300, 30)
    log_train = 0.67 - 3.0 * fit - 2.0 * t / epochs
    log_test = 0.67 + 0.6 * fit + 0.3 * t / epochs
    test_acc = np.full_like(t, 0.05)
    return _table(t, log_train, fit, log_test, test_acc, log_train, rng, noise)


def instant_run(lag=0, epochs=3000, noise=0.0, seed=0):
    """Train and test curves fall together (large train fraction); the test curves lag
    the train curves by ``lag`` epochs."""
    rng = np.random.default_rng(seed)
    t = _epochs(epochs).astype(float)
    fit, gen = _sigmoid(t, 300, 40), _sigmoid(t, 300 + lag, 40)
    log_train = 0.67 - 4.0 * fit - 0.3 * t / 1000
    log_test = 0.67 - 3.5 * gen - 0.3 * t / 1000
    return _table(t, log_train, fit, log_test, gen, log_train + 0.5 * gen, rng, noise)


def _check_order(phases: Phases) -> None:
    ends = [phases.memorization_end, phases.circuit_formation_end, phases.cleanup_end]
    found = [e for e in ends if e is not None]
    assert found == sorted(found)
    assert ends[: len(found)] == found  # a later phase is only found after an earlier one
    for start, end in phases.as_bands().values():
        assert start <= end


def test_paper_like_run_boundaries():
    phases = detect_phases(grokking_run())
    assert abs(phases.memorization_end - MEM) <= TOL_CLEAN
    assert abs(phases.circuit_formation_end - CIRCUIT) <= TOL_CLEAN
    assert abs(phases.cleanup_end - CLEANUP) <= TOL_CLEAN
    assert list(phases.to_dict()) == ["memorization", "circuit_formation", "cleanup"]
    assert phases.to_dict()["memorization"][0] == 0


@pytest.mark.parametrize("seed", range(8))
def test_noisy_run_boundaries(seed):
    phases = detect_phases(grokking_run(noise=0.05, seed=seed))
    assert abs(phases.memorization_end - MEM) <= TOL_NOISY
    assert abs(phases.circuit_formation_end - CIRCUIT) <= TOL_NOISY
    assert abs(phases.cleanup_end - CLEANUP) <= TOL_NOISY
    _check_order(phases)


@pytest.mark.parametrize(
    "mem, circuit, cleanup, epochs",
    [(500, 3000, 5000, 8000), (1000, 20000, 26000, 40000), (2000, 4000, 12000, 16000)],
)
def test_other_timings(mem, circuit, cleanup, epochs):
    phases = detect_phases(grokking_run(mem, circuit, cleanup, epochs, noise=0.02, seed=1))
    assert abs(phases.memorization_end - mem) <= TOL_NOISY
    assert abs(phases.circuit_formation_end - circuit) <= TOL_NOISY
    assert abs(phases.cleanup_end - cleanup) <= TOL_NOISY


def test_loss_spike_does_not_move_boundaries():
    clean = grokking_run()
    spiky = clean.copy()
    for epoch in (5000, 12000):  # single-checkpoint spikes, as with Adam near zero loss
        spiky.loc[spiky["epoch"] == epoch, ["test_loss", "excluded_loss"]] *= 1e3
    assert detect_phases(spiky) == detect_phases(clean)


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_never_grokking_reports_memorization_only(noise):
    phases = detect_phases(never_grokking_run(noise=noise, seed=3))
    assert phases.memorization_end is not None
    assert abs(phases.memorization_end - 500) <= 200
    assert phases.circuit_formation_end is None and phases.cleanup_end is None
    assert list(phases.to_dict()) == ["memorization"]
    assert "no generalization within 5000 epochs" in phases.describe()


def test_nothing_memorized_reports_nothing():
    table = never_grokking_run()
    table["train_acc"] = 0.5
    phases = detect_phases(table)
    assert phases == Phases(None, None, None, 0, 5000)
    assert phases.to_dict() == {} and phases.as_bands() == {}
    assert "no phases found" in phases.describe()


@pytest.mark.parametrize("lag, noise", [(0, 0.0), (0, 0.05), (100, 0.0), (200, 0.05)])
def test_instant_generalization_invents_no_plateau(lag, noise):
    phases = detect_phases(instant_run(lag=lag, noise=noise, seed=2))
    _check_order(phases)
    assert phases.memorization_end <= 600
    assert phases.circuit_formation_end - phases.memorization_end <= 100
    assert phases.cleanup_end is not None and phases.cleanup_end <= 800
    assert "circuit_formation" not in phases.to_dict() or lag > 0


@pytest.mark.parametrize("seed", range(6))
def test_ordering_invariant(seed):
    rng = np.random.default_rng(seed)
    mem = int(rng.integers(3, 20)) * 100
    circuit = mem + int(rng.integers(0, 60)) * 100
    cleanup = circuit + int(rng.integers(5, 50)) * 100
    table = grokking_run(mem, circuit, cleanup, cleanup + 5000, noise=0.08, seed=seed)
    _check_order(detect_phases(table))


def test_deterministic_and_order_free():
    table = grokking_run(noise=0.05, seed=5)
    first = detect_phases(table)
    assert detect_phases(table.copy()) == first
    shuffled = table.sample(frac=1.0, random_state=0)
    assert detect_phases(shuffled) == first


def test_metrics_refine_accuracy_epochs():
    measures = never_grokking_run()
    metrics = pd.DataFrame({"epoch": np.arange(5001)})
    metrics["train_acc"] = (metrics["epoch"] >= 437).astype(float)
    metrics["test_acc"] = 0.05
    phases = detect_phases(measures, metrics)
    assert phases.memorization_end == 437
    assert detect_phases(measures, metrics.iloc[:0]) == detect_phases(measures)


def test_unfinished_cleanup():
    table = grokking_run()
    cut = table[table["epoch"] <= 12500]  # generalized, test loss still falling fast
    phases = detect_phases(cut)
    assert phases.circuit_formation_end is not None and phases.cleanup_end is None
    assert list(phases.to_dict()) == ["memorization", "circuit_formation"]
    assert "unfinished within 12500 epochs" in phases.describe()


def test_output_formats():
    phases = Phases(1400, 9400, 14000)
    assert phases.to_dict() == {
        "memorization": [0, 1400],
        "circuit_formation": [1400, 9400],
        "cleanup": [9400, 14000],
    }
    assert phases.as_bands()["cleanup"] == (9400, 14000)
    assert phases.describe() == (
        "memorization 0-1400, circuit formation 1400-9400, cleanup 9400-14000"
    )
    assert Phases(1400, None, None, last_epoch=5000).describe() == (
        "memorization 0-1400; no generalization within 5000 epochs "
        f"(test accuracy never reached {GENERALIZED_ACC})"
    )
    assert Phases(300, 300, 300).describe() == (
        "memorization 0-300; generalized together with memorization"
    )
    assert MEMORIZED_ACC == 0.99


@pytest.mark.parametrize("ends", [(None, 5, None), (10, 5, 20), (10, None, 20), (10, 20, 15)])
def test_phases_rejects_inconsistent_boundaries(ends):
    with pytest.raises(ValueError):
        Phases(*ends)


def test_missing_columns_are_named():
    table = grokking_run().drop(columns=["excluded_loss", "test_acc"])
    with pytest.raises(ValueError, match="excluded_loss") as info:
        detect_phases(table)
    assert "test_acc" in str(info.value)
    metrics = pd.DataFrame({"epoch": [0, 1], "train_acc": [0.1, 0.2]})
    with pytest.raises(ValueError, match="test_acc"):
        detect_phases(grokking_run(), metrics)


def test_empty_and_non_finite_tables_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        detect_phases(grokking_run().iloc[:0])
    table = grokking_run()
    table.loc[3, "test_loss"] = np.nan
    with pytest.raises(ValueError, match="test_loss"):
        detect_phases(table)


@pytest.mark.slow
def test_real_tiny_run(tmp_path):
    """A small demo-like run (about 15 s on two cores) that groks within its budget."""
    from grokinterp.analysis.measures import analyze

    config = grokinterp.preset("demo").replace(
        p=31, d_model=64, d_mlp=256, n_heads=4, d_head=16, epochs=1000, checkpoint_every=25
    )
    run = grokinterp.train(config, tmp_path / "run", progress=False)
    measures = analyze(run, progress=False).measures
    phases = detect_phases(measures, run.metrics)
    _check_order(phases)
    assert phases.memorization_end is not None and phases.memorization_end <= 300
    assert phases.circuit_formation_end is not None
    assert phases.describe().startswith("memorization 0-")


def test_accuracy_epochs_between_checkpoints():
    """Per-epoch accuracy epochs that fall between two checkpoints still find the fall."""
    measures = instant_run(lag=150)
    measures = measures[(measures["epoch"] % 500 == 0) | (measures["epoch"] < 100)]
    metrics = pd.DataFrame({"epoch": np.arange(3001)})
    metrics["train_acc"] = (metrics["epoch"] >= 510).astype(float)
    metrics["test_acc"] = (metrics["epoch"] >= 520).astype(float)
    phases = detect_phases(measures, metrics)
    _check_order(phases)
    assert phases.memorization_end == 510 and phases.circuit_formation_end == 510
    assert phases.generalized_at == 520


def test_describe_when_no_fall_is_found():
    phases = Phases(100, None, None, 0, 1000, generalized_at=500)
    assert "test accuracy reached 0.99 at 500" in phases.describe()
    assert phases.to_dict() == {"memorization": [0, 100]}
