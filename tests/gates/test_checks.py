"""Gate checks on hand-made summaries: pass, fail, boundary, inconclusive, policy."""

from __future__ import annotations

from edgeproof.config import GatesConfig
from gates.checks import decide
from tests.builders import estimate, summary

BASE = summary("fp32", baseline=True, median=2.7)


def _gates(**sections) -> GatesConfig:
    return GatesConfig.model_validate(sections)


def _by_name(verdict) -> dict[str, str]:
    return {c.name: c.status for c in verdict.checks}


def test_fast_accurate_candidate_passes_every_check() -> None:
    verdict = decide(summary("q", speedup=3.5), BASE, _gates(size={"max_mb": 5}))
    assert verdict.status == "pass" and verdict.reasons == ()
    assert _by_name(verdict) == {
        "accuracy.max_drop_abs": "pass",
        "fidelity.min_top1_agreement": "pass",
        "fidelity.max_kl": "pass",
        "latency.min_speedup": "pass",
        "size.max_mb": "pass",
    }


def test_all_failures_are_listed_together() -> None:
    slow = summary("dyn", speedup=0.2).model_copy(
        update={"size_mb": 9.0, "top1_agreement": estimate(0.90, 0.01)}
    )
    verdict = decide(slow, BASE, _gates(size={"max_mb": 5}))
    assert verdict.status == "fail"
    assert [r.split(":")[0] for r in verdict.reasons] == [
        "fidelity.min_top1_agreement",
        "latency.min_speedup",
        "size.max_mb",
    ]
    assert "speedup 0.20x [0.10x, 0.30x] < min 1.20x" in verdict.reasons[1]


def test_boundary_values_follow_the_interval() -> None:
    gates = _gates(latency={"min_speedup": 1.2})
    at_limit = summary("a").model_copy(update={"speedup": estimate(1.3, 0.1)})  # low == 1.2
    assert _by_name(decide(at_limit, BASE, gates))["latency.min_speedup"] == "pass"
    straddle = summary("b").model_copy(update={"speedup": estimate(1.25, 0.1)})
    assert _by_name(decide(straddle, BASE, gates))["latency.min_speedup"] == "inconclusive"
    below = summary("c").model_copy(update={"speedup": estimate(1.05, 0.1)})  # high < 1.2
    assert _by_name(decide(below, BASE, gates))["latency.min_speedup"] == "fail"


def test_on_inconclusive_policy() -> None:
    straddle = summary("b").model_copy(update={"speedup": estimate(1.25, 0.1)})
    strict = decide(straddle, BASE, _gates(on_inconclusive="fail"))
    assert strict.status == "fail" and "inconclusive" in strict.reasons[0]
    lenient = decide(straddle, BASE, _gates(on_inconclusive="warn"))
    assert lenient.status == "pass" and lenient.reasons[0].startswith(
        "latency.min_speedup: warning: inconclusive"
    )


def test_disabled_thresholds_are_not_checked() -> None:
    gates = _gates(
        accuracy={"max_drop_abs": None},
        fidelity={"min_top1_agreement": None, "max_kl": None},
        latency={"min_speedup": None},
    )
    assert decide(summary("q"), BASE, gates).checks == ()


def test_accuracy_drop_absolute_and_relative() -> None:
    worse = summary("w").model_copy(update={"accuracy_drop": estimate(0.03, 0.01)})
    verdict = decide(worse, BASE, _gates(accuracy={"max_drop_abs": 0.01, "max_drop_rel": 0.5}))
    checks = _by_name(verdict)
    assert checks["accuracy.max_drop_abs"] == "fail"
    assert checks["accuracy.max_drop_rel"] == "pass"  # 3 pt of 99% is ~3% relative


def test_memory_checks_and_unlabelled_data() -> None:
    cand = summary("m").model_copy(update={"peak_rss_mb": 120.0, "accuracy_drop": None})
    gates = _gates(memory={"max_peak_rss_mb": 100, "min_reduction": 0.1})
    checks = {c.name: c for c in decide(cand, BASE, gates).checks}
    assert checks["memory.max_peak_rss_mb"].status == "fail"
    assert checks["memory.min_reduction"].status == "pass"  # 1 - 120/150 = 20%
    assert checks["accuracy.max_drop_abs"].status == "skipped"


def test_baseline_gets_only_absolute_checks() -> None:
    verdict = decide(BASE, BASE, _gates(latency={"p90_budget_ms": 1.0}))
    statuses = _by_name(verdict)
    assert statuses["latency.p90_budget_ms"] == "fail"  # 2.97 ms > 1 ms budget
    assert {statuses[k] for k in statuses if k != "latency.p90_budget_ms"} == {"skipped"}
