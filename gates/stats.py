"""Estimators with confidence intervals for the quantities edgeproof gates on.

Every function returns an ``Estimate`` (value, low, high, confidence) and raises
``ValueError`` when the data cannot support a two-sided interval at that confidence, so a
gate never compares a threshold with a number that has no error bar.

- Quantiles (median, p90, p99): distribution-free order-statistic intervals from the
  binomial distribution (exact coverage >= nominal, no resampling).
- Speedup: ratio of medians, percentile CI from a paired block bootstrap (blocks of the
  baseline and the candidate taken adjacent in time are resampled together).
- Proportions: Wilson score interval (scipy's ``binomtest``).
- Paired difference of proportions (accuracy drop): Tango's score interval (Tango 1998,
  Stat Med 17:891), which stays informative with zero discordant pairs.
- Means (KL divergence): bootstrap percentile interval (``scipy.stats.bootstrap``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

from edgeproof.records import Estimate


def _alpha(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return 1.0 - confidence


def _order_stat_ranks(n: int, q: float, confidence: float) -> tuple[int, int] | None:
    """1-based ranks (r, s) with P(X_(r) <= xi_q <= X_(s)) >= confidence, or None."""
    alpha = _alpha(confidence)
    r = int(stats.binom.ppf(alpha / 2, n, q))  # F(r - 1) < alpha/2
    s = int(stats.binom.ppf(1 - alpha / 2, n, q)) + 1  # F(s - 1) >= 1 - alpha/2
    if r < 1 or s > n:
        return None
    return r, s


def min_samples_for_quantile(q: float, confidence: float) -> int:
    """Fewest samples giving a two-sided order-statistic CI for the q-quantile."""
    n = 2
    while _order_stat_ranks(n, q, confidence) is None:
        n = n + 1 if n < 64 else int(n * 1.05) + 1
    while n > 2 and _order_stat_ranks(n - 1, q, confidence) is not None:
        n -= 1
    return n


def quantile_ci(samples: np.ndarray, q: float, confidence: float) -> Estimate:
    """The q-quantile with an exact distribution-free (order-statistic) CI."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    ranks = _order_stat_ranks(len(x), q, confidence)
    if ranks is None:
        need = min_samples_for_quantile(q, confidence)
        raise ValueError(
            f"{len(x)} samples are too few for a {confidence:.0%} CI of the {q:g} quantile "
            f"(need >= {need})"
        )
    r, s = ranks
    return Estimate(
        value=float(np.quantile(x, q)),
        low=float(x[r - 1]),
        high=float(x[s - 1]),
        confidence=confidence,
    )


def median_ci(samples: np.ndarray, confidence: float) -> Estimate:
    return quantile_ci(samples, 0.5, confidence)


def speedup_ci(
    baseline_ms: np.ndarray,
    candidate_ms: np.ndarray,
    block_size: int,
    confidence: float,
    resamples: int,
    seed: int = 0,
) -> Estimate:
    """median(baseline) / median(candidate) with a paired block-bootstrap CI.

    Block ``i`` of each array was measured adjacent in time; only whole blocks present in
    both arrays are used (trailing partial blocks are dropped).
    """
    alpha = _alpha(confidence)
    n_blocks = min(len(baseline_ms), len(candidate_ms)) // block_size
    if n_blocks < 2:
        raise ValueError(f"need at least 2 paired blocks of {block_size} samples for a speedup CI")
    used = n_blocks * block_size
    base = np.asarray(baseline_ms[:used], dtype=np.float64).reshape(n_blocks, block_size)
    cand = np.asarray(candidate_ms[:used], dtype=np.float64).reshape(n_blocks, block_size)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_blocks, size=(resamples, n_blocks))
    ratios = np.median(base[idx].reshape(resamples, -1), axis=1) / np.median(
        cand[idx].reshape(resamples, -1), axis=1
    )
    low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    value = float(np.median(base) / np.median(cand))
    return Estimate(value=value, low=float(low), high=float(high), confidence=confidence)


def throughput_ci(seconds_per_batch: np.ndarray, batch: int, confidence: float) -> Estimate:
    """Items per second, batch / median(seconds), CI from the median's order statistics."""
    med = median_ci(seconds_per_batch, confidence)
    return Estimate(
        value=batch / med.value, low=batch / med.high, high=batch / med.low, confidence=confidence
    )


def proportion_ci(successes: np.ndarray, confidence: float) -> Estimate:
    """Share of True values with a Wilson score interval (non-degenerate at 0% and 100%)."""
    flags = np.asarray(successes, dtype=bool)
    if flags.size == 0:
        raise ValueError("no items to estimate a proportion from")
    k, n = int(flags.sum()), int(flags.size)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return Estimate(value=k / n, low=float(ci.low), high=float(ci.high), confidence=confidence)


def _tango_z(delta: float, b: int, c: int, n: int) -> float:
    """Tango's score statistic for H0: p_b - p_c = delta (b, c: discordant counts)."""
    w = -b - c + (2 * n - b + c) * delta
    disc = w * w + 8 * n * c * delta * (1 - delta)
    p_c = max((math.sqrt(max(disc, 0.0)) - w) / (4 * n), 0.0)  # restricted MLE of p_c
    var = (2 * p_c + delta * (1 - delta)) / n
    diff = (b - c) / n - delta
    if var <= 0.0:
        return 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def paired_difference_ci(
    baseline_correct: np.ndarray, candidate_correct: np.ndarray, confidence: float
) -> Estimate:
    """Baseline accuracy minus candidate accuracy on the same items (positive = worse).

    Tango's score interval: the set of differences ``d`` whose score statistic is within
    the normal quantile; with b = items only the baseline gets right and c = items only
    the candidate gets right, the point estimate is (b - c) / n. With no discordant pairs
    it gives [-z²/(n+z²), z²/(n+z²)], not a zero-width interval.
    """
    base = np.asarray(baseline_correct, dtype=bool)
    cand = np.asarray(candidate_correct, dtype=bool)
    if base.shape != cand.shape or base.size == 0:
        raise ValueError("paired correctness arrays must be non-empty and of equal length")
    n = int(base.size)
    b, c = int((base & ~cand).sum()), int((~base & cand).sum())
    z = stats.norm.ppf(1 - _alpha(confidence) / 2)
    point = (b - c) / n
    eps = 1e-12

    def f(d: float) -> float:
        return _tango_z(d, b, c, n) ** 2 - z * z

    low = -1.0 + eps if f(-1.0 + eps) <= 0 else optimize.brentq(f, -1.0 + eps, point)
    high = 1.0 - eps if f(1.0 - eps) <= 0 else optimize.brentq(f, point, 1.0 - eps)
    return Estimate(value=point, low=float(low), high=float(high), confidence=confidence)


def mean_ci(values: np.ndarray, confidence: float, resamples: int, seed: int = 0) -> Estimate:
    """Mean with a bootstrap percentile CI; all-equal data gives a zero-width interval."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values to estimate a mean from")
    mean = float(x.mean())
    if x.size == 1 or np.ptp(x) == 0.0:
        return Estimate(value=mean, low=mean, high=mean, confidence=confidence)
    res = stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    ci = res.confidence_interval
    return Estimate(value=mean, low=float(ci.low), high=float(ci.high), confidence=confidence)
