"""Winner selection on one objective among passing candidates (``select_on_front``), and
the incumbent tie rule."""

from __future__ import annotations

import pytest

from edgeproof.records import CandidateSummary, Verdict
from gates.pareto import SelectionPolicy, select_on_front
from gates.select import incumbent_ties
from tests.helpers import est, make_summary


def select_winner(
    summaries: dict[str, CandidateSummary], verdicts: dict[str, Verdict], objective: str
) -> tuple[str | None, str]:
    selection = select_on_front(summaries, verdicts, SelectionPolicy(objective=objective))
    return selection.winner, selection.reason


def verdict(name: str, status: str) -> Verdict:
    return Verdict(candidate=name, status=status, checks=(), reasons=())


def test_fastest_passing_candidate_wins_and_baseline_never_does() -> None:
    s = {
        "fp32": make_summary("fp32", baseline=True, median_ms=est(0.1)),
        "a": make_summary("a", median_ms=est(0.79)),
        "b": make_summary("b", median_ms=est(0.76)),
        "c": make_summary("c", median_ms=est(0.5)),
    }
    v = {"fp32": verdict("fp32", "pass"), "a": verdict("a", "pass"), "b": verdict("b", "pass")}
    v["c"] = verdict("c", "fail")
    name, why = select_winner(s, v, "median_latency")
    assert name == "b"
    assert why.startswith("lowest median latency 0.76 ms among 2 passing candidates; ")
    assert "than runner-up a (0.79 ms)" in why


@pytest.mark.parametrize(
    ("objective", "winner"),
    [
        ("median_latency", "fast"),
        ("p90_latency", "steady"),
        ("size", "small"),
        ("peak_rss", "lean"),
    ],
)
def test_objective_decides(objective: str, winner: str) -> None:
    s = {
        "fast": make_summary("fast", median_ms=est(0.5), p90_ms=est(2.0)),
        "steady": make_summary("steady", median_ms=est(0.7), p90_ms=est(0.8)),
        "small": make_summary("small", size_mb=0.3),
        "lean": make_summary("lean", peak_rss_mb=40.0),
    }
    v = {k: verdict(k, "pass") for k in s}
    name, why = select_winner(s, v, objective)
    assert name == winner
    label = {"median_latency": "median latency", "p90_latency": "p90 latency"}
    label |= {"size": "size", "peak_rss": "peak RSS"}
    assert why.startswith(f"lowest {label[objective]} ")
    assert "among 4 passing candidates; " in why and " runner-up " in why


def test_single_passing_candidate_reason() -> None:
    s = {"a": make_summary("a", size_mb=1.25)}
    assert select_winner(s, {"a": verdict("a", "pass")}, "size") == (
        "a",
        "lowest size 1.25 MB among 1 passing candidate",
    )


def test_ties_break_by_size_then_name() -> None:
    s = {
        "z": make_summary("z", median_ms=est(0.7), size_mb=1.0),
        "y": make_summary("y", median_ms=est(0.7), size_mb=2.0),
        "x": make_summary("x", median_ms=est(0.7), size_mb=1.0),
    }
    v = {k: verdict(k, "pass") for k in s}
    assert select_winner(s, v, "median_latency")[0] == "x"
    assert select_winner(s, v, "peak_rss")[0] == "x"
    assert select_winner(s, v, "size")[0] == "x"


def test_no_passing_candidate() -> None:
    s = {"fp32": make_summary("fp32", baseline=True), "a": make_summary("a")}
    v = {"fp32": verdict("fp32", "pass"), "a": verdict("a", "inconclusive")}
    assert select_winner(s, v, "p90_latency") == (None, "no candidate passed every gate")
    assert select_winner(s, {}, "size") == (None, "no candidate passed every gate")
    with pytest.raises(ValueError, match="unknown objective"):
        select_winner(s, v, "accuracy")


@pytest.mark.parametrize(
    ("incumbent_speedup", "tie"),
    [((3.3, 3.1, 3.5), True), ((2.9, 2.8, 3.0), False), ((3.6, 3.5, 3.7), True)],
)
def test_the_champions_twin_keeps_its_place_on_a_tie(incumbent_speedup, tie: bool) -> None:
    """Overlapping speedup CIs (vs the shared baseline) are a tie; a clear gap is not."""
    winner = make_summary("new", speedup=est(3.4, 3.2, 3.6))
    incumbent = make_summary("old", speedup=est(*incumbent_speedup))
    assert incumbent_ties(winner, incumbent, "median_latency") is tie


def test_without_speedups_the_median_intervals_decide() -> None:
    winner = make_summary("new", speedup=None, median_ms=est(0.80, 0.795, 0.82))
    close = make_summary("old", speedup=None, median_ms=est(0.81, 0.80, 0.83))
    slow = make_summary("old", speedup=None, median_ms=est(0.84, 0.83, 0.85))
    assert incumbent_ties(winner, close, "median_latency")
    assert not incumbent_ties(winner, slow, "median_latency")


def test_deterministic_objectives_tie_only_when_equal() -> None:
    small, same, big = (
        make_summary(n, size_mb=mb) for n, mb in (("a", 1.0), ("b", 1.0), ("c", 2.0))
    )
    assert incumbent_ties(small, same, "size")
    assert not incumbent_ties(small, big, "size")
