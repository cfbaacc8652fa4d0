"""Estimators on synthetic data with known answers, hand computations and coverage runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from edgeproof.config import MeasureConfig
from edgeproof.gates.stats import (
    mean_ci,
    median_ci,
    min_samples_for_quantile,
    order_stat_ranks,
    paired_difference_ci,
    proportion_ci,
    quantile_ci,
    speedup_ci,
    throughput_ci,
)
from edgeproof.gates.summarize import summarize
from edgeproof.records import ItemScores, RawMeasurement

Z95 = stats.norm.ppf(0.975)


# --- quantiles -------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "ranks"), [(100, (40, 61)), (20, (6, 15)), (10, (2, 9))])
def test_median_ci_ranks_match_the_textbook_table(n: int, ranks: tuple[int, int]) -> None:
    # 95% CI for the median: 40th-61st of 100, 6th-15th of 20, 2nd-9th of 10
    est = median_ci(np.arange(1.0, n + 1.0), 0.95)  # k-th order statistic is k
    assert (est.low, est.high) == (float(ranks[0]), float(ranks[1]))
    assert est.value == pytest.approx((n + 1) / 2)


def test_order_stat_ranks_by_hand() -> None:
    n, q, alpha = 200, 0.9, 0.01
    r, s = order_stat_ranks(n, q, 1 - alpha)
    cdf = stats.binom(n, q).cdf
    # r is the largest rank with F(r-1) <= alpha/2; s the smallest with F(s-1) >= 1-alpha/2
    assert cdf(r - 1) <= alpha / 2 < cdf(r)
    assert cdf(s - 2) < 1 - alpha / 2 <= cdf(s - 1)
    assert cdf(s - 1) - cdf(r - 1) >= 1 - alpha


@pytest.mark.parametrize(("q", "conf"), [(0.5, 0.95), (0.9, 0.95), (0.9, 0.99)])
def test_quantile_ci_coverage_is_at_least_nominal(q: float, conf: float) -> None:
    rng = np.random.default_rng(1)
    truth = stats.norm.ppf(q, loc=10.0, scale=2.0)
    trials = 400
    hits = 0
    for _ in range(trials):
        est = quantile_ci(rng.normal(10.0, 2.0, 200), q, conf)
        hits += est.low <= truth <= est.high
    # exact intervals are conservative: coverage >= nominal up to simulation noise
    assert hits / trials >= conf - 3 * math.sqrt(conf * (1 - conf) / trials)


@pytest.mark.parametrize(
    ("q", "conf", "need"), [(0.5, 0.95, 6), (0.9, 0.99, 51), (0.99, 0.99, 528), (0.99, 0.95, 368)]
)
def test_min_samples_for_quantile(q: float, conf: float, need: int) -> None:
    assert min_samples_for_quantile(q, conf) == need
    assert order_stat_ranks(need, q, conf) is not None
    assert order_stat_ranks(need - 1, q, conf) is None
    # closed form: (1 - q)^n <= alpha/2 and q^n <= alpha/2
    assert max(q, 1 - q) ** need <= (1 - conf) / 2 < max(q, 1 - q) ** (need - 1)


def test_too_few_samples_for_p99_is_an_error() -> None:
    need = min_samples_for_quantile(0.99, 0.99)
    assert quantile_ci(np.arange(float(need)), 0.99, 0.99).high == need - 1
    with pytest.raises(ValueError, match=f"need >= {need}"):
        quantile_ci(np.arange(float(need - 1)), 0.99, 0.99)
    with pytest.raises(ValueError, match="NaN"):
        median_ci(np.array([1.0, np.nan] * 10), 0.95)
    with pytest.raises(ValueError, match="quantile must be"):
        quantile_ci(np.arange(100.0), 1.0, 0.95)


# --- speedup and throughput ---------------------------------------------------------------


def test_speedup_ci_covers_the_true_ratio() -> None:
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(100):
        base = rng.lognormal(np.log(3.0), 0.1, 300)
        cand = rng.lognormal(np.log(1.0), 0.1, 300)
        est = speedup_ci(base, cand, 25, 0.95, 400, seed=int(rng.integers(1 << 30)))
        hits += est.low <= 3.0 <= est.high
        assert est.low <= est.value <= est.high
    assert hits >= 88


def test_speedup_pairs_blocks_under_shared_drift() -> None:
    rng = np.random.default_rng(5)
    drift = np.repeat(rng.lognormal(0.0, 0.3, 12), 25)  # machine speed shared per block pair
    base = 2.0 * drift * rng.lognormal(0.0, 0.02, 300)
    cand = 1.0 * drift * rng.lognormal(0.0, 0.02, 300)
    est = speedup_ci(base, cand, 25, 0.99, 1000, seed=0)
    assert est.low <= 2.0 <= est.high
    assert est.high - est.low < 0.1  # drift cancels within paired blocks


def test_speedup_uses_whole_blocks_of_the_shorter_array() -> None:
    rng = np.random.default_rng(6)
    base, cand = rng.lognormal(1.0, 0.1, 100), rng.lognormal(0.0, 0.1, 100)
    ref = speedup_ci(base, cand, 25, 0.95, 500, seed=1)
    longer = np.concatenate([base, np.full(37, 1e6)])  # extra and partial blocks ignored
    assert speedup_ci(longer, cand[:], 25, 0.95, 500, seed=1) == ref
    assert speedup_ci(base, np.concatenate([cand, [1e-6] * 10]), 25, 0.95, 500, seed=1) == ref
    with pytest.raises(ValueError, match="2 paired blocks"):
        speedup_ci(np.ones(30), np.ones(300), 25, 0.95, 100)


def test_throughput_is_batch_over_median_seconds() -> None:
    seconds = np.array([0.1] * 6 + [0.2] * 6)
    est = throughput_ci(seconds, 32, 0.95)
    assert est.value == pytest.approx(32 / 0.15)
    assert est.low == pytest.approx(160.0) and est.high == pytest.approx(320.0)


def test_throughput_with_few_batches_falls_back_to_the_bootstrap() -> None:
    seconds = np.array([0.10, 0.11, 0.12, 0.13])  # too few for a 99% order-statistic CI
    est = throughput_ci(seconds, 8, 0.99, resamples=500, seed=0)
    assert est.value == pytest.approx(8 / 0.115)
    assert 8 / 0.13 <= est.low <= est.value <= est.high <= 8 / 0.10
    flat = throughput_ci(np.full(3, 0.5), 4, 0.99)
    assert (flat.value, flat.low, flat.high) == (8.0, 8.0, 8.0)
    with pytest.raises(ValueError, match="positive"):
        throughput_ci(np.array([0.1, 0.0, 0.2]), 4, 0.95)


# --- proportions ----------------------------------------------------------------------------


def _wilson_by_hand(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_interval_by_hand() -> None:
    est = proportion_ci(np.array([True] * 360), 0.95)
    assert est.value == 1.0 and est.high == pytest.approx(1.0)
    assert est.low == pytest.approx(360 / (360 + Z95**2))  # Wilson at p = 1: n / (n + z^2)
    assert est.low < 1.0
    est = proportion_ci(np.array([True] * 7 + [False] * 13), 0.95)
    assert (est.low, est.high) == pytest.approx(_wilson_by_hand(7, 20, Z95))
    with pytest.raises(ValueError, match="no items"):
        proportion_ci(np.array([], dtype=bool), 0.95)


def _pairs(a: int, b: int, c: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Paired bools: a both right, b baseline only, c candidate only, d neither."""
    base = np.array([True] * a + [True] * b + [False] * c + [False] * d)
    cand = np.array([True] * a + [False] * b + [True] * c + [False] * d)
    return base, cand


