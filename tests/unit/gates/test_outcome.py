"""Decisions moved out of the flows: run status, reruns, promotion, champion twin, re-check."""

from __future__ import annotations

from edgeproof.config import ChampionCompare
from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    Check,
    Promotion,
    TargetOutcome,
    Verdict,
)
from gates.champion import identical_to_champion, judge_against_champion, prefer_champion_twin
from gates.outcome import (
    champion_twin,
    latency_inconclusive,
    recheck_status,
    rerun_candidates,
    run_status,
    wants_promotion,
)
from tests.helpers import est, make_summary


def _cand(name: str, baseline: bool = False) -> Candidate:
    return Candidate(
        target="t", name=name, files=(), recipe={}, precision="int8", is_baseline=baseline
    )


def _outcome(
    rows: dict[str, tuple[str, dict]], winner: str | None = None, status: str = "pass"
) -> TargetOutcome:
    """rows: name -> (verdict status, summary overrides); checks from the verdict status."""
    outcomes = []
    for name, (verdict, update) in rows.items():
        checks = (Check(name="latency.min_speedup", status=verdict, message=verdict),)
        outcomes.append(
            CandidateOutcome(
                candidate=_cand(name, name == "fp32"),
                summary=make_summary(name, baseline=name == "fp32", **update),
                verdict=Verdict(candidate=name, status=verdict, checks=checks, reasons=()),
            )
        )
    return TargetOutcome(
        target="t", available=True, outcomes=tuple(outcomes), winner=winner, status=status
    )


def _status(*statuses: str, refused: bool = False) -> str:
    outcomes = [
        TargetOutcome(target=f"t{i}", available=True, status=s) for i, s in enumerate(statuses)
    ]
    promotions = [Promotion(target="t0", registered_model="m.t0", refused=refused, reason="x")]
    return run_status(outcomes, promotions)


def test_run_status() -> None:
    assert _status("pass", "pass") == "pass"
    assert _status("pass", "unavailable") == "pass"  # one target could not run here
    assert _status("unavailable", "unavailable") == "error"  # none could
    assert _status("pass", "error") == "error"
    assert _status("pass", "blocked") == "blocked"
    assert _status("pass", refused=True) == "blocked"  # another run moved the champion


def test_only_inconclusive_latency_without_failures_is_rerun() -> None:
    outcome = _outcome({"fp32": ("pass", {}), "a": ("inconclusive", {}), "b": ("fail", {})})
    assert latency_inconclusive(outcome) == ["a"]
    assert rerun_candidates(outcome, "rerun") == ["a"]
    assert rerun_candidates(outcome, "fail") == []
    assert wants_promotion(outcome)
    assert wants_promotion(outcome.model_copy(update={"status": "blocked"}))
    assert not wants_promotion(outcome.model_copy(update={"status": "error"}))


def test_champion_twin_keeps_a_tie_but_not_a_clear_loss() -> None:
    rows = {
        "fp32": ("pass", {}),
        "fast": ("pass", {"speedup": est(3.4, 3.2, 3.6)}),
        "twin": ("pass", {"speedup": est(3.3, 3.1, 3.5)}),  # overlaps: a tie
        "slow": ("pass", {"speedup": est(2.0, 1.9, 2.1)}),  # clearly slower
        "failed": ("fail", {"speedup": est(3.4, 3.2, 3.6)}),
    }
    outcome = _outcome(rows, winner="fast")
    assert champion_twin(outcome, ["twin"], "median_latency") == "twin"
    assert champion_twin(outcome, ["slow"], "median_latency") is None
    assert champion_twin(outcome, ["failed"], "median_latency") is None  # must pass its gates
    assert champion_twin(outcome, [], "median_latency") is None
    assert champion_twin(outcome.model_copy(update={"winner": None}), ["twin"], "size") is None
    kept = prefer_champion_twin(outcome, "twin", "median_latency")
    assert kept.winner == "twin" and kept.reason is not None
    assert "twin is the champion's bytes and within noise of fast" in kept.reason


def test_judging_the_winner_against_the_champion() -> None:
    outcome = _outcome({"fp32": ("pass", {}), "fast": ("pass", {})}, winner="fast")
    slower = _outcome({"fast": ("pass", {"speedup": est(0.9, 0.88, 0.92)})})
    judged = judge_against_champion(outcome, slower, "fast", "m.t", "3", ChampionCompare())
    assert judged.status == "blocked" and judged.champion is not None
    assert judged.champion.status == "worse"
    same = _outcome({"fast": ("pass", {"speedup": est(1.0, 0.97, 1.03)})})
    judged = judge_against_champion(outcome, same, "fast", "m.t", "3", ChampionCompare())
    assert judged.status == "pass" and judged.champion.status == "not-worse"
    missing = TargetOutcome(target="t", available=True, reason="crashed", status="error")
    judged = judge_against_champion(outcome, missing, "fast", "m.t", "3", ChampionCompare())
    assert judged.status == "error"
    assert judged.reason == "could not compare fast with champion v3: crashed"
    twin = identical_to_champion(outcome, "m.t", "3")
    assert twin.champion.status == "identical" and twin.status == "pass"
    assert twin.champion.reason == "fast is byte-identical to champion v3"


def test_recheck_status() -> None:
    assert recheck_status([], [], []) == ("healthy", [])
    assert recheck_status([], ["speedup fell"], []) == ("regressed", ["speedup fell"])
    assert recheck_status(["model.onnx differs"], [], []) == ("regressed", ["model.onnx differs"])
    # another device: not comparable, unless a file changed (that is a regression anywhere)
    assert recheck_status([], ["speedup fell"], ["cpu differs"]) == (
        "incomparable",
        ["cpu differs"],
    )
    assert recheck_status(["bad"], [], ["cpu differs"])[0] == "regressed"
