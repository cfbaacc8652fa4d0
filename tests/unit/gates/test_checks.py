"""Gate checks on hand-made summaries: pass, fail, boundary, inconclusive, policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeproof.config import GatesConfig, gates_model
from edgeproof.gates.checks import CHECK_NAMES, decide
from edgeproof.records import (
    Candidate,
    Estimate,
    LanguageModelScores,
    OpCoverage,
    Verdict,
)
from edgeproof.targets.litert.compiler_log import parse_compiler_log
from edgeproof.tasks.language_model import KIND as LANGUAGE_MODEL
from edgeproof.tasks.registry import gate_models
from edgeproof.tasks.tensor import with_op_coverage
from tests.helpers import est, make_summary

BASE = make_summary("fp32", baseline=True)
EVERYTHING = {
    "accuracy": {"max_drop_abs": 0.01, "max_drop_rel": 0.02},
    "fidelity": {"min_top1_agreement": 0.98, "max_kl": 0.05},
    "latency": {"p90_budget_ms": 5.0, "min_speedup": 1.2},
    "memory": {"max_peak_rss_mb": 200.0, "min_reduction": 0.1},
    "size": {"max_mb": 5.0},
    "energy": {"max_mj_per_inference": 10.0, "min_reduction": 0.1},
}


def gates(**sections: Any) -> GatesConfig:
    return GatesConfig.model_validate(sections)


def statuses(verdict: Verdict) -> dict[str, str]:
    return {c.name: c.status for c in verdict.checks}


def one(verdict: Verdict, name: str):
    return next(c for c in verdict.checks if c.name == name)


def test_good_candidate_passes_every_check_in_order() -> None:
    candidate = make_summary("q", energy_mj_per_inference=2.0)
    base = BASE.model_copy(update={"energy_mj_per_inference": 4.0})
    verdict = decide(candidate, base, gates(**EVERYTHING))
    assert verdict.status == "pass" and verdict.reasons == ()
    assert [c.name for c in verdict.checks] == [
        n
        for n in CHECK_NAMES
        # a classifier on a CPU: no MAE, op-coverage or own-metric checks
        if not n.startswith(("regression.", "op_coverage.", "metric."))
    ]
    assert set(statuses(verdict).values()) == {"pass"}
    speed = one(verdict, "latency.min_speedup")
    assert (speed.value, speed.low, speed.high, speed.limit) == (3.4, 3.2, 3.6, 1.2)
    assert speed.baseline == 2.7  # the baseline's median ms
    assert speed.message == "speedup 3.40x [3.20, 3.60] >= min 1.20x"
    reduction = one(verdict, "memory.min_reduction")
    assert reduction.value == pytest.approx(1 / 3) and reduction.baseline == 150.0
    assert one(verdict, "accuracy.max_drop_abs").baseline == 0.98


def test_default_gates() -> None:
    verdict = decide(make_summary("q"), BASE, GatesConfig())
    assert statuses(verdict) == {
        "accuracy.max_drop_abs": "pass",
        "fidelity.min_top1_agreement": "pass",
        "fidelity.max_kl": "pass",
        "latency.min_speedup": "pass",
    }


def test_all_failures_are_listed_together() -> None:
    bad = make_summary(
        "dyn",
        speedup=est(0.21, 0.20, 0.22),
        size_mb=9.0,
        top1_agreement=est(0.90, 0.88, 0.92),
        accuracy_drop=est(0.005, -0.002, 0.012),  # straddles 1 pt: inconclusive
    )
    verdict = decide(bad, BASE, gates(**EVERYTHING))
    assert verdict.status == "fail"
    assert [r.split(":")[0] for r in verdict.reasons] == [
        "accuracy.max_drop_abs",
        "fidelity.min_top1_agreement",
        "latency.min_speedup",
        "size.max_mb",
    ]
    assert verdict.reasons[0].startswith("accuracy.max_drop_abs: inconclusive: accuracy drop")
    assert verdict.reasons[2] == "latency.min_speedup: speedup 0.21x [0.20, 0.22] < min 1.20x"
    assert verdict.reasons[3] == "size.max_mb: size 9.000 MB > max 5.000 MB"
    assert "top-1 agreement 90.00% [88.00, 92.00] < min 98.00%" in verdict.reasons[1]


@pytest.mark.parametrize(
    ("speedup", "expected"),
    [
        (est(1.3, 1.2, 1.4), "pass"),  # low bound exactly at the limit clears it
        (est(1.25, 1.15, 1.35), "inconclusive"),
        (est(1.1, 1.0, 1.2), "inconclusive"),  # high bound exactly at the limit: not wholly below
        (est(1.1, 1.0, 1.19), "fail"),
    ],
)
def test_min_boundary_follows_the_interval(speedup: Estimate, expected: str) -> None:
    verdict = decide(make_summary("a", speedup=speedup), BASE, gates(latency={"min_speedup": 1.2}))
    assert statuses(verdict)["latency.min_speedup"] == expected


@pytest.mark.parametrize(
    ("p90", "expected"),
    [
        (est(4.5, 4.0, 5.0), "pass"),  # high bound exactly at the budget
        (est(5.0, 4.5, 5.5), "inconclusive"),
        (est(5.5, 5.0, 6.0), "inconclusive"),  # low bound exactly at the budget
        (est(5.5, 5.01, 6.0), "fail"),
    ],
)
def test_max_boundary_follows_the_interval(p90: Estimate, expected: str) -> None:
    verdict = decide(make_summary("a", p90_ms=p90), BASE, gates(latency={"p90_budget_ms": 5.0}))
    check = one(verdict, "latency.p90_budget_ms")
    assert check.status == expected
    assert (check.low, check.high, check.limit) == (p90.low, p90.high, 5.0)


def test_on_inconclusive_policy() -> None:
    straddle = make_summary("b", speedup=est(1.25, 1.15, 1.35))
    for policy in ("fail", "rerun"):
        strict = decide(straddle, BASE, gates(on_inconclusive=policy))
        assert strict.status == "fail"
        assert strict.reasons == (
            "latency.min_speedup: inconclusive: speedup 1.25x [1.15, 1.35] straddles min 1.20x",
        )
    lenient = decide(straddle, BASE, gates(on_inconclusive="warn"))
    assert lenient.status == "pass"
    assert lenient.reasons[0].startswith("latency.min_speedup: warning: inconclusive: speedup")
    failing = straddle.model_copy(update={"size_mb": 10.0})
    assert decide(failing, BASE, gates(on_inconclusive="warn", size={"max_mb": 5})).status == "fail"


def test_a_non_regression_speed_gate_warns_on_inconclusive_speed_alone() -> None:
    """``latency.on_inconclusive: warn``: speed within noise passes with a warning, a clear
    regression still fails, and other inconclusive checks still follow the global policy."""
    non_regression = {"min_speedup": 0.95, "on_inconclusive": "warn"}
    noisy = make_summary("q8", speedup=est(1.01, 0.87, 1.20))
    verdict = decide(noisy, BASE, gates(latency=non_regression))
    assert verdict.status == "pass"
    assert verdict.reasons[0].startswith("latency.min_speedup: warning: inconclusive:")
    slower = make_summary("q2", speedup=est(0.85, 0.80, 0.90))
    assert decide(slower, BASE, gates(latency=non_regression)).status == "fail"
    unsure = noisy.model_copy(update={"top1_agreement": est(0.985, 0.975, 0.995)})
    strict = gates(latency=non_regression, fidelity={"min_top1_agreement": 0.98})
    assert decide(unsure, BASE, strict).status == "fail"  # agreement straddles: global fail


def test_disabled_thresholds_are_not_checked() -> None:
    off = gates(
        accuracy={"max_drop_abs": None},
        fidelity={"min_top1_agreement": None, "max_kl": None},
        latency={"min_speedup": None},
    )
    verdict = decide(make_summary("q"), BASE, off)
    assert verdict.checks == () and verdict.status == "pass"
    with_size = off.model_copy(update={"size": gates(size={"max_mb": 2.0}).size})
    assert [c.name for c in decide(make_summary("q"), BASE, with_size).checks] == ["size.max_mb"]


def test_accuracy_drop_absolute_and_relative() -> None:
    worse = make_summary("w", accuracy_drop=est(0.03, 0.02, 0.04))
    verdict = decide(worse, BASE, gates(accuracy={"max_drop_abs": 0.01, "max_drop_rel": 0.05}))
    assert statuses(verdict)["accuracy.max_drop_abs"] == "fail"
    rel = one(verdict, "accuracy.max_drop_rel")
    assert rel.status == "pass"  # 4 pt of 98% is 4.1% relative
    assert rel.high == pytest.approx(0.04 / 0.98) and rel.baseline == 0.98
    assert one(verdict, "accuracy.max_drop_abs").message == (
        "accuracy drop 3.00 pt [2.00, 4.00] > max 1.00 pt"
    )


def test_unlabelled_data_skips_accuracy_checks() -> None:
    cand = make_summary("u", accuracy=None, accuracy_drop=None)
    base = BASE.model_copy(update={"accuracy": None, "accuracy_drop": None})
    verdict = decide(cand, base, gates(**EVERYTHING))
    for name in ("accuracy.max_drop_abs", "accuracy.max_drop_rel"):
        assert one(verdict, name).status == "skipped"
        assert "no labels" in one(verdict, name).message
    assert verdict.status == "pass"


def test_memory_and_size_are_deterministic() -> None:
    cand = make_summary("m", peak_rss_mb=140.0)
    verdict = decide(cand, BASE, gates(memory={"max_peak_rss_mb": 100, "min_reduction": 0.1}))
    assert statuses(verdict)["memory.max_peak_rss_mb"] == "fail"
    red = one(verdict, "memory.min_reduction")
    assert red.status == "fail"  # 1 - 140/150 = 6.7% < 10%
    assert red.message == "peak RSS reduction 6.67% < min 10.00%"
    assert red.low is None and red.high is None
    at_limit = make_summary("n", peak_rss_mb=100.0, size_mb=5.0)
    exact = decide(at_limit, BASE, gates(memory={"max_peak_rss_mb": 100}, size={"max_mb": 5}))
    assert statuses(exact)["memory.max_peak_rss_mb"] == statuses(exact)["size.max_mb"] == "pass"


def test_missing_speedup_is_inconclusive_not_pass() -> None:
    verdict = decide(make_summary("s", speedup=None), BASE, gates())
    assert statuses(verdict)["latency.min_speedup"] == "inconclusive"
    assert verdict.status == "fail"


def test_baseline_gets_only_absolute_checks() -> None:
    base = BASE.model_copy(update={"energy_mj_per_inference": 4.0})
    verdict = decide(base, base, gates(**{**EVERYTHING, "latency": {"p90_budget_ms": 1.0}}))
    got = statuses(verdict)
    assert got.pop("latency.p90_budget_ms") == "fail"  # 3.0 ms [2.9, 3.1] > 1 ms budget
    assert got.pop("memory.max_peak_rss_mb") == "pass"
    assert got.pop("size.max_mb") == "pass"
    assert got.pop("energy.max_mj_per_inference") == "pass"
    assert set(got.values()) == {"skipped"}
    assert {c.message for c in verdict.checks if c.status == "skipped"} == {"baseline"}
    assert verdict.status == "fail" and len(verdict.reasons) == 1
    assert verdict.reasons[0] == (
        "latency.p90_budget_ms: p90 latency 3.000 ms [2.900, 3.100] > max 1.000 ms"
    )


def test_energy_checks_use_the_counter_and_skip_without_one() -> None:
    limits = gates(energy={"max_mj_per_inference": 5.0, "min_reduction": 0.5})
    base = make_summary("fp32", baseline=True, energy_mj_per_inference=8.0)
    lean = make_summary("q", energy_mj_per_inference=3.0)
    by_name = {c.name: c for c in decide(lean, base, limits).checks}
    assert by_name["energy.max_mj_per_inference"].status == "pass"
    reduction = by_name["energy.min_reduction"]
    assert reduction.status == "pass" and reduction.value == pytest.approx(1 - 3.0 / 8.0)
    hungry = make_summary("h", energy_mj_per_inference=6.0)
    failed = decide(hungry, base, limits)
    assert failed.status == "fail"
    assert "energy.max_mj_per_inference: energy 6.000 mJ/inference > max" in failed.reasons[0]

    no_counter = decide(make_summary("q"), make_summary("fp32", baseline=True), limits)
    energy = [c for c in no_counter.checks if c.name.startswith("energy.")]
    assert [c.status for c in energy] == ["skipped", "skipped"]
    assert energy[0].message == "no readable energy counter on this runner"
    assert no_counter.status == "pass"


def _language(kl_p99: float, ppl_ratio: Estimate | None) -> LanguageModelScores:
    return LanguageModelScores(
        n_windows=16,
        n_tokens=2048,
        kl_p99=kl_p99,
        kl_max=2 * kl_p99,
        perplexity=est(3.1, 2.9, 3.3),
        ppl_ratio=ppl_ratio,
        pp_tokens_per_s=est(9000.0, 8800.0, 9100.0),
        tg_tokens_per_s=est(3000.0, 2900.0, 3100.0),
        pp_tokens=128,
        tg_tokens=32,
        bits_per_weight=4.5,
        n_params=3_500_000,
    )


def test_language_models_get_the_token_level_checks_instead_of_accuracy() -> None:
    """The language_model task kind's own section and checks (``TaskKind.checks``), in
    place of the accuracy and fidelity ones."""
    lm = LANGUAGE_MODEL.checks()
    lm_gates = gates_model(gate_models()).model_validate(
        {"language_model": {"max_mean_kl": 0.005, "max_kl_p99": 0.1}}
    )
    q8 = make_summary(
        "q8_0",
        accuracy=None,
        accuracy_drop=None,
        top1_agreement=est(0.996, 0.991, 0.998),
        mean_kl=est(1.2e-5, 1.1e-5, 1.4e-5),
        language=_language(8e-5, est(1.0002, 0.9994, 1.0010)),
    )
    base = make_summary(
        "baseline", baseline=True, accuracy=None, accuracy_drop=None, language=_language(0, None)
    )
    verdict = decide(q8, base, lm_gates, kind=lm)
    names = [c.name for c in verdict.checks]
    assert verdict.status == "pass"
    assert names[:4] == [
        "language_model.max_mean_kl",
        "language_model.max_kl_p99",
        "language_model.min_top1_agreement",
        "language_model.max_ppl_ratio",
    ]
    assert not any(n.startswith(("accuracy.", "fidelity.")) for n in names)
    assert one(verdict, "language_model.max_ppl_ratio").message == (
        "perplexity ratio 1.0002 [0.9994, 1.0010] <= max 1.0300"
    )
    q2 = q8.model_copy(
        update={
            "mean_kl": est(0.016, 0.012, 0.021),
            "top1_agreement": est(0.948, 0.936, 0.958),
            "language": _language(0.19, est(1.019, 1.012, 1.027)),
        }
    )
    got = statuses(decide(q2, base, lm_gates, kind=lm))
    assert got["language_model.max_mean_kl"] == "fail"
    assert got["language_model.max_kl_p99"] == "fail"
    assert got["language_model.min_top1_agreement"] == "inconclusive"  # CI straddles 95%
    assert got["language_model.max_ppl_ratio"] == "pass"  # perplexity barely moves
    assert {c.status for c in decide(base, base, lm_gates, kind=lm).checks} == {"skipped"}


def test_op_coverage_names_the_first_op_left_on_the_cpu() -> None:
    partial = OpCoverage(
        accelerator="edgetpu",
        share=0.75,
        ops_accelerator=9,
        ops_total=12,
        first_fallback="SOFTMAX (Operation is working on an unsupported data type)",
        subgraphs=1,
    )
    tpu = make_summary("edgetpu", op_coverage=partial)
    check = one(decide(tpu, BASE, gates(op_coverage={"min_accelerator_share": 0.9})), NAME_COV)
    assert check.status == "fail" and check.value == 0.75 and check.limit == 0.9
    assert check.message == (
        "ops on edgetpu 75.00% < min 90.00% (9 of 12, 1 subgraph(s)); first op on the CPU: "
        "SOFTMAX (Operation is working on an unsupported data type)"
    )
    full = tpu.model_copy(
        update={"op_coverage": partial.model_copy(update={"share": 1.0, "first_fallback": None})}
    )
    assert one(decide(full, BASE, gates()), NAME_COV).status == "pass"
    assert NAME_COV not in statuses(decide(make_summary("cpu"), BASE, gates()))


NAME_COV = "op_coverage.min_accelerator_share"
LOGS = Path(__file__).parents[1] / "tflite" / "logs"


def test_a_compiler_log_reaches_the_op_coverage_check(tmp_path: Path) -> None:
    """Edge TPU compiler log -> candidate recipe -> summary -> a failing check naming the op."""
    log = parse_compiler_log((LOGS / "cpu_fallback.txt").read_text(encoding="utf-8"))
    tpu = Candidate(
        target="edgetpu",
        name="edgetpu",
        files=(tmp_path / "model_edgetpu.tflite",),
        recipe={"method": "edgetpu_compiler", "op_coverage": log.to_record()},
        precision="int8",
    )
    summary = with_op_coverage(make_summary("edgetpu"), tpu)
    assert summary.op_coverage is not None and summary.op_coverage.share == round(log.share, 4)
    check = one(decide(summary, BASE, gates(op_coverage={"min_accelerator_share": 1.0})), NAME_COV)
    assert check.status == "fail" and log.first_fallback in check.message


def _metric_summary(higher_is_better: bool, candidate: float, slices: bool) -> Any:
    """A summary with the team's metric: 200 items, baseline 0.80 (or 0.10 lower-is-better
    error), the candidate worse by a share in its second slice only."""
    from edgeproof.config import MeasureConfig
    from edgeproof.gates.summarize import metric_summary
    from edgeproof.records import CustomMetricScores

    rng = np.random.default_rng(0)
    base = np.full(200, 0.8 if higher_is_better else 0.1) + rng.normal(0, 0.01, 200)
    cand = base.copy()
    cand[100:] += candidate if not higher_is_better else -candidate
    drop = base - cand if higher_is_better else cand - base
    groups = np.array(["clean"] * 100 + ["noisy"] * 100) if slices else None
    scores = CustomMetricScores("cer", higher_is_better, cand, base, drop, groups)
    return metric_summary(scores, MeasureConfig())


def test_the_teams_metric_gates_the_mean_drop_and_the_worst_slice() -> None:
    limits = gates(metric={"max_drop_rel": 0.08, "max_worst_slice_drop_rel": 0.05})
    # lower is better (an error rate): +0.01 on half the items = 5% mean, 10% on one slice
    summary = _metric_summary(False, 0.01, slices=True)
    assert summary.worst_slice == "noisy" and summary.slices == 2
    assert summary.drop.value == pytest.approx(0.005, abs=1e-9)
    candidate = make_summary("q", metric=summary)
    verdict = decide(candidate, BASE, limits)
    found = statuses(verdict)
    assert found["metric.max_drop_rel"] == "pass"  # 0.005 / 0.1 = 5.0% <= 8%
    assert found["metric.max_worst_slice_drop_rel"] == "fail"  # 10% on the noisy slice
    assert "worst slice 'noisy' (of 2)" in one(verdict, "metric.max_worst_slice_drop_rel").message
    assert found.get("metric.max_drop_abs") is None  # disabled by default


def test_a_better_candidate_has_a_negative_drop_and_no_slices_skip_the_slice_check() -> None:
    summary = _metric_summary(True, -0.05, slices=False)  # higher is better, and it is higher
    assert summary.drop.high < 0 and summary.worst_slice is None
    verdict = decide(make_summary("q", metric=summary), BASE, gates())
    assert statuses(verdict)["metric.max_drop_rel"] == "pass"
    skipped = one(verdict, "metric.max_worst_slice_drop_rel")
    assert skipped.status == "skipped" and "no slices" in skipped.message
