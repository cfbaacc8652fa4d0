"""Estimators on synthetic data with known answers and known distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gates.stats import (
    mean_ci,
    median_ci,
    min_samples_for_quantile,
    paired_difference_ci,
    proportion_ci,
    quantile_ci,
    speedup_ci,
    throughput_ci,
)


def test_median_ci_uses_the_binomial_order_statistics() -> None:
    x = np.arange(1.0, 101.0)  # sorted 1..100, so the k-th order statistic is k
    est = median_ci(x, 0.95)
    r = int(stats.binom.ppf(0.025, 100, 0.5))
    s = int(stats.binom.ppf(0.975, 100, 0.5)) + 1
    assert (est.low, est.high) == (float(r), float(s))
    coverage = stats.binom.cdf(s - 1, 100, 0.5) - stats.binom.cdf(r - 1, 100, 0.5)
    assert coverage >= 0.95
    assert est.value == pytest.approx(50.5)


@pytest.mark.parametrize(("q", "conf"), [(0.5, 0.95), (0.9, 0.95), (0.9, 0.99)])
def test_quantile_ci_coverage_is_at_least_nominal(q: float, conf: float) -> None:
    rng = np.random.default_rng(1)
    truth = stats.lognorm.ppf(q, 0.3)
    trials = 400
    hits = sum(
        (e := quantile_ci(rng.lognormal(0, 0.3, 200), q, conf)).low <= truth <= e.high
        for _ in range(trials)
    )
    # exact intervals are conservative: coverage >= nominal up to simulation noise
    assert hits / trials >= conf - 3 * np.sqrt(conf * (1 - conf) / trials)


def test_too_few_samples_for_p99_is_an_error() -> None:
    need = min_samples_for_quantile(0.99, 0.95)
    assert quantile_ci(np.arange(float(need)), 0.99, 0.95).high == need - 1
    with pytest.raises(ValueError, match=f"need >= {need}"):
        quantile_ci(np.arange(float(need - 1)), 0.99, 0.95)
    assert min_samples_for_quantile(0.9, 0.99) < min_samples_for_quantile(0.99, 0.99)


def test_speedup_ci_covers_the_true_ratio() -> None:
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(100):
        base = rng.lognormal(np.log(3.0), 0.1, 300)
        cand = rng.lognormal(np.log(1.0), 0.1, 300)
        est = speedup_ci(base, cand, 25, 0.95, 500, seed=int(rng.integers(1 << 30)))
        hits += est.low <= 3.0 <= est.high
        assert est.low < est.value < est.high
    assert hits >= 88


def test_speedup_needs_two_blocks() -> None:
    with pytest.raises(ValueError, match="2 paired blocks"):
        speedup_ci(np.ones(30), np.ones(30), 25, 0.95, 100)


def test_throughput_is_batch_over_median_seconds() -> None:
    seconds = np.array([0.1] * 6 + [0.2] * 6)
    est = throughput_ci(seconds, 32, 0.95)
    assert est.value == pytest.approx(32 / 0.15)
    assert est.low == pytest.approx(160.0) and est.high == pytest.approx(320.0)


def test_wilson_interval_by_hand() -> None:
    est = proportion_ci(np.array([True] * 360), 0.95)
    z2 = stats.norm.ppf(0.975) ** 2
    assert est.value == 1.0 and est.high == pytest.approx(1.0)
    assert est.low == pytest.approx(360 / (360 + z2))  # Wilson at p = 1: n / (n + z^2)


def test_paired_difference_with_no_discordant_pairs_is_not_degenerate() -> None:
    same = np.array([True] * 990 + [False] * 10)
    est = paired_difference_ci(same, same, 0.95)
    z2 = stats.norm.ppf(0.975) ** 2
    assert est.value == 0.0
    assert est.high == pytest.approx(z2 / (1000 + z2), rel=1e-4)
    assert est.low == pytest.approx(-est.high, rel=1e-4)


def test_paired_difference_coverage_and_symmetry() -> None:
    rng = np.random.default_rng(3)
    n, p_b, p_c = 500, 0.03, 0.01  # P(only baseline right), P(only candidate right)
    truth = p_b - p_c
    hits = 0
    for _ in range(300):
        u = rng.random(n)
        base = u >= p_c  # baseline wrong only in the "c" cells
        cand = (u < p_c) | (u >= p_c + p_b)
        est = paired_difference_ci(base, cand, 0.95)
        hits += est.low <= truth <= est.high
    assert hits / 300 >= 0.92
    swapped = paired_difference_ci(cand, base, 0.95)
    est = paired_difference_ci(base, cand, 0.95)
    assert swapped.value == pytest.approx(-est.value)
    assert swapped.low == pytest.approx(-est.high) and swapped.high == pytest.approx(-est.low)


def test_mean_ci() -> None:
    rng = np.random.default_rng(4)
    x = rng.exponential(0.01, 1000)
    est = mean_ci(x, 0.95, 1000)
    assert est.low < x.mean() < est.high
    assert est.high - est.low < 0.003
    flat = mean_ci(np.zeros(50), 0.95, 1000)
    assert (flat.value, flat.low, flat.high) == (0.0, 0.0, 0.0)
