"""Winner selection from paired evidence (gates.paired_selection)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeproof.gates.paired_selection import (
    Entrant,
    HeadToHead,
    block_medians,
    entrants_from_summaries,
    margin,
    paired_quantile_ratio,
    paired_ratio,
    ratio_of_ratios,
    select_paired,
)
from edgeproof.records import Estimate
from tests.helpers import summary


def est(value: float, low: float, high: float, confidence: float = 0.99) -> Estimate:
    return Estimate(value=value, low=low, high=high, confidence=confidence)


def entrant(name: str, s: float, lo: float, hi: float, size: float = 1.2, rss: float = 100.0):
    return Entrant(name, est(s, lo, hi), size, rss)


# issue 21: percentile had the lower absolute median (0.633 vs 0.731 ms, different windows)
# but minmax the higher paired speedup, with CIs apart
PERCENTILE = entrant("static-qdq-percentile", 2.46, 2.29, 2.78)
MINMAX = entrant("static-qdq-minmax", 2.96, 2.80, 3.13)


@pytest.mark.parametrize("order", [(PERCENTILE, MINMAX), (MINMAX, PERCENTILE)])
def test_demo_numbers_pick_minmax_and_say_it_is_clearly_ahead(order) -> None:
    sel = select_paired(list(order))
    assert sel.winner == "static-qdq-minmax"
    assert sel.runner_up == "static-qdq-percentile"
    assert not sel.within_noise
    assert sel.margin is not None and sel.margin.source == "via baseline"
    r = sel.margin.ratio
    assert r.value == pytest.approx(2.96 / 2.46)
    assert 1.0 < r.low < r.value < r.high  # the CI favours the winner, excludes 1
    assert "within noise" not in sel.reason
    assert f"{r.value:.2f}x [{r.low:.2f}, {r.high:.2f}] faster than runner-up" in sel.reason
    assert "static-qdq-percentile" in sel.reason and "clearly ahead" in sel.reason


def test_mover_interval_of_the_demo() -> None:
    r = ratio_of_ratios(MINMAX.speedup, PERCENTILE.speedup)
    d = math.log(2.96 / 2.46)
    low = d - math.hypot(math.log(2.96 / 2.80), math.log(2.78 / 2.46))
    high = d + math.hypot(math.log(3.13 / 2.96), math.log(2.46 / 2.29))
    assert (r.low, r.high) == pytest.approx((math.exp(low), math.exp(high)))
    inv = ratio_of_ratios(PERCENTILE.speedup, MINMAX.speedup)
    assert (inv.low, inv.high) == pytest.approx((1 / r.high, 1 / r.low))  # symmetric


def test_tie_goes_to_smaller_size_whatever_the_noise() -> None:
    small = entrant("a", 2.50, 2.40, 2.60, size=1.0)
    big = entrant("b", 2.55, 2.45, 2.65, size=1.3)
    for pair in ([small, big], [big, small]):
        sel = select_paired(pair)
        assert sel.winner == "a" and sel.runner_up == "b"
        assert sel.within_noise and sel.margin is not None and sel.margin.contains_one
        assert "within noise" in sel.reason and "smaller size" in sel.reason
        assert set(sel.tied) == {"a", "b"}
    # noise flips the point estimates: the winner stays
    flipped = select_paired([entrant("a", 2.56, 2.46, 2.66, size=1.0), big])
    assert flipped.winner == "a"


def test_tie_then_peak_rss_then_recipe_order() -> None:
    a = entrant("a", 2.50, 2.40, 2.60, size=1.000, rss=120.0)
    b = entrant("b", 2.52, 2.42, 2.62, size=1.005, rss=100.0)  # size within 1%: a tie
    assert select_paired([a, b]).winner == "b"
    assert "less peak RSS" in select_paired([a, b]).reason
    c = entrant("c", 2.52, 2.42, 2.62, size=1.005, rss=121.0)  # RSS within 2%: order
    assert select_paired([a, c]).winner == "a"
    assert select_paired([c, a]).winner == "c"
    assert "order of the recipes" in select_paired([c, a]).reason


def test_clear_lead_beats_the_tie_rule() -> None:
    fast = entrant("fast", 3.0, 2.9, 3.1, size=2.0)
    small = entrant("small", 2.5, 2.4, 2.6, size=1.0)
    sel = select_paired([small, fast])
    assert sel.winner == "fast" and not sel.within_noise and sel.tied == ("fast",)


def test_head_to_head_decides_a_pair_the_baseline_route_cannot() -> None:
    a = entrant("a", 2.50, 2.30, 2.70, size=1.0)
    b = entrant("b", 2.60, 2.40, 2.80, size=1.3)
    assert select_paired([a, b]).winner == "a"  # within noise via the baseline: size
    assert select_paired([a, b]).wanted_head_to_head == (("a", "b"),)
    rng = np.random.default_rng(0)
    a_ms = 0.60 * np.exp(rng.normal(0, 0.01, 20))
    b_ms = a_ms / 1.05 * np.exp(rng.normal(0, 0.01, 20))  # b 5% faster, same blocks' drift
    sel = select_paired([a, b], head_to_head={("a", "b"): HeadToHead(a_ms, b_ms)})
    assert sel.winner == "b" and sel.margin is not None
    assert sel.margin.source == "head-to-head" and sel.margin.ratio.low > 1.0
    assert "head-to-head" in sel.reason and "within noise" not in sel.reason
    assert sel.wanted_head_to_head == ()


def test_a_clear_margin_between_overlapping_cis_is_confirmed_head_to_head() -> None:
    """The ratio of the speedups is above 1 (MOVER), yet the two speedup CIs overlap: the
    pair is still timed against each other; apart CIs need no confirmation."""
    a = entrant("a", 2.62, 2.58, 2.66)
    b = entrant("b", 2.50, 2.48, 2.59)
    sel = select_paired([b, a])
    assert sel.winner == "a" and sel.margin is not None and sel.margin.ratio.low > 1.0
    assert sel.wanted_head_to_head == (("a", "b"),)
    far = entrant("c", 2.00, 1.95, 2.05)
    assert select_paired([a, far]).wanted_head_to_head == ()


def test_a_lead_inside_the_tie_tolerance_is_a_tie() -> None:
    """Head to head b is 1% faster with a CI above 1 (as two processes running one file can
    be): a lead, but not beyond the 2% tie tolerance, so the tie rule (listed first) keeps
    a; without a tolerance b wins."""
    a = entrant("a", 2.50, 2.30, 2.70)
    b = entrant("b", 2.52, 2.32, 2.72)
    rng = np.random.default_rng(1)
    a_ms = 0.60 * np.exp(rng.normal(0, 0.002, 24))
    b_ms = a_ms / 1.01 * np.exp(rng.normal(0, 0.002, 24))
    pair = {("a", "b"): HeadToHead(a_ms, b_ms)}
    strict = select_paired([a, b], head_to_head=pair)
    assert strict.winner == "b" and strict.margin is not None and strict.margin.ratio.low > 1.0
    tolerant = select_paired([a, b], head_to_head=pair, speed_tol=0.02)
    assert tolerant.winner == "a" and tolerant.tied == ("a", "b")
    assert "behind by less than the 2% tie tolerance" in tolerant.reason
    assert "the tie within the 2% tie tolerance goes to the order of the recipes" in tolerant.reason
    clear = select_paired([a, b], head_to_head={("a", "b"): HeadToHead(a_ms, a_ms / 1.05)},
                          speed_tol=0.02)  # fmt: skip
    assert clear.winner == "b" and "clearly ahead (CI above 1.02)" in clear.reason


def test_head_to_head_overrides_the_point_estimates_via_the_baseline() -> None:
    # via the baseline b looks faster (within noise); head-to-head, a is clearly faster
    a = entrant("a", 2.50, 2.30, 2.70, size=1.3)
    b = entrant("b", 2.60, 2.40, 2.80, size=1.0)
    blocks = np.array([1.0, 1.01, 0.99, 1.0])
    pair = HeadToHead(blocks, blocks * 1.06)  # b's blocks 6% slower than a's
    sel = select_paired([a, b], head_to_head={("b", "a"): HeadToHead(pair.b_ms, pair.a_ms)})
    assert sel.winner == "a" and sel.runner_up == "b" and sel.tied == ("a",)
    assert sel.margin is not None and sel.margin.ratio.low > 1.0
    assert sel.ranking == ("b", "a")  # point estimates via the baseline, for the record


def test_three_candidates_tied_set_and_runner_up() -> None:
    a = entrant("a", 3.00, 2.90, 3.10, size=1.3)  # fastest
    b = entrant("b", 2.95, 2.85, 3.05, size=1.0)  # tied with a, smaller: wins
    c = entrant("c", 2.00, 1.90, 2.10, size=0.5)  # clearly slower, smallest: out
    sel = select_paired([c, b, a])
    assert sel.winner == "b" and sel.runner_up == "a" and sel.tied == ("b", "a")
    assert sel.ranking == ("a", "b", "c") and sel.within_noise
    assert "runner-up a" in sel.reason and "the tie within noise goes to smaller size" in sel.reason


def test_paired_ratio_is_drift_free() -> None:
    rng = np.random.default_rng(1)
    drift = np.exp(np.cumsum(rng.normal(0, 0.05, 40)))  # the machine slows and speeds up
    a = 1.0 * drift * np.exp(rng.normal(0, 0.005, 40))
    b = 1.1 * drift * np.exp(rng.normal(0, 0.005, 40))
    r = paired_ratio(a, b, 0.99)
    assert r.low < 1.1 < r.high and r.high / r.low < 1.02


def test_block_medians() -> None:
    x = np.array([1, 2, 3, 10, 20, 30, 7], dtype=float)
    assert block_medians(x, 3).tolist() == [2.0, 20.0]


def test_paired_quantile_ratio() -> None:
    rng = np.random.default_rng(2)
    base = np.exp(rng.normal(0, 0.1, 400))
    cand = base / 2.0  # exactly twice as fast at every quantile
    r = paired_quantile_ratio(base, cand, 25, 0.9, 0.99, resamples=200)
    assert r.value == pytest.approx(2.0) and r.low == pytest.approx(2.0)


def test_p90_objective_paired_and_unpaired() -> None:
    a = Entrant("a", est(2.0, 1.9, 2.1), 1.0, 100.0, p90_ratio=est(1.5, 1.4, 1.6))
    b = Entrant("b", est(2.5, 2.4, 2.6), 1.0, 100.0, p90_ratio=est(2.5, 2.3, 2.7))
    sel = select_paired([a, b], "p90_latency")
    assert sel.winner == "b" and "paired p90" in sel.reason and not sel.within_noise
    a2 = Entrant("a", est(2.0, 1.9, 2.1), 1.0, 100.0, p90_ms=est(0.5, 0.48, 0.52))
    b2 = Entrant("b", est(2.5, 2.4, 2.6), 1.0, 100.0, p90_ms=est(0.8, 0.75, 0.85))
    sel = select_paired([b2, a2], "p90_latency")
    assert sel.winner == "a" and "drift not cancelled" in sel.reason


def test_deterministic_objectives_never_say_noise() -> None:
    a = entrant("a", 2.0, 1.9, 2.1, size=1.0, rss=90.0)
    b = entrant("b", 2.5, 2.4, 2.6, size=2.0, rss=80.0)
    sel = select_paired([a, b], "size")
    assert sel.winner == "a" and "2.000x smaller than runner-up b" in sel.reason
    assert "noise" not in sel.reason and "beyond the 1% tolerance" in sel.reason
    sel = select_paired([a, b], "peak_rss")
    assert sel.winner == "b" and "noise" not in sel.reason
    c = entrant("c", 3.0, 2.9, 3.1, size=1.005, rss=70.0)  # size tie: less RSS decides
    assert select_paired([a, c], "size").winner == "c"


def test_margin_uses_either_key_order() -> None:
    a, b = entrant("a", 2.0, 1.9, 2.1), entrant("b", 2.0, 1.9, 2.1)
    pair = HeadToHead(np.array([1.0, 1.01, 0.99]), np.array([2.0, 2.02, 1.98]))
    m1 = margin(a, b, head_to_head={("a", "b"): pair})
    m2 = margin(b, a, head_to_head={("a", "b"): pair})
    assert m1.ratio.value == pytest.approx(2.0) and m2.ratio.value == pytest.approx(0.5)


def test_edge_cases() -> None:
    assert select_paired([]).winner is None
    one = select_paired([MINMAX])
    assert one.winner == "static-qdq-minmax" and one.runner_up is None
    with pytest.raises(ValueError, match="no paired speedup"):
        select_paired([Entrant("x", None, 1.0, 1.0), MINMAX])
    with pytest.raises(ValueError, match="unique"):
        select_paired([MINMAX, MINMAX])


def test_entrants_from_summaries_keep_recipe_order_and_drop_baseline() -> None:
    s = {
        "fp32": summary("fp32", baseline=True),
        "b": summary("b", speedup=2.0),
        "a": summary("a", speedup=2.1),
    }
    es = entrants_from_summaries(s, ["fp32", "a", "b"])
    assert [e.name for e in es] == ["b", "a"]
    assert es[0].speedup == s["b"].speedup
