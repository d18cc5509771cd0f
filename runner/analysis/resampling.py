"""Bootstrap intervals computed as weighted sums over the real rows, the way TFMA computes them.

Each resample is the ordinary bootstrap (as many rows drawn with replacement as there are) written as
weights, how many times each row was drawn: every figure that is a ratio of per-group sums (a selection
rate, a true-positive rate, a mean absolute error) then comes out of one matrix product of the weights with
the rows' indicator columns.  All the figures of one sensitive feature come from the same resamples in one
pass, on every row (no subsample, no rescaling): 1,000 resamples of 200,000 rows
take about 5 s on one core (mostly drawing the rows), where fairlearn took minutes.  A gap between groups,
which cannot fall below 0, gets its interval from the signed differences (:func:`largest_gaps`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

WEIGHTS_AT_ONCE = 10_000_000  # row weights held in memory at once (80 MB as float64)


def bootstrap_weights(n_rows: int, n_boot: int, seed: int, block: int | None = None) -> Iterator[np.ndarray]:
    """The resamples' row weights (how often each row was drawn), a block of resamples at a time
    (``(block, n_rows)``; by default as many as :data:`WEIGHTS_AT_ONCE` allows); the same ``seed`` gives the
    same weights, so a rerun reproduces every interval."""
    rng = np.random.default_rng(seed)
    block = max(1, min(n_boot, block or WEIGHTS_AT_ONCE // max(n_rows, 1)))
    for start in range(0, n_boot, block):
        yield np.stack([np.bincount(rng.integers(0, n_rows, n_rows), minlength=n_rows)
                        for _ in range(min(block, n_boot - start))]).astype(np.float64)


def group_sums(values: np.ndarray, codes: np.ndarray, n_groups: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n_groups, n_columns)``: in each resample, each group's weighted sum of each column of
    ``values`` (``(n_rows, n_columns)``); ``codes`` gives each row's group, 0 to ``n_groups - 1``."""
    values = np.asarray(values, dtype=np.float64)
    members = np.asarray(codes)[:, None] == np.arange(n_groups)[None, :]
    design = (members[:, :, None] * values[:, None, :]).reshape(len(values), -1)
    blocks = [weights @ design for weights in bootstrap_weights(len(values), n_boot, seed)]
    return np.concatenate(blocks).reshape(n_boot, n_groups, values.shape[1])


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of a figure's resampled values; resamples where the figure is undefined
    (NaN: a group that drew no positive row) are left out."""
    kept = np.asarray(samples, dtype=np.float64)
    kept = kept[~np.isnan(kept)]
    if kept.size == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(kept, [tail, 100 - tail])
    return float(low), float(high)


def largest_gaps(points: list[np.ndarray], samples: list[np.ndarray], level: float = 0.95
                 ) -> list[tuple[float, float]] | None:
    """For each of several per-group figures (``points``: one value per group; ``samples``: ``(n_boot,
    n_groups)``), an interval at ``level`` on its largest gap between two groups (max - min), the intervals
    holding together; None when a group's value is undefined or infinite (no interval by this route).

    Why not the percentile interval of the resampled max - min: a gap is never below 0, so where the groups are
    truly alike (a fair model: the population gap is 0) every resampled gap lies above the truth and that
    interval misses it in about half the samples.  Here each pairwise difference keeps its sign: the bootstrap's
    largest standardised deviation over all of them (max-|z|) gives intervals that hold for every pair at once;
    each is folded at 0 (an interval across 0 starts at 0), and the largest gap lies between the largest folded
    lower end and the largest upper end.  A resample where a group's value is undefined (it drew no positive)
    is left out; one where it is infinite (a log of a rate of 0) counts as a deviation beyond any bound."""
    estimates, resampled, owner = [], [], []
    for part, (point, sample) in enumerate(zip(points, samples)):
        first, second = np.triu_indices(len(point), 1)
        estimates.append(point[first] - point[second])
        resampled.append(sample[:, first] - sample[:, second])
        owner.append(np.full(len(first), part))
    estimate, drawn, owners = np.concatenate(estimates), np.concatenate(resampled, axis=1), np.concatenate(owner)
    if not np.all(np.isfinite(estimate)):
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.nanstd(np.where(np.isfinite(drawn), drawn, np.nan), axis=0)
        deviation = np.abs(drawn - estimate)
        standardised = np.where(deviation == 0, 0.0, deviation / error)
    defined = ~np.isnan(standardised).all(axis=1)
    if not defined.any():
        return None
    critical = np.quantile(np.nanmax(standardised[defined], axis=1), level)
    low, high = estimate - critical * error, estimate + critical * error
    folded_low = np.where((low <= 0) & (high >= 0), 0.0, np.minimum(np.abs(low), np.abs(high)))
    folded_high = np.maximum(np.abs(low), np.abs(high))
    return [(float(folded_low[owners == part].max()), float(folded_high[owners == part].max()))
            for part in range(len(points))]


def rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (a rate of nothing is undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def spread(per_group: np.ndarray) -> np.ndarray:
    """Largest minus smallest group value, per resample (``(n_boot, n_groups)`` in)."""
    low, high = extremes(per_group)
    return high - low


def min_over_max(per_group: np.ndarray) -> np.ndarray:
    """Smallest over largest group value, per resample (1 is parity)."""
    low, high = extremes(per_group)
    return rate(low, high)


def extremes(per_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest group value in each resample; NaN in a resample where a group's value is undefined
    (it drew no positive row, say): a figure over the compared groups is then undefined too, and that resample
    is left out of the interval rather than judged on fewer groups."""
    return per_group.min(axis=1), per_group.max(axis=1)
