"""Winner selection on one objective among passing candidates (``select_on_front``), and
the incumbent tie rule (``gates.champion_policy.incumbent_ties``)."""

from __future__ import annotations

import pytest

from edgeproof.gates.champion_policy import incumbent_ties
from edgeproof.gates.pareto import SelectionPolicy, select_on_front
from edgeproof.records import Verdict
from tests.helpers import est, make_summary


def on(objective: str) -> SelectionPolicy:
    return SelectionPolicy(objective=objective)


def verdict(name: str, status: str) -> Verdict:
    return Verdict(candidate=name, status=status, checks=(), reasons=())


def timed(name: str, speedup: tuple[float, float, float], median_ms: float, **kw: object):
    """A candidate whose speedup over the shared baseline was measured in its own window."""
    return make_summary(name, speedup=est(*speedup), median_ms=est(median_ms), **kw)


def test_the_paired_speedup_decides_not_medians_from_different_windows() -> None:
    """The demo's case: percentile had the lower median (its window ran fast), minmax the
    higher paired speedup, CIs apart; minmax wins and the reason says it is clearly ahead."""
    s = {
        "fp32": make_summary("fp32", baseline=True, median_ms=est(0.1)),
        "static-qdq-percentile": timed("static-qdq-percentile", (2.46, 2.29, 2.78), 0.633),
        "static-qdq-minmax": timed("static-qdq-minmax", (2.96, 2.80, 3.13), 0.731),
        "failed": timed("failed", (9.0, 8.9, 9.1), 0.1),
    }
    v = {k: verdict(k, "pass") for k in s} | {"failed": verdict("failed", "fail")}
    sel = select_on_front(s, v, on("median_latency"))
    name, why = sel.winner, sel.reason
    assert name == "static-qdq-minmax"
    assert why.startswith(
        "highest paired speedup (speedup 2.96x [2.80, 3.13]) among 2 passing candidates; "
    )
    assert "than runner-up static-qdq-percentile (speedup 2.46x [2.29, 2.78]" in why
    assert why.endswith("clearly ahead (CI above 1)")


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
        "fast": timed("fast", (5.4, 5.2, 5.6), 0.5, p90_ms=est(2.0)),
        "steady": timed("steady", (3.9, 3.7, 4.1), 0.7, p90_ms=est(0.8)),
        "small": make_summary("small", size_mb=0.3),
        "lean": make_summary("lean", peak_rss_mb=40.0),
    }
    v = {k: verdict(k, "pass") for k in s}
    sel = select_on_front(s, v, on(objective))
    name, why = sel.winner, sel.reason
    assert name == winner
    assert "among 4 passing candidates; " in why and " than runner-up " in why


def test_single_passing_candidate_reason() -> None:
    s = {"a": make_summary("a", size_mb=1.25)}
    sel = select_on_front(s, {"a": verdict("a", "pass")}, on("size"))
    assert (sel.winner, sel.reason) == ("a", "only passing candidate (1.25 MB)")


def test_ties_within_noise_go_to_smaller_then_the_recipe_listed_first() -> None:
    """Same speedup within noise: the smaller wins; same size too: the one listed first,
    so unchanged inputs give the same winner whatever order the noise put them in."""
    s = {
        "z": timed("z", (3.0, 2.8, 3.2), 0.7, size_mb=1.0),
        "y": timed("y", (3.1, 2.9, 3.3), 0.7, size_mb=2.0),
        "x": timed("x", (3.05, 2.85, 3.25), 0.7, size_mb=1.0),
    }
    v = {k: verdict(k, "pass") for k in s}
    sel = select_on_front(s, v, on("median_latency"))
    name, why = sel.winner, sel.reason
    assert name == "z"
    assert "within noise (CI contains 1)" in why
    assert "the tie within noise goes to the order of the recipes" in why
    swapped = {k: s[k] for k in ("x", "y", "z")}
    assert select_on_front(swapped, v, on("median_latency")).winner == "x"
    assert select_on_front(s, v, on("peak_rss")).winner == "z"
    assert select_on_front(s, v, on("size")).winner == "z"


def test_no_passing_candidate() -> None:
    s = {"fp32": make_summary("fp32", baseline=True), "a": make_summary("a")}
    v = {"fp32": verdict("fp32", "pass"), "a": verdict("a", "inconclusive")}
    for verdicts, objective in ((v, "p90_latency"), ({}, "size")):
        sel = select_on_front(s, verdicts, on(objective))
        assert (sel.winner, sel.reason) == (None, "no candidate passed every gate")
    with pytest.raises(ValueError, match="unknown objective"):
        on("accuracy")


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
