"""Automatic phase boundaries of a grokking run (Nanda et al. 2023, arXiv 2301.05217, §5.2).

The paper splits its main run into memorization (0 to 1.4k epochs), circuit formation
(1.4k to 9.4k) and cleanup (9.4k to 14k), after which the model has generalized. It
places the boundaries by eye; ``detect_phases`` places them by the rules below, each a
named threshold that can be checked on the plotted curves. Losses are read on a log10
scale after a running median over ``LOSS_SMOOTHING`` checkpoints, which leaves monotone
stretches unchanged and removes spikes one or two checkpoints wide (such as the loss
spikes of Adam; Thilak et al. 2022); accuracies get a running median over
``ACC_SMOOTHING`` rows.

1. **Memorization ends** at the first epoch at which the train accuracy reaches
   ``MEMORIZED_ACC``; if the run later generalizes, it ends instead where the excluded
   loss (REFERENCE.md §2) stops falling: at the lowest excluded loss seen before the
   excluded loss first climbs ``EXCLUDED_RISE_DECADES`` above it, searched from the
   train-accuracy epoch to the generalization epoch (kept at the train-accuracy epoch
   if it never climbs that far). A rising excluded loss under a low train loss is the
   paper's evidence that the Fourier circuit has begun to form. Train accuracy alone
   ends memorization too early: in grokinterp's run of the paper's configuration train
   accuracy reaches 1 by epoch 150, against the paper's 1.4k. In a run that never
   generalizes the key frequencies mean little, so the excluded loss is not used there.
2. **Generalization** is the first epoch at which the test accuracy reaches
   ``GENERALIZED_ACC``. Without it no circuit formation and no cleanup are reported:
   later phases are never invented for a run that does not grok.
3. **Cleanup is the sharp fall of the test loss.** The fall rate at each checkpoint is
   the slope (decades per epoch) of a least-squares line through the ``RATE_WINDOW``
   checkpoints around it. Take the steepest fall among the checkpoints from the end
   of memorization to generalization (from the last checkpoint at or before the one to
   the first at or after the other); cleanup is the unbroken stretch of checkpoints
   around it whose fall rate is at least ``FALL_RATE_FRACTION`` times the steepest,
   reaching back no further than the end of memorization. Its first checkpoint, or
   the end of memorization if that is later, is the end of **circuit formation**; its
   last, or the generalization epoch if that is later, is the end of **cleanup**. If
   the stretch reaches the last checkpoint, cleanup is unfinished (end None).

Rule 3 assumes that during circuit formation the test loss drifts far slower than a
tenth of its cleanup rate (the paper describes it as staying high). The restricted loss is
not used: it already starts to fall during circuit formation, so it marks no sharp
boundary. In a run whose test accuracy reaches ``GENERALIZED_ACC`` no later than its
train accuracy reaches ``MEMORIZED_ACC`` (large train fractions), test loss fell with
train loss; the steepest fall is then searched up to the end of memorization, circuit
formation has zero length and cleanup covers at most the tail of that fall. Phases of
zero length are left out of ``to_dict``, ``as_bands`` and ``describe``.

Example (a p = 53 demo run that generalizes by epoch 800):
    >>> phases = detect_phases(analyze(run).measures, run.metrics)
    >>> phases.describe()
    'memorization 0-66, circuit formation 66-200, cleanup 200-1000'
    >>> phases.to_dict()["cleanup"]
    [200, 1000]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MEMORIZED_ACC = 0.99
"""Train accuracy at which the train set counts as memorized."""

GENERALIZED_ACC = 0.99
"""Test accuracy at which the run counts as generalized."""

EXCLUDED_RISE_DECADES = 0.1
"""Rise of the log10 excluded loss above its running minimum (a factor of about 1.26)
that shows the excluded loss has turned upward."""

FALL_RATE_FRACTION = 0.1
"""Cleanup is where the log test loss falls at least this fraction of its steepest rate."""

LOSS_SMOOTHING = 5
"""Checkpoints in the running median applied to the log losses."""

RATE_WINDOW = 5
"""Checkpoints in the least-squares line whose slope is the fall rate at a checkpoint."""

ACC_SMOOTHING = 3
"""Rows in the running median applied to the accuracies (one-row spikes are ignored)."""

LOSS_FLOOR = 1e-30
"""Losses are clipped below at this value before taking log10 (a loss of exactly 0)."""

MEASURE_COLUMNS = ("epoch", "train_acc", "test_loss", "test_acc", "excluded_loss")
"""Columns of the measures table that the rules read."""

METRIC_COLUMNS = ("epoch", "train_acc", "test_acc")
"""Columns of the per-epoch metrics table that the rules read."""

PHASE_NAMES = ("memorization", "circuit_formation", "cleanup")


class NonFiniteMeasuresError(ValueError):
    """A table holds NaN or infinity (typically a run that diverged)."""


@dataclass(frozen=True)
class Phases:
    """Phase boundaries of one run, in epochs; None where a phase was not found.

    Attributes:
        memorization_end: end of memorization (start: ``first_epoch``).
        circuit_formation_end: end of circuit formation, start of cleanup.
        cleanup_end: end of cleanup; the run has generalized from here on.
        first_epoch: first epoch of the tables, the start of memorization.
        last_epoch: last epoch of the tables, for messages about what was not reached.
        generalized_at: first epoch at which the test accuracy reached ``GENERALIZED_ACC``
            (it may precede ``memorization_end`` in a run that generalizes at once).
    """

    memorization_end: int | None
    circuit_formation_end: int | None
    cleanup_end: int | None
    first_epoch: int = 0
    last_epoch: int | None = None
    generalized_at: int | None = None

    def __post_init__(self) -> None:
        bounds = [self.first_epoch, *self._ends()]
        for name, earlier, later in zip(PHASE_NAMES, bounds[:-1], bounds[1:], strict=True):
            if later is None:
                continue
            if earlier is None:
                raise ValueError(f"{name} has an end ({later}) but the phase before it has none")
            if later < earlier:
                raise ValueError(
                    f"phase boundaries must not decrease: {name} ends at {later}, "
                    f"before its start {earlier}"
                )

    def _ends(self) -> list[int | None]:
        return [self.memorization_end, self.circuit_formation_end, self.cleanup_end]

    def as_bands(self) -> dict[str, tuple[int, int]]:
        """Phase name -> (start_epoch, end_epoch) for each phase found with non-zero length.

        Returns:
            Ordered dict with keys among ``memorization``, ``circuit_formation``,
            ``cleanup``; the figures take it as their ``phases`` argument.
        """
        bands = {}
        start = self.first_epoch
        for name, end in zip(PHASE_NAMES, self._ends(), strict=True):
            if end is None:
                break
            if end > start or name == "memorization":
                bands[name] = (int(start), int(end))
            start = end
        return bands

    def to_dict(self) -> dict[str, list[int]]:
        """The bands as JSON-ready lists, e.g. ``{"memorization": [0, 1400], ...}``."""
        return {name: [start, end] for name, (start, end) in self.as_bands().items()}

    def describe(self) -> str:
        """One line for a human, e.g. ``memorization 0-1400, circuit formation 1400-9400``."""
        bands = self.as_bands()
        if not bands:
            return f"no phases found: train accuracy never reached {MEMORIZED_ACC}{self._within()}"
        text = ", ".join(f"{n.replace('_', ' ')} {a}-{b}" for n, (a, b) in bands.items())
        if self.circuit_formation_end is None and self.generalized_at is not None:
            return (
                f"{text}; test accuracy reached {GENERALIZED_ACC} at {self.generalized_at}, "
                "but no fall of the test loss was found among the checkpoints"
            )
        if self.circuit_formation_end is None:
            return (
                f"{text}; no generalization{self._within()} "
                f"(test accuracy never reached {GENERALIZED_ACC})"
            )
        if self.cleanup_end == self.memorization_end:
            return f"{text}; generalized together with memorization"
        if "circuit_formation" not in bands:
            text += " (no separate circuit formation)"
        if self.cleanup_end is None:
            text += f"; cleanup from {self.circuit_formation_end} unfinished{self._within()}"
        return text

    def _within(self) -> str:
        return "" if self.last_epoch is None else f" within {self.last_epoch} epochs"


def detect_phases(measures: pd.DataFrame, metrics: pd.DataFrame | None = None) -> Phases:
    """Find the ends of memorization, circuit formation and cleanup (rules: module docstring).

    Args:
        measures: one row per checkpoint, from ``analyze(run).measures``; needs the
            columns in ``MEASURE_COLUMNS``.
        metrics: optional per-epoch log, ``run.metrics``; needs ``METRIC_COLUMNS``. When
            given and non-empty, the accuracy thresholds are read from it at per-epoch
            resolution; the loss rules always use the checkpoints.

    Returns:
        Phases with each boundary an epoch, or None where the phase was not found.

    Raises:
        ValueError: a table lacks a needed column, is empty, or holds non-finite values.
    """
    ckpt = _clean(measures, MEASURE_COLUMNS, "measures")
    per_epoch = ckpt
    if metrics is not None and len(metrics):
        per_epoch = _clean(metrics, METRIC_COLUMNS, "metrics")
    first = int(min(ckpt["epoch"].iloc[0], per_epoch["epoch"].iloc[0]))
    last = int(max(ckpt["epoch"].iloc[-1], per_epoch["epoch"].iloc[-1]))
    memorized = _first_at(per_epoch, "train_acc", MEMORIZED_ACC)
    if memorized is None:
        return Phases(None, None, None, first, last)
    generalized = _first_at(per_epoch, "test_acc", GENERALIZED_ACC)
    if generalized is None:
        return Phases(memorized, None, None, first, last)
    mem_end = _excluded_turn(ckpt, memorized, generalized)
    epochs = ckpt["epoch"].to_numpy()
    log_test = _smooth(np.log10(ckpt["test_loss"].clip(lower=LOSS_FLOOR)), LOSS_SMOOTHING)
    fall = _steep_fall(epochs, log_test, mem_end, generalized)
    if fall is None:
        return Phases(mem_end, None, None, first, last, generalized)
    start, end = fall
    circuit_end = max(start, mem_end)
    cleanup_end = None if end is None else max(end, generalized, circuit_end)
    return Phases(mem_end, circuit_end, cleanup_end, first, last, generalized)


def _clean(table: pd.DataFrame, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """Check the columns and values; sort by epoch, keeping the last row of a repeated epoch."""
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{what} table lacks column(s) {missing} needed for phase detection; "
            f"found {list(table.columns)}"
        )
    if table.empty:
        raise ValueError(f"{what} table is empty: phases need at least one row")
    out = table[list(columns)].astype(float)
    bad = [c for c in columns if not np.isfinite(out[c]).all()]
    if bad:
        raise NonFiniteMeasuresError(
            f"{what} table has NaN or infinite values in {bad}; phases need finite ones"
        )
    out = out.drop_duplicates("epoch", keep="last").sort_values("epoch", kind="stable")
    out["epoch"] = out["epoch"].astype(int)
    return out.reset_index(drop=True)


def _smooth(values: pd.Series, window: int) -> np.ndarray:
    """Centred running median; the window shrinks at both ends of the series."""
    return values.rolling(window, center=True, min_periods=1).median().to_numpy()


def _first_at(table: pd.DataFrame, column: str, level: float) -> int | None:
    """First epoch at which the smoothed ``column`` reaches ``level``, or None."""
    hits = np.flatnonzero(_smooth(table[column], ACC_SMOOTHING) >= level)
    return None if hits.size == 0 else int(table["epoch"].iloc[hits[0]])


def _excluded_turn(ckpt: pd.DataFrame, memorized: int, generalized: int) -> int:
    """Epoch of the excluded-loss minimum where it turns upward, else ``memorized``.

    Args:
        ckpt: cleaned measures table.
        memorized: epoch at which the train accuracy reached ``MEMORIZED_ACC``.
        generalized: epoch at which the test accuracy reached ``GENERALIZED_ACC``.

    Returns:
        The epoch of the lowest smoothed log excluded loss seen before it first rises
        ``EXCLUDED_RISE_DECADES`` above it, searching checkpoints in [memorized,
        generalized]; ``memorized`` when it never rises that far there.
    """
    log_exc = _smooth(np.log10(ckpt["excluded_loss"].clip(lower=LOSS_FLOOR)), LOSS_SMOOTHING)
    epochs = ckpt["epoch"].to_numpy()
    best_epoch, best = None, np.inf
    for epoch, value in zip(epochs, log_exc, strict=True):
        if epoch < memorized:
            continue
        if epoch > generalized:
            break
        if value < best:
            best_epoch, best = int(epoch), value
        elif value >= best + EXCLUDED_RISE_DECADES:
            return best_epoch
    return memorized


def _fall_rate(epochs: np.ndarray, log_loss: np.ndarray) -> np.ndarray:
    """Fall rate of ``log_loss`` (decades per epoch, falling > 0) at each checkpoint.

    The slope of a least-squares line through the ``RATE_WINDOW`` checkpoints centred on
    each one (fewer at the ends), which averages out checkpoint-to-checkpoint noise.
    """
    x, y = pd.Series(epochs, dtype=float), pd.Series(log_loss, dtype=float)
    roll = dict(window=RATE_WINDOW, center=True, min_periods=2)
    slope = y.rolling(**roll).cov(x) / x.rolling(**roll).var()
    return -slope.fillna(0.0).to_numpy()


def _steep_fall(
    epochs: np.ndarray, log_loss: np.ndarray, mem_end: int, generalized: int
) -> tuple[int, int | None] | None:
    """The stretch of fast fall around the steepest fall of a smoothed log loss.

    Args:
        epochs: [checkpoint] sorted epochs.
        log_loss: [checkpoint] smoothed log10 test loss.
        mem_end: end of memorization; the stretch reaches back at most to the last
            checkpoint at or before it.
        generalized: epoch the test accuracy reached ``GENERALIZED_ACC``.

    Returns:
        (first, last) epoch of the run of checkpoints, around the steepest one, whose
        fall rate is at least ``FALL_RATE_FRACTION`` times the steepest rate; last is
        None if the run reaches the final checkpoint. None if the loss never falls.
    """
    if len(epochs) < 2:
        return None
    rate = _fall_rate(epochs, log_loss)
    # Search after memorization, up to generalization; for a run that generalized no
    # later than it memorized, the fall came with memorization: search up to its end.
    lo, hi = (mem_end, generalized) if generalized > mem_end else (epochs[0], mem_end)
    # Checkpoints that bracket an epoch range: the last at or before its start to the
    # first at or after its end, so that boundaries between checkpoints still count.
    floor_i = max(int(np.searchsorted(epochs, mem_end, side="right")) - 1, 0)
    lo_i = max(int(np.searchsorted(epochs, lo, side="right")) - 1, 0)
    hi_i = min(int(np.searchsorted(epochs, hi)), len(epochs) - 1)
    window = np.arange(lo_i, max(lo_i, hi_i) + 1)
    steepest = window[np.argmax(rate[window])]  # first of equal maxima: deterministic
    if rate[steepest] <= 0:
        return None
    fast = rate >= FALL_RATE_FRACTION * rate[steepest]
    first = steepest
    while first > floor_i and fast[first - 1]:
        first -= 1
    last = steepest
    while last + 1 < len(rate) and fast[last + 1]:
        last += 1
    end = None if last + 1 == len(rate) else int(epochs[last])
    return int(epochs[first]), end
