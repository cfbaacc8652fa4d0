"""Decisions moved out of the flows: run status, reruns, promotion, champion twin, re-check."""

from __future__ import annotations

from dataclasses import replace

from edgeproof.config import ChampionCompare
from edgeproof.gates.champion import (
    identical_to_champion,
    judge_against_champion,
    prefer_champion_twin,
)
from edgeproof.gates.champion_policy import SourceKey
from edgeproof.gates.outcome import (
    champion_twin,
    latency_inconclusive,
    recheck_status,
    rerun_candidates,
    run_status,
    wants_promotion,
)
from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    Check,
    Promotion,
    TargetOutcome,
    Verdict,
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


SOURCE = SourceKey("model-md5", "data-md5", "model-p", "data-p", "gates-p")
OTHER_DATA = replace(SOURCE, data_md5="new-data-md5")


def judge(outcome: TargetOutcome, rematch: TargetOutcome, champion_source: SourceKey | None):
    return judge_against_champion(
        outcome,
        rematch,
        "fast",
        "m.t",
        "3",
        ChampionCompare(),
        SOURCE,
        champion_source,
        "median_latency",
    )


def test_judging_the_winner_against_the_champion() -> None:
    outcome = _outcome({"fp32": ("pass", {}), "fast": ("pass", {})}, winner="fast")
    slower = _outcome({"fast": ("pass", {"speedup": est(0.9, 0.88, 0.92)})})
    judged = judge(outcome, slower, OTHER_DATA)
    assert judged.status == "blocked" and judged.champion is not None
    assert judged.champion.status == "worse"
    same = _outcome({"fast": ("pass", {"speedup": est(1.0, 0.97, 1.03)})})
    judged = judge(outcome, same, OTHER_DATA)
    assert judged.status == "pass" and judged.champion.status == "not-worse"
    assert "source differs from champion v3 (changed data_md5)" in judged.champion.reason
    missing = TargetOutcome(target="t", available=True, reason="crashed", status="error")
    judged = judge(outcome, missing, OTHER_DATA)
    assert judged.status == "error"
    assert judged.reason == "could not compare fast with champion v3: crashed"
    twin = identical_to_champion(outcome, "m.t", "3")
    assert twin.champion.status == "identical" and twin.status == "pass"
    assert twin.champion.reason == "fast is byte-identical to champion v3"


def test_from_the_champions_own_source_only_a_clear_gain_moves_it() -> None:
    """The demo's churn: nothing changed, a re-rolled winner "not worse" at 0.98x [0.94,
    1.01] moved the champion. Now it is kept; a gain wholly above 1.03x still moves it."""
    outcome = _outcome({"fp32": ("pass", {}), "fast": ("pass", {})}, winner="fast")
    reroll = _outcome({"fast": ("pass", {"speedup": est(0.98, 0.94, 1.01)})})
    judged = judge(outcome, reroll, SOURCE)
    assert judged.status == "pass" and judged.champion is not None
    assert judged.champion.status == "kept"
    assert judged.champion.reason == (
        "same source as champion v3; fast is not clearly better (speedup gain 0.980x "
        "[0.940, 1.010], needs the whole CI above 1.03x): champion v3 kept"
    )
    slightly = _outcome({"fast": ("pass", {"speedup": est(1.05, 1.02, 1.08)})})
    assert judge(outcome, slightly, SOURCE).champion.status == "kept"  # CI reaches 1.02
    better = _outcome({"fast": ("pass", {"speedup": est(1.20, 1.12, 1.28)})})
    judged = judge(outcome, better, SOURCE)
    assert judged.champion.status == "not-worse"
    assert "clearly better: speedup gain 1.200x [1.120, 1.280] wholly above 1.03x" in (
        judged.champion.reason
    )
    unrecorded = judge(outcome, reroll, None)  # a champion registered before sources
    assert unrecorded.champion.status == "not-worse"
    assert "no recorded source" in unrecorded.champion.reason


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
