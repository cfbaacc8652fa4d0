"""Fallback to the baseline: which target falls back, how its baseline is judged against the
champion, and the run's status. Hand-made records, no I/O."""

from __future__ import annotations

from pathlib import Path

from edgeproof.config import ChampionCompare, RegistryConfig
from edgeproof.gates.champion import identical_to_champion, judge_fallback_against_champion
from edgeproof.gates.champion_policy import SourceKey
from edgeproof.gates.outcome import (
    FALLBACK_REASON,
    fallback_baseline,
    is_fallback,
    no_fallback_reason,
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

KEY = SourceKey("m", "d", "mp", "dp", "gp")


def _row(name: str, verdict: str, baseline: bool = False, **update: object) -> CandidateOutcome:
    cand = Candidate(
        target="t",
        name=name,
        files=(Path(f"/tmp/{name}.onnx"),),
        recipe={},
        precision="fp32" if baseline else "int8",
        is_baseline=baseline,
    )
    reasons = () if verdict == "pass" else (f"{name}: speedup below 100x",)
    checks = (Check(name="latency.min_speedup", status=verdict, message="speedup"),)
    return CandidateOutcome(
        candidate=cand,
        summary=make_summary(name, baseline=baseline, **update),
        verdict=Verdict(candidate=name, status=verdict, checks=checks, reasons=reasons),
    )


def _nothing_passed(baseline: str = "pass", status: str = "blocked") -> TargetOutcome:
    return TargetOutcome(
        target="t",
        available=True,
        reason="no candidate passed every gate",
        baseline="fp32",
        outcomes=(_row("fp32", baseline, baseline=True), _row("int8", "fail")),
        status=status,
    )


def test_a_blocked_target_whose_baseline_passed_falls_back_to_it() -> None:
    outcome = _nothing_passed()
    assert fallback_baseline(outcome, enabled=True) == "fp32"
    assert no_fallback_reason(outcome, enabled=True) is None
    assert fallback_baseline(outcome, enabled=False) is None  # off: today's behaviour
    assert no_fallback_reason(outcome, enabled=False) is None
    assert wants_promotion(outcome)


def test_no_fallback_with_a_winner_an_error_or_a_failing_baseline() -> None:
    passed = _nothing_passed().model_copy(update={"winner": "int8", "status": "pass"})
    assert fallback_baseline(passed, enabled=True) is None  # an optimized candidate passed
    worse = passed.model_copy(update={"status": "blocked"})  # winner worse than the champion
    assert fallback_baseline(worse, enabled=True) is None
    erred = _nothing_passed(status="error")
    assert fallback_baseline(erred, enabled=True) is None
    failing = _nothing_passed(baseline="fail")
    assert fallback_baseline(failing, enabled=True) is None
    why = no_fallback_reason(failing, enabled=True)
    assert why is not None and why.startswith("no fallback: the baseline fp32 did not pass")
    inconclusive = _nothing_passed(baseline="inconclusive")
    assert fallback_baseline(inconclusive, enabled=True) is None  # "passed" means pass
    unmeasured = TargetOutcome(target="t", available=True, baseline="fp32", status="blocked")
    assert fallback_baseline(unmeasured, enabled=True) is None
    assert no_fallback_reason(unmeasured, enabled=True) == (
        "no fallback: the baseline was not measured"
    )


def test_the_run_stays_blocked_under_a_fallback() -> None:
    moved = Promotion(
        target="t",
        registered_model="m.t",
        version="1",
        champion_after="1",
        moved=True,
        reason=f"{FALLBACK_REASON} (no candidate passed every gate); ...",
    )
    assert is_fallback(moved)
    assert run_status([_nothing_passed()], [moved]) == "blocked"
    assert not is_fallback(moved.model_copy(update={"reason": "int8 passed every gate: ..."}))


def test_the_fallback_is_on_by_default() -> None:
    assert RegistryConfig().fallback_to_baseline is True
    assert RegistryConfig(fallback_to_baseline=False).fallback_to_baseline is False


def _rematch(speedup: float, low: float, high: float) -> TargetOutcome:
    """The baseline measured as a candidate with the champion as its baseline."""
    mine = _row("fp32", "pass", speedup=est(speedup, low, high), accuracy_drop=est(0.0))
    champ = _row("champion-v1", "pass", baseline=True)
    return TargetOutcome(
        target="t", available=True, outcomes=(champ, mine), baseline="champion-v1", status="pass"
    )


def _judge(rematch: TargetOutcome, champion_source: SourceKey | None) -> TargetOutcome:
    return judge_fallback_against_champion(
        _nothing_passed(),
        rematch,
        "fp32",
        "m.t",
        "1",
        ChampionCompare(),
        KEY,
        champion_source,
        "median_latency",
    )


def test_a_fallback_from_the_champions_source_is_kept_unless_clearly_better() -> None:
    judged = _judge(_rematch(1.0, 0.99, 1.01), KEY)  # same source, equal: nothing moves
    assert judged.champion is not None and judged.champion.status == "kept"
    assert (judged.status, judged.winner) == ("blocked", None)
    assert judged.reason == "no candidate passed every gate"
    better = _judge(_rematch(1.5, 1.4, 1.6), KEY)
    assert better.champion is not None and better.champion.status == "not-worse"


def test_a_fallback_from_a_new_source_replaces_a_champion_it_is_not_worse_than() -> None:
    other = SourceKey("m2", "d", "mp", "dp", "gp")
    judged = _judge(_rematch(1.0, 0.99, 1.01), other)
    assert judged.champion is not None and judged.champion.status == "not-worse"
    slower = _judge(_rematch(0.3, 0.28, 0.32), other)  # fp32 against an int8 champion
    assert slower.champion is not None and slower.champion.status == "worse"
    assert slower.status == "blocked"


def test_a_fallback_that_cannot_be_compared_leaves_the_target_blocked_not_erred() -> None:
    empty = TargetOutcome(target="t", available=True, reason="not measured", status="error")
    judged = _judge(empty, KEY)
    assert judged.champion is not None and judged.champion.status == "error"
    assert (judged.status, judged.reason) == ("blocked", "no candidate passed every gate")


def test_an_identical_fallback_names_the_baseline() -> None:
    same = identical_to_champion(_nothing_passed(), "m.t", "1", "fp32")
    assert same.champion is not None
    assert same.champion.reason == "fp32 is byte-identical to champion v1"
