"""Early verdicts with repeated confidence intervals (gates.sequential)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from edgeproof.gates.sequential import (
    SequentialDesign,
    boundaries,
    combine,
    log_ratios,
    looks_schedule,
    mean_look,
    proportion_look,
    speed_look,
    spent,
)


def test_pocock_type_constants_match_the_literature() -> None:
    # Lan-DeMets Pocock-type, 5 equal looks, two-sided 0.05: 2.44, 2.43, 2.41, 2.40, 2.39
    c = boundaries((0.2, 0.4, 0.6, 0.8, 1.0), 0.05, "pocock")
    assert c == pytest.approx((2.438, 2.427, 2.410, 2.397, 2.386), abs=2e-3)


def test_single_look_is_the_fixed_sample_z() -> None:
    assert boundaries((1.0,), 0.01, "obrien-fleming")[0] == pytest.approx(stats.norm.isf(0.005))
    assert boundaries((1.0,), 0.01, "pocock")[0] == pytest.approx(stats.norm.isf(0.005))


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_boundaries_spend_exactly_alpha(spending) -> None:
    # Monte Carlo of the canonical joint distribution: crossing rate per look == spent
    fr = (0.1, 0.25, 0.5, 1.0)
    c = np.array(boundaries(fr, 0.05, spending))
    rng = np.random.default_rng(0)
    steps = np.diff((0.0, *fr))
    s = np.cumsum(rng.standard_normal((400_000, 4)) * np.sqrt(steps), axis=1)
    cross = np.abs(s / np.sqrt(fr)) > c
    first = np.where(cross.any(axis=1), cross.argmax(axis=1), -1)
    want = np.diff([0.0] + [spent(t, 0.05, spending) for t in fr])
    got = np.array([(first == k).mean() for k in range(4)])
    assert got == pytest.approx(want, abs=1.5e-3)
    assert (first >= 0).mean() == pytest.approx(0.05, abs=1.5e-3)


def test_obrien_fleming_spends_almost_nothing_early() -> None:
    c = boundaries((0.05, 1.0), 0.01, "obrien-fleming")
    assert c[0] > 10 and c[1] == pytest.approx(stats.norm.isf(0.005), abs=0.01)


def test_schedule() -> None:
    assert looks_schedule(4, 120) == (4, 8, 16, 32, 64, 120)
    assert looks_schedule(4, 4) == (4,)


DESIGN = SequentialDesign(max_n=120, alpha=0.01, spending="pocock", min_n=4)


def test_gross_miss_fails_at_the_first_look() -> None:
    # issue 21: a 0.11x candidate took 70 s; here 4 block pairs decide
    rng = np.random.default_rng(0)
    d = np.log(0.11) + rng.normal(0, 0.08, 4)
    look = speed_look(d, [4], DESIGN, min_speedup=1.2)
    assert look.decision == "fail" and look.look == 1 and look.interval.high < 1.2
    assert "bad side" in look.message and "look 1, 4 block pairs" in look.message


def test_large_speedup_passes_early_and_undecided_continues() -> None:
    rng = np.random.default_rng(1)
    d = np.log(2.5) + rng.normal(0, 0.08, 8)
    assert speed_look(d, [4, 8], DESIGN, 1.2).decision == "pass"
    near = np.log(1.2) + rng.normal(0, 0.08, 8)
    assert speed_look(near, [4, 8], DESIGN, 1.2).decision == "continue"
    assert speed_look(near, [4, 8], DESIGN, 1.2, final=True).decision == "inconclusive"


def test_no_decision_before_min_n() -> None:
    look = speed_look(np.full(3, np.log(0.1)), [3], DESIGN, 1.2)
    assert look.decision == "continue" and "min_n" in look.message


def test_rci_is_wider_than_the_fixed_sample_ci() -> None:
    rng = np.random.default_rng(2)
    d = rng.normal(0, 0.05, 120)
    looks = list(looks_schedule(4, 120))
    seq = speed_look(d, looks, DESIGN, 1.0).interval
    half = stats.t.ppf(0.995, 119) * d.std(ddof=1) / math.sqrt(120)
    m = d.mean()
    assert seq.low < math.exp(m - half) and seq.high > math.exp(m + half)


def test_looks_must_increase_and_be_covered_by_data() -> None:
    with pytest.raises(ValueError):
        speed_look(np.zeros(8), [8, 4], DESIGN, 1.0)
    with pytest.raises(ValueError):
        speed_look(np.zeros(4), [4, 8], DESIGN, 1.0)


def test_a_a_false_fail_rate_is_controlled_with_many_looks() -> None:
    # a candidate exactly on the limit, looked at after every 4 block pairs (30 looks):
    # the RCI keeps P(fail) <= alpha / 2; naive peeking at the plain 99% CI does not
    rng = np.random.default_rng(3)
    looks = list(range(4, 121, 4))
    d = rng.normal(0.0, 0.06, (4000, 120))
    decided = np.zeros(d.shape[0], dtype=bool)
    fails = np.zeros_like(decided)
    naive = np.zeros_like(decided)
    for k, n in enumerate(looks, start=1):
        x = d[:, :n]
        m, se = x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(n)
        c = stats.t.isf(stats.norm.sf(DESIGN.constant(looks[:k])), n - 1)
        fails |= ~decided & (m + c * se < 0.0)
        decided |= (m + c * se < 0.0) | (m - c * se >= 0.0)
        naive |= m + stats.t.ppf(0.995, n - 1) * se < 0.0
    assert fails.mean() <= 0.005 + 0.003  # alpha / 2 plus Monte Carlo slack
    assert naive.mean() > 2 * fails.mean()
    # and speed_look agrees with this vectorized rule on one path
    row = d[0]
    look = speed_look(row, looks, DESIGN, 1.0)
    c = stats.t.isf(stats.norm.sf(DESIGN.constant(looks)), 119)
    assert math.log(look.interval.high) == pytest.approx(
        row.mean() + c * row.std(ddof=1) / math.sqrt(120)
    )


def test_proportion_gate() -> None:
    d = SequentialDesign(max_n=2000, alpha=0.01, spending="pocock", min_n=100)
    good = np.ones(400, dtype=bool)
    assert proportion_look(good, [100, 400], d, 0.95).decision == "pass"
    bad = np.r_[np.ones(80), np.zeros(20)].astype(bool)
    assert proportion_look(bad, [100], d, 0.98).decision == "fail"
    assert proportion_look(good[:50], [50], d, 0.98).decision == "continue"


def test_mean_gate() -> None:
    d = SequentialDesign(max_n=2000, alpha=0.01, spending="pocock", min_n=100)
    rng = np.random.default_rng(4)
    small = rng.exponential(0.002, 200)
    assert mean_look(small, [100, 200], d, 0.05).decision == "pass"
    big = rng.exponential(0.2, 100)
    assert mean_look(big, [100], d, 0.05).decision == "fail"


def test_combine() -> None:
    assert combine(["pass", "fail", "continue"]) == "fail"
    assert combine(["pass", "pass"]) == "pass"
    assert combine(["pass", "continue"]) == "continue"
    assert combine(["pass", "inconclusive"]) == "inconclusive"
    with pytest.raises(ValueError):
        combine([])


def test_log_ratios_from_raw_harness_arrays() -> None:
    base = np.array([2.0, 2.2, 1.8, 4.0, 4.4, 3.6, 9.0])  # a partial block is dropped
    cand = np.array([1.0, 1.1, 0.9, 1.0, 1.1, 0.9])
    assert log_ratios(base, cand, 3) == pytest.approx([math.log(2.0), math.log(4.0)])