def test_paired_difference_worked_example() -> None:
    # Bentur et al. (2009) table [[1, 1], [7, 12]]; Newcombe's square-and-add 95% CI as
    # reported by Fagerland, Lydersen & Laake: -0.286 (-0.507 to -0.026)
    est = paired_difference_ci(*_pairs(1, 1, 7, 12), 0.95)
    assert est.value == pytest.approx(-6 / 21)
    assert est.low == pytest.approx(-0.507, abs=5e-4)
    assert est.high == pytest.approx(-0.026, abs=5e-4)


def test_paired_difference_matches_the_formula_by_hand() -> None:
    a, b, c, d = 400, 12, 5, 83
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson_by_hand(a + b, n, Z95)
    l2, u2 = _wilson_by_hand(a + c, n, Z95)
    phi = (a * d - b * c - n / 2) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2))
    high = p1 - p2 + math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1))
    est = paired_difference_ci(*_pairs(a, b, c, d), 0.95)
    assert (est.value, est.low, est.high) == pytest.approx((7 / n, low, high))


@pytest.mark.parametrize("share", [1.0, 0.99, 0.5, 0.0])
def test_paired_difference_with_no_discordant_pairs_is_not_degenerate(share: float) -> None:
    same = np.arange(1000) < share * 1000
    est = paired_difference_ci(same, same, 0.95)
    assert est.value == 0.0
    assert est.low < 0.0 < est.high
    assert est.low == pytest.approx(-est.high)
    assert est.high < 0.05


