"""Noise-aware Pareto dominance, the front, and weighted / single-objective selection."""

from __future__ import annotations

import pytest

from edgeproof.gates.objectives import METRICS, OBJECTIVES
from edgeproof.gates.pareto import (
    SelectionPolicy,
    dominates,
    pareto_front,
    select_on_front,
    validate_weights,
    with_tolerance,
)
from edgeproof.records import CandidateSummary, Verdict
from tests.helpers import est, make_summary


def verdict(name: str, status: str = "pass") -> Verdict:
    return Verdict(candidate=name, status=status, checks=(), reasons=())


def passing(*summaries: CandidateSummary) -> tuple[dict, dict]:
    s = {x.candidate: x for x in summaries}
    return s, {n: verdict(n) for n in s}


def test_clearly_faster_and_otherwise_equal_dominates() -> None:
    fast = make_summary("fast", median_ms=est(0.5, 0.48, 0.52))
    slow = make_summary("slow")  # 0.8 [0.78, 0.82]
    assert dominates(fast, slow)
    assert not dominates(slow, fast)
    result = pareto_front({"slow": slow, "fast": fast})
    assert result.front == ("fast",)
    assert dict(result.dominated_by) == {"slow": ("fast",)}
    assert result.explain() == ["slow is dominated by fast"]


def test_overlapping_latency_cis_are_a_tie_and_both_stay_on_the_front() -> None:
    a = make_summary("a", median_ms=est(0.79, 0.77, 0.81))
    b = make_summary("b", median_ms=est(0.80, 0.78, 0.82))
    assert not dominates(a, b) and not dominates(b, a)
    assert pareto_front({"a": a, "b": b}).front == ("a", "b")


def test_better_point_estimates_inside_the_noise_dominate_nobody() -> None:
    a = make_summary("a", median_ms=est(0.70, 0.60, 0.80), accuracy=est(0.985, 0.975, 0.995))
    b = make_summary("b", median_ms=est(0.80, 0.75, 0.85), accuracy=est(0.98, 0.97, 0.99))
    assert not dominates(a, b)
    assert not dominates(b, a)
    # the same point estimates with tight CIs do dominate
    tight = make_summary("t", median_ms=est(0.70), accuracy=est(0.985))
    assert dominates(tight, make_summary("u", median_ms=est(0.80), accuracy=est(0.98)))


def test_a_trade_off_keeps_both_on_the_front() -> None:
    fast = make_summary("fast", median_ms=est(0.4, 0.39, 0.41), accuracy=est(0.9, 0.88, 0.92))
    accurate = make_summary("accurate")
    assert not dominates(fast, accurate) and not dominates(accurate, fast)
    result = pareto_front({"fast": fast, "accurate": accurate})
    assert set(result.front) == {"fast", "accurate"} and not result.dominated_by


def test_deterministic_size_dominates_only_when_strictly_smaller() -> None:
    small = make_summary("small", size_mb=0.5)
    big = make_summary("big", size_mb=1.0)
    same = make_summary("same", size_mb=0.5)
    assert dominates(small, big) and not dominates(big, small)
    assert not dominates(small, same) and not dominates(same, small)


def test_peak_rss_within_two_percent_is_a_tie() -> None:
    lean = make_summary("lean", peak_rss_mb=100.0)
    close = make_summary("close", peak_rss_mb=101.5)
    hungry = make_summary("hungry", peak_rss_mb=105.0)
    assert not dominates(lean, close) and not dominates(close, lean)
    assert dominates(lean, hungry)
    strict = [*METRICS.values()]
    strict[3] = with_tolerance("peak_rss", 0.0)
    assert strict[3].name == "peak_rss"
    assert dominates(lean, close, strict)


def test_top1_agreement_stands_in_for_accuracy_without_labels() -> None:
    a = make_summary("a", accuracy=None, top1_agreement=est(0.999, 0.998, 1.0))
    b = make_summary("b", accuracy=None, top1_agreement=est(0.95, 0.94, 0.96))
    assert dominates(a, b)
    assert not dominates(a, b, ["latency", "size"])
    with pytest.raises(ValueError, match="unknown metric 'speed'"):
        dominates(a, b, ["speed"])


def test_a_dominance_cycle_leaves_everyone_on_the_front() -> None:
    """Overlap is not transitive: a > b > c > a is possible; nobody is ruled out then."""
    a = make_summary(
        "a", median_ms=est(1.5, 1, 2), p90_ms=est(2.5, 1.5, 3.5), accuracy=est(0.82, 0.8, 0.85)
    )
    b = make_summary(
        "b", median_ms=est(3.5, 3, 4), p90_ms=est(1.5, 1, 2), accuracy=est(0.88, 0.84, 0.91)
    )
    c = make_summary(
        "c", median_ms=est(2.5, 1.5, 3.5), p90_ms=est(3.5, 3, 4), accuracy=est(0.92, 0.9, 0.95)
    )
    metrics = ("latency", "p90", "accuracy")
    assert dominates(a, b, metrics) and dominates(b, c, metrics) and dominates(c, a, metrics)
    result = pareto_front({"a": a, "b": b, "c": c}, metrics)
    assert result.front == ("a", "b", "c") and not result.dominated_by


