"""Winner selection among passing candidates."""

from __future__ import annotations

from edgeproof.records import Verdict
from gates.select import select_winner
from tests.builders import summary


def _v(name: str, status: str) -> Verdict:
    return Verdict(candidate=name, status=status, checks=(), reasons=())


def test_fastest_passing_candidate_wins_and_baseline_never_does() -> None:
    s = {
        "fp32": summary("fp32", baseline=True, median=0.1),
        "a": summary("a", median=0.8),
        "b": summary("b", median=0.7),
        "c": summary("c", median=0.5),
    }
    v = {
        "fp32": _v("fp32", "pass"),
        "a": _v("a", "pass"),
        "b": _v("b", "pass"),
        "c": _v("c", "fail"),
    }
    winner, why = select_winner(s, v, "median_latency")
    assert winner == "b"
    assert "runner-up a" in why


def test_ties_break_by_size_then_name() -> None:
    s = {
        "z": summary("z", median=0.7).model_copy(update={"size_mb": 1.0}),
        "y": summary("y", median=0.7).model_copy(update={"size_mb": 2.0}),
        "x": summary("x", median=0.7).model_copy(update={"size_mb": 1.0}),
    }
    v = {k: _v(k, "pass") for k in s}
    assert select_winner(s, v, "median_latency")[0] == "x"
    assert select_winner(s, v, "size")[0] == "x"


def test_no_passing_candidate() -> None:
    s = {"a": summary("a")}
    assert select_winner(s, {"a": _v("a", "fail")}, "p90_latency") == (
        None,
        "no candidate passed every gate",
    )