def test_paired_difference_narrows_with_n_and_negates_when_swapped() -> None:
    widths = []
    for k in (1, 4, 16):
        base, cand = _pairs(90 * k, 6 * k, 2 * k, 2 * k)
        est = paired_difference_ci(base, cand, 0.95)
        assert est.value == pytest.approx(0.04)
        assert est.low < est.value < est.high
        widths.append(est.high - est.low)
        swapped = paired_difference_ci(cand, base, 0.95)
        assert (swapped.value, swapped.low, swapped.high) == pytest.approx(
            (-est.value, -est.high, -est.low)
        )
    assert widths[0] > widths[1] > widths[2] > 0


def test_paired_difference_coverage() -> None:
    rng = np.random.default_rng(3)
    n, p_b, p_c, p_d = 500, 0.03, 0.01, 0.05  # cell probabilities; a is the rest
    truth = p_b - p_c
    hits, trials = 0, 300
    for _ in range(trials):
        cells = rng.multinomial(n, [1 - p_b - p_c - p_d, p_b, p_c, p_d])
        est = paired_difference_ci(*_pairs(*cells), 0.95)
        hits += est.low <= truth <= est.high
    assert hits / trials >= 0.92


def test_paired_difference_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="equal length"):
        paired_difference_ci(np.ones(3, bool), np.ones(4, bool), 0.95)
    with pytest.raises(ValueError, match="confidence"):
        paired_difference_ci(np.ones(3, bool), np.ones(3, bool), 1.0)


# --- means ----------------------------------------------------------------------------------


def test_mean_ci() -> None:
    rng = np.random.default_rng(4)
    x = rng.exponential(0.01, 1000)
    est = mean_ci(x, 0.95, 1000)
    assert est.low < x.mean() < est.high
    assert est.high - est.low < 0.003
    assert mean_ci(x, 0.95, 1000, seed=7) == mean_ci(x, 0.95, 1000, seed=7)
    for flat in (np.zeros(50), np.array([0.25])):
        e = mean_ci(flat, 0.95, 1000)
        assert e.low == e.value == e.high == flat[0]
    with pytest.raises(ValueError, match="no values"):
        mean_ci(np.array([]), 0.95, 1000)


def test_mean_ci_coverage() -> None:
    rng = np.random.default_rng(8)
    hits = sum(
        (e := mean_ci(rng.normal(1.0, 1.0, 100), 0.9, 300, seed=i)).low <= 1.0 <= e.high
        for i in range(200)
    )
    assert hits >= 160  # nominal 180; percentile bootstrap is slightly liberal at n = 100


# --- summarize ------------------------------------------------------------------------------


def _raw(name: str, n: int, paired: bool) -> RawMeasurement:
    rng = np.random.default_rng(9)
    return RawMeasurement(
        candidate=name,
        latency_ms=rng.lognormal(0.0, 0.1, n),
        paired_baseline_ms=rng.lognormal(np.log(2.0), 0.1, n) if paired else np.array([]),
        block_size=25,
        throughput_batch=32,
        throughput_s=rng.lognormal(np.log(0.02), 0.05, 12),
        peak_rss_mb=120.0,
        load_rss_mb=10.0,
        load_seconds=0.1,
        size_mb=1.5,
        threads=2,
    )


def _scores(name: str, labelled: bool) -> ItemScores:
    base = np.arange(400) % 50 != 0
    cand = base.copy()
    cand[:4] = ~cand[:4]
    return ItemScores(
        candidate=name,
        correct=cand if labelled else None,
        baseline_correct=base if labelled else None,
        agree=np.arange(400) % 100 != 0,
        kl=np.linspace(0.0, 0.01, 400),
        max_abs_error=np.linspace(0.0, 2.0, 400),
    )


def test_summarize_candidate_and_baseline() -> None:
    measure = MeasureConfig(confidence=0.95, bootstrap_resamples=300)
    cand = summarize("q", "int8", False, _raw("q", 600, True), _scores("q", True), measure)
    assert cand.speedup is not None and cand.speedup.low <= 2.0 <= cand.speedup.high
    assert cand.accuracy is not None and cand.accuracy_drop is not None
    assert cand.p99_ms is not None  # 600 >= 368 samples
    assert cand.max_abs_logit_error == 2.0 and cand.n_eval_items == 400
    assert cand.top1_agreement.value == pytest.approx(0.99)
    tp = cand.throughput_ips
    assert tp.low <= tp.value == pytest.approx(32 / np.median(_raw("q", 600, True).throughput_s))
    assert tp.value <= tp.high
    base = summarize("fp32", "fp32", True, _raw("fp32", 200, False), _scores("f", False), measure)
    assert base.speedup is None and base.p99_ms is None
    assert base.accuracy is None and base.accuracy_drop is None
    assert base.latency_samples == 200 and base.size_mb == 1.5