TRADE_OFF = (
    make_summary(
        "fast",
        median_ms=est(0.4, 0.39, 0.41),
        accuracy=est(0.90, 0.88, 0.92),
        speedup=est(6.8, 6.6, 7.0),
    ),
    make_summary("accurate"),  # 0.8 ms, 98%, speedup 3.4 [3.2, 3.6]
    make_summary("fp32", baseline=True, median_ms=est(0.3, 0.29, 0.31), accuracy=est(0.99)),
)


def test_weights_decide_between_trade_offs() -> None:
    s, v = passing(*TRADE_OFF)
    acc = select_on_front(s, v, SelectionPolicy(weights={"accuracy": 3, "latency": 1}))
    lat = select_on_front(s, v, SelectionPolicy(weights={"accuracy": 1, "latency": 3}))
    assert (acc.winner, acc.runner_up) == ("accurate", "fast")
    assert (lat.winner, lat.runner_up) == ("fast", "accurate")
    assert acc.scores == pytest.approx({"accurate": 0.25, "fast": 0.75})
    assert lat.scores == pytest.approx({"fast": 0.25, "accurate": 0.75})
    assert set(acc.front.front) == {"fast", "accurate"}
    assert lat.reason == (
        "lowest weighted score 0.25 (accuracy 1, latency 3) among 2 passing candidates, "
        "all on the Pareto front; median latency 0.4 ms decides: 2.00x faster than runner-up "
        "accurate (0.8 ms, score 0.75), clearly ahead (paired 2.00x [1.88, 2.14])"
    )
    assert "+8.0 pp accuracy over runner-up fast (90.0%" in acc.reason


def test_only_front_candidates_are_scored_with_weights() -> None:
    dominated = make_summary("dominated", median_ms=est(0.9, 0.88, 0.92), size_mb=2.0)
    s, v = passing(*TRADE_OFF[:2], dominated)
    sel = select_on_front(s, v, SelectionPolicy(weights={"size": 1}))
    assert "dominated" not in sel.scores
    assert sel.front.dominated_by == {"dominated": ("accurate",)}
    assert "2 Pareto-optimal of 3 passing candidates" in sel.reason
    # equal size: equal scores, tie broken by size then name
    assert sel.winner == "accurate" and sel.scores == {"fast": 0.0, "accurate": 0.0}
    assert "tied with runner-up fast" in sel.reason


def test_a_sole_front_member_wins_and_says_whom_it_dominates() -> None:
    best = make_summary("best", median_ms=est(0.5, 0.48, 0.52))
    s, v = passing(best, make_summary("a"), make_summary("b", size_mb=1.5))
    sel = select_on_front(s, v, SelectionPolicy(weights={"latency": 1}))
    assert (sel.winner, sel.runner_up) == ("best", None)
    assert sel.reason.endswith("; it dominates a, b")


def test_failing_and_inconclusive_candidates_are_never_chosen() -> None:
    star = make_summary("star", median_ms=est(0.2, 0.19, 0.21), size_mb=0.2)
    shaky = make_summary("shaky", median_ms=est(0.3, 0.29, 0.31))
    ok = make_summary("ok")
    s = {"star": star, "shaky": shaky, "ok": ok}
    v = {"star": verdict("star", "fail"), "shaky": verdict("shaky", "inconclusive")}
    v["ok"] = verdict("ok")
    for policy in (
        SelectionPolicy(objective="median_latency"),
        SelectionPolicy(weights={"latency": 1}),
    ):
        sel = select_on_front(s, v, policy)
        assert sel.winner == "ok" and sel.runner_up is None
        assert set(sel.scores) == {"ok"} and sel.front.front == ("ok",)
    assert select_on_front(s, {}, SelectionPolicy(weights={"latency": 1})).winner is None


def test_the_baseline_is_never_chosen() -> None:
    s, v = passing(*TRADE_OFF)
    for policy in (
        SelectionPolicy(objective="median_latency"),
        SelectionPolicy(weights={"latency": 1}),
    ):
        sel = select_on_front(s, v, policy)
        assert sel.winner == "fast" and "fp32" not in sel.scores
    only = {"fp32": TRADE_OFF[2]}
    sel = select_on_front(only, {"fp32": verdict("fp32")}, SelectionPolicy(objective="size"))
    assert (sel.winner, sel.reason) == (None, "no candidate passed every gate")


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_objective_policy_picks_on_paired_evidence(objective: str) -> None:
    s = {
        "fast": make_summary(
            "fast", median_ms=est(0.5, 0.45, 0.55), p90_ms=est(2.0), speedup=est(5.4, 5.2, 5.6)
        ),
        "steady": make_summary("steady", median_ms=est(0.7), p90_ms=est(0.8)),
        "small": make_summary("small", size_mb=0.3),
        "lean": make_summary("lean", peak_rss_mb=40.0),
        "bad": make_summary("bad", median_ms=est(0.1), size_mb=0.1, peak_rss_mb=10.0),
    }
    v = {k: verdict(k) for k in s} | {"bad": verdict("bad", "fail")}
    sel = select_on_front(s, v, SelectionPolicy(objective=objective))
    expected = {"median_latency": "fast", "p90_latency": "steady", "size": "small"}
    assert sel.winner == (expected | {"peak_rss": "lean"})[objective]
    assert "among 4 passing candidates; " in sel.reason
    assert sel.runner_up is not None and f"runner-up {sel.runner_up} " in sel.reason
    assert set(sel.scores) == {"fast", "steady", "small", "lean"}


