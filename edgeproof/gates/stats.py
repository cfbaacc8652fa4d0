"""Estimators with confidence intervals for the quantities edgeproof gates on.

Every function returns an ``Estimate`` (value, low, high, confidence) and raises
``ValueError`` (with a one-line message) when the data cannot support a two-sided interval
at that confidence, so a gate never compares a threshold with a number without error bar.

- Quantiles (median, p90, p99): distribution-free order-statistic intervals from the
  binomial distribution (exact, coverage >= nominal, no resampling).
- Speedup: ratio of medians, percentile CI from a paired block bootstrap (block ``i`` of
  the baseline and of the candidate, taken adjacent in time, are resampled together).
- Throughput: batch / median seconds per batch; the median's order-statistic CI, inverted.
- Proportions: Wilson score interval (``scipy.stats.binomtest``).
- Paired difference of proportions (accuracy drop): Newcombe's hybrid score interval for
  paired data (Newcombe 1998, method 10), non-degenerate with zero discordant pairs.
- Means (KL divergence): bootstrap percentile interval (``scipy.stats.bootstrap``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from edgeproof.records import Estimate


def _alpha(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return 1.0 - confidence


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(1.0 - _alpha(confidence) / 2.0))


def order_stat_ranks(n: int, q: float, confidence: float) -> tuple[int, int] | None:
    """1-based ranks (r, s) of the equal-tailed order-statistic CI of the q-quantile.

    With B ~ Binomial(n, q) the number of samples below the true quantile,
    P(X_(r) <= x_q <= X_(s)) = F(s - 1) - F(r - 1). ``r`` is the largest rank with
    F(r - 1) <= alpha/2 and ``s`` the smallest with F(s - 1) >= 1 - alpha/2, so the
    coverage is >= ``confidence``. None when n is too small (r < 1 or s > n).
    """
    alpha = _alpha(confidence)
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    if n < 1:
        return None
    r = int(stats.binom.ppf(alpha / 2.0, n, q))  # smallest k with F(k) >= alpha/2
    if stats.binom.cdf(r, n, q) <= alpha / 2.0:  # F(r) == alpha/2 exactly: r + 1 is fine
        r += 1
    s = int(stats.binom.ppf(1.0 - alpha / 2.0, n, q)) + 1
    if r < 1 or s > n:
        return None
    return r, s


def min_samples_for_quantile(q: float, confidence: float) -> int:
    """Fewest samples for which ``quantile_ci(samples, q, confidence)`` has an interval.

    Needs (1 - q)^n <= alpha/2 (a rank r >= 1) and q^n <= alpha/2 (a rank s <= n).
    E.g. 95%: median 6, p90 36, p99 368; 99%: median 8, p90 51, p99 528.
    """
    alpha = _alpha(confidence)
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    tail = min(q, 1.0 - q)
    n = max(1, math.ceil(math.log(alpha / 2.0) / math.log(1.0 - tail)) - 2)
    while order_stat_ranks(n, q, confidence) is None:  # closed form, checked exactly
        n += 1
    return n


def quantile_ci(samples: np.ndarray, q: float, confidence: float) -> Estimate:
    """The q-quantile (numpy "linear") with an exact distribution-free order-statistic CI."""
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or infinite values")
    ranks = order_stat_ranks(len(x), q, confidence)
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
    """The median with its order-statistic CI (``quantile_ci`` at q = 0.5)."""
    return quantile_ci(samples, 0.5, confidence)


def speedup_ci(
    baseline_ms: np.ndarray,
    candidate_ms: np.ndarray,
    block_size: int,
    confidence: float,
    resamples: int,
    seed: int = 0,
) -> Estimate:
    """median(baseline) / median(candidate) with a paired block-bootstrap percentile CI.

    Block ``i`` of each array was measured adjacent in time, so blocks are resampled with
    replacement using the same block indices for both arrays. Only whole blocks present in
    both arrays are used: the first ``min(len) // block_size`` blocks; trailing partial
    blocks and the extra samples of the longer array are dropped. Needs >= 2 such blocks.
    The interval is widened, if need be, to contain the point estimate.
    """
    alpha = _alpha(confidence)
    if block_size < 1 or resamples < 1:
        raise ValueError("block_size and resamples must be >= 1")
    n_blocks = min(len(baseline_ms), len(candidate_ms)) // block_size
    if n_blocks < 2:
        raise ValueError(f"need at least 2 paired blocks of {block_size} samples for a speedup CI")
    used = n_blocks * block_size
    base = np.asarray(baseline_ms, dtype=np.float64)[:used].reshape(n_blocks, block_size)
    cand = np.asarray(candidate_ms, dtype=np.float64)[:used].reshape(n_blocks, block_size)
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(cand))):
        raise ValueError("latency samples contain NaN or infinite values")
    if np.median(cand) <= 0.0:
        raise ValueError("candidate median latency must be positive")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_blocks, size=(resamples, n_blocks))
    base_med = np.median(base[idx].reshape(resamples, used), axis=1)
    cand_med = np.median(cand[idx].reshape(resamples, used), axis=1)
    low, high = np.quantile(base_med / cand_med, [alpha / 2.0, 1.0 - alpha / 2.0])
    value = float(np.median(base) / np.median(cand))
    return Estimate(
        value=value, low=min(float(low), value), high=max(float(high), value), confidence=confidence
    )


def throughput_ci(
    seconds_per_batch: np.ndarray,
    batch: int,
    confidence: float,
    resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """Items per second, batch / median(seconds per batch).

    CI: the median's exact order-statistic CI, inverted (1/x is monotone, so the
    bounds swap). With too few batches for that (e.g. < 9 at 99%), falls back to a
    ``scipy.stats.bootstrap`` percentile CI of the median (``resamples``, ``seed``), whose
    coverage is then below nominal; throughput is reported, not gated.
    """
    x = np.asarray(seconds_per_batch, dtype=np.float64).ravel()
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if x.size < 2:
        raise ValueError(f"need at least 2 timed batches for a throughput CI, got {x.size}")
    if not np.all(np.isfinite(x)) or np.any(x <= 0.0):
        raise ValueError("seconds per batch must be finite and positive")
    if order_stat_ranks(x.size, 0.5, confidence) is not None:
        med = median_ci(x, confidence)
        value, low, high = med.value, med.low, med.high
    else:
        value = float(np.median(x))
        low = high = value
        if np.ptp(x) > 0.0:
            low, high = _bootstrap(x, np.median, confidence, resamples, seed)
    return Estimate(value=batch / value, low=batch / high, high=batch / low, confidence=confidence)


def _bootstrap(
    x: np.ndarray, statistic: Any, confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` (``scipy.stats.bootstrap``), seeded."""
    res = stats.bootstrap(
        (x,),
        statistic,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    _alpha(confidence)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def proportion_ci(successes: np.ndarray, confidence: float) -> Estimate:
    """Share of True values with a Wilson score interval (non-degenerate at 0% and 100%)."""
    flags = np.asarray(successes, dtype=bool).ravel()
    if flags.size == 0:
        raise ValueError("no items to estimate a proportion from")
    k, n = int(flags.sum()), int(flags.size)
    low, high = _wilson(k, n, confidence)
    return Estimate(value=k / n, low=low, high=high, confidence=confidence)


def paired_difference_ci(
    baseline_correct: np.ndarray, candidate_correct: np.ndarray, confidence: float
) -> Estimate:
    """Baseline accuracy minus candidate accuracy on the same items (positive = worse).

    Newcombe's hybrid score ("square-and-add") interval for paired proportions: Newcombe
    RG (1998), Improving confidence intervals for the difference between binomial
    proportions based on paired data, Stat Med 17:2635-2650, method 10; as given in
    Fagerland, Lydersen & Laake (2017), Statistical Analysis of Contingency Tables, ch. 8.
    With a = both right, b = baseline only, c = candidate only, d = neither, n = a+b+c+d:
    p1 = (a+b)/n, p2 = (a+c)/n with Wilson intervals (l1, u1), (l2, u2), and

        A = ad - bc;  phi = (A - n/2)/sqrt(P) if A > n/2, 0 if 0 <= A <= n/2, A/sqrt(P)
        if A < 0, with P the product of the four marginal totals (phi = 0 if one is 0);
        low  = (p1-p2) - sqrt((p1-l1)^2 + (u2-p2)^2 - 2 phi (p1-l1)(u2-p2))
        high = (p1-p2) + sqrt((p2-l2)^2 + (u1-p1)^2 - 2 phi (p2-l2)(u1-p1)).

    The n/2 correction keeps phi < 1, so identical arrays still give a CI of width > 0.
    """
    base = np.asarray(baseline_correct, dtype=bool).ravel()
    cand = np.asarray(candidate_correct, dtype=bool).ravel()
    if base.shape != cand.shape or base.size == 0:
        raise ValueError("paired correctness arrays must be non-empty and of equal length")
    n = int(base.size)
    a = int((base & cand).sum())
    b = int((base & ~cand).sum())
    c = int((~base & cand).sum())
    d = n - a - b - c
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson(a + b, n, confidence)
    l2, u2 = _wilson(a + c, n, confidence)
    marginals = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    phi = 0.0
    if marginals > 0:
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(marginals)
        elif cross < 0:
            phi = cross / math.sqrt(marginals)
    point = p1 - p2
    dl1, du1, dl2, du2 = p1 - l1, u1 - p1, p2 - l2, u2 - p2
    low = point - math.sqrt(max(dl1**2 + du2**2 - 2 * phi * dl1 * du2, 0.0))
    high = point + math.sqrt(max(dl2**2 + du1**2 - 2 * phi * dl2 * du1, 0.0))
    return Estimate(value=point, low=max(low, -1.0), high=min(high, 1.0), confidence=confidence)


def mean_ci(values: np.ndarray, confidence: float, resamples: int, seed: int = 0) -> Estimate:
    """Mean with a ``scipy.stats.bootstrap`` percentile CI.

    All-equal data (including a single value) has no sampling spread to resample, so it
    gives low = high = value instead of scipy's NaN/warning.
    """
    _alpha(confidence)
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no values to estimate a mean from")
    if not np.all(np.isfinite(x)):
        raise ValueError("values contain NaN or infinite values")
    mean = float(x.mean())
    if x.size == 1 or np.ptp(x) == 0.0:
        return Estimate(value=mean, low=mean, high=mean, confidence=confidence)
    low, high = _bootstrap(x, np.mean, confidence, resamples, seed)
    if not (math.isfinite(low) and math.isfinite(high)):
        low = high = mean
    return Estimate(value=mean, low=min(low, mean), high=max(high, mean), confidence=confidence)
