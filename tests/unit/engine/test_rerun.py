"""on_inconclusive: rerun — which candidates are measured again, and how results merge."""

from __future__ import annotations

from pathlib import Path

from edgeproof.config import MeasureConfig
from edgeproof.gates.outcome import latency_inconclusive
from edgeproof.measure.harness import extended
from edgeproof.records import Candidate, CandidateOutcome, Check, TargetOutcome, Verdict
from edgeproof.records.measurement import TargetMeasurements
from tests.helpers import summary


def _outcome(name: str, *checks: tuple[str, str], baseline: bool = False) -> CandidateOutcome:
    cand = Candidate(
        target="t", name=name, files=(), recipe={}, precision="int8", is_baseline=baseline
    )
    verdict = Verdict(
        candidate=name,
        status="fail",
        checks=tuple(Check(name=n, status=st, message="m") for n, st in checks),
        reasons=(),
    )
    return CandidateOutcome(candidate=cand, summary=summary(name), verdict=verdict)


def test_only_latency_inconclusive_candidates_without_failures_are_rerun() -> None:
    outcome = TargetOutcome(
        target="t", available=True, status="blocked",
        outcomes=(
            _outcome("base", ("latency.p90_budget_ms", "inconclusive"), baseline=True),
            _outcome("a", ("latency.min_speedup", "inconclusive"), ("fidelity.max_kl", "pass")),
            _outcome("b", ("latency.min_speedup", "inconclusive"), ("fidelity.max_kl", "fail")),
            _outcome("c", ("fidelity.min_top1_agreement", "inconclusive")),
            _outcome("d", ("latency.min_speedup", "pass")),
        ),
    )  # fmt: skip
    assert latency_inconclusive(outcome) == ["a"]


def test_extended_budget_and_merge() -> None:
    base = MeasureConfig(max_seconds=30, max_samples=1000, min_samples=100, rerun_factor=2.0)
    longer = extended(base)
    assert (longer.max_seconds, longer.max_samples, longer.min_samples) == (60, 2000, 200)
    assert longer.seed != base.seed

    # the payloads are stand-ins: merging only moves entries by candidate name
    first = TargetMeasurements(
        raw={"base": 1, "a": 1, "b": 1},
        outputs={"base": Path("b1"), "a": Path("a1"), "b": Path("x")},
        errors={},
    )
    second = TargetMeasurements(
        raw={"base": 2, "a": 2},
        outputs={"base": Path("b2"), "a": Path("a2")},
        errors={"b": "crashed"},
    )
    merged = first.replacing(second, ["a", "b"])
    assert merged.raw == {"base": 1, "a": 2}
    assert merged.outputs == {"base": Path("b1"), "a": Path("a2")}
    assert merged.errors == {"b": "crashed"}