def test_reason_gives_the_paired_margin_and_its_ci() -> None:
    win = make_summary("ov-int8", median_ms=est(0.385, 0.38, 0.39), speedup=est(7.0, 6.9, 7.1))
    apart = make_summary("nncf-mixed", median_ms=est(0.455, 0.45, 0.46), speedup=est(5.9, 5.8, 6))
    s, v = passing(win, apart, make_summary("slow", median_ms=est(0.9, 0.85, 0.95)))
    sel = select_on_front(s, v, SelectionPolicy(objective="median_latency"))
    assert sel.winner == "ov-int8"
    assert "1.19x [1.16, 1.21] faster than runner-up nncf-mixed" in sel.reason
    assert sel.reason.endswith("clearly ahead (CI above 1)")
    close = make_summary("nncf-mixed", median_ms=est(0.39, 0.38, 0.40), speedup=est(6.9, 6.8, 7))
    s, v = passing(win, close)
    sel = select_on_front(s, v, SelectionPolicy(objective="median_latency"))
    assert sel.runner_up == "nncf-mixed"
    assert "within noise (CI contains 1)" in sel.reason


def test_weighted_reason_says_within_noise_when_the_deciding_cis_overlap() -> None:
    """Latency decides but is within noise; ``a`` is on the front by being clearly smaller."""
    a = make_summary(
        "a",
        median_ms=est(0.70, 0.60, 0.80),
        accuracy=est(0.90, 0.88, 0.92),
        size_mb=0.5,
        speedup=None,
    )
    b = make_summary("b", median_ms=est(0.80, 0.75, 0.85), speedup=None)  # more accurate
    assert not dominates(b, a)
    assert dominates(b, a.model_copy(update={"size_mb": 1.0}))  # without its size lead
    s, v = passing(a, b)
    sel = select_on_front(s, v, SelectionPolicy(weights={"latency": 1, "accuracy": 0}))
    assert set(sel.front.front) == {"a", "b"}
    assert (sel.winner, sel.runner_up) == ("a", "b")
    assert "median latency 0.7 ms decides: 1.14x faster than runner-up b" in sel.reason
    assert sel.reason.endswith("within noise (CIs overlap)")


def test_peak_rss_objective_reason_mentions_the_tolerance() -> None:
    s, v = passing(make_summary("a", peak_rss_mb=100.0), make_summary("b", peak_rss_mb=101.0))
    sel = select_on_front(s, v, SelectionPolicy(objective="peak_rss"))
    assert sel.winner == "a"
    assert "than runner-up b (101 MB; deterministic), within the 2% tolerance" in sel.reason


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"speed": 1.0}, "unknown metric 'speed'"),
        ({"latency": -1.0, "size": 2.0}, "weight for 'latency' must not be negative"),
        ({"latency": 0.0, "size": 0.0}, "weights are all zero"),
        ({}, "weights are all zero"),
        ({"latency": float("nan")}, "must be a finite number"),
    ],
)
def test_invalid_weights_raise(weights: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelectionPolicy(weights=weights)
    with pytest.raises(ValueError, match=message):
        validate_weights(weights)


def test_policy_needs_exactly_one_known_choice() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SelectionPolicy()
    with pytest.raises(ValueError, match="exactly one"):
        SelectionPolicy(objective="size", weights={"size": 1})
    with pytest.raises(ValueError, match="unknown objective 'accuracy'"):
        SelectionPolicy(objective="accuracy")
    assert SelectionPolicy(weights={"p90": 2}).weights == {"p90": 2.0}


def test_an_exact_tie_on_the_objective_goes_to_the_recipe_listed_first() -> None:
    s, v = passing(make_summary("b"), make_summary("a"))
    sel = select_on_front(s, v, SelectionPolicy(objective="size"))
    assert (sel.winner, sel.runner_up) == ("b", "a")
    assert sel.reason == (
        "smallest size (1 MB) among 2 passing candidates; 1.000x smaller than runner-up a "
        "(1 MB; deterministic), within the 1% tolerance; the tie within tolerance goes to "
        "the order of the recipes (size and peak RSS within tolerance)"
    )
