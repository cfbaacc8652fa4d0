"""summary.md and verdict.json from hand-made run results."""

from __future__ import annotations

import json
from pathlib import Path

from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    Check,
    Promotion,
    RunResult,
    TargetOutcome,
    Verdict,
)
from edgeproof.report.files import write_report
from edgeproof.report.gate_metrics import gate_metrics, write_gate_metrics
from edgeproof.report.markdown import MARKER, format_estimate, render_summary
from edgeproof.report.progression import recipe_text
from tests.helpers import estimate, run_info, summary


def _outcome(name: str, status: str, reasons: tuple[str, ...] = (), **kw) -> CandidateOutcome:
    cand = Candidate(
        target="onnxruntime-cpu",
        name=name,
        files=(Path(f"/tmp/{name}.onnx"),),
        recipe={},
        precision="fp32" if kw.get("baseline") else "int8",
        is_baseline=kw.get("baseline", False),
    )
    checks = tuple(Check(name="latency.min_speedup", status="fail", message=r) for r in reasons)
    return CandidateOutcome(
        candidate=cand,
        summary=summary(name, **kw),
        verdict=Verdict(candidate=name, status=status, checks=checks, reasons=reasons),
    )


def _result() -> RunResult:
    target = TargetOutcome(
        target="onnxruntime-cpu",
        available=True,
        reason="lowest median latency",
        baseline="fp32",
        outcomes=(
            _outcome("fp32", "pass", baseline=True, median=2.7),
            _outcome(
                "dynamic-int8",
                "fail",
                ("speedup 0.20x [0.19, 0.21] < min 1.20x",),
                median=13.7,
                speedup=0.2,
            ),
            _outcome("static-qdq", "pass", median=0.76, speedup=3.6),
        ),
        winner="static-qdq",
        status="pass",
    )
    run = run_info()
    promo = Promotion(
        target="onnxruntime-cpu",
        registered_model="digits-cnn.onnxruntime-cpu",
        version="3",
        champion_before="2",
        champion_after="3",
        challenger="3",
        moved=True,
        reason="passed",
    )
    return RunResult(run=run, status="pass", exit_code=0, targets=(target,), promotions=(promo,))


def test_summary_lists_every_candidate_reason_and_promotion() -> None:
    text = render_summary(_result())
    assert text.startswith(MARKER)
    assert "quality gate: ✅ pass" in text
    assert "0123456789 (dirty)" in text
    table = text.split("Winner:")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 4  # header + 3 candidates
    ladder = text.split("Progression")[1].split("<details>")[0]
    steps = [line.split(" | ")[0] for line in ladder.splitlines() if line.startswith("| ")]
    assert steps == ["| step", "| conversion → `fp32`", "| + `dynamic-int8`", "| + `static-qdq`"]
    assert "| 0.20x [" in ladder and "| fail |" in ladder  # what the failing step cost
    assert "| `dynamic-int8` | latency.min_speedup | ❌ fail |" in text  # every check listed
    assert "**static-qdq** 🏆" in text and "fp32 (baseline)" in text
    assert "speedup 0.20x [0.19, 0.21] < min 1.20x" in text
    assert "`champion` → v3 (was v2)" in text
    assert "3.60 [3.50, 3.70]x" in text


def test_format_estimate() -> None:
    assert format_estimate(None) == "—"
    assert format_estimate(estimate(0.99, 0.01), 1, 100.0) == "99.0 [98.0, 100.0]"


def test_report_folder_is_written_whole(tmp_path: Path) -> None:
    result = _result()
    folder = write_report(result, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["junit.xml", "summary.md", "verdict.json"]
    assert json.loads((folder / "verdict.json").read_text())["exit_code"] == 0
    assert RunResult.model_validate_json((folder / "verdict.json").read_text()) == result
    assert [p.name for p in tmp_path.iterdir()] == [result.run.run_name]  # no staging left


def test_latency_plot_is_a_png(tmp_path: Path) -> None:
    import numpy as np

    from edgeproof.records import RawMeasurement
    from edgeproof.records.measurement import TargetMeasurements
    from edgeproof.report.plots import latency_plot

    outcome = _result().targets[0]
    rng = np.random.default_rng(0)
    raw = {
        o.candidate.name: RawMeasurement(
            candidate=o.candidate.name,
            latency_ms=rng.lognormal(0, 0.1, 100),
            paired_baseline_ms=np.array([]),
            block_size=25,
            throughput_batch=32,
            throughput_s=np.ones(3),
            peak_rss_mb=1.0,
            load_rss_mb=1.0,
            load_seconds=0.1,
            size_mb=1.0,
            threads=1,
        )
        for o in outcome.outcomes
    }
    measured = TargetMeasurements(raw=raw, outputs={}, errors={})
    path = latency_plot(outcome, measured, 1.2, tmp_path / "p.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = TargetMeasurements(raw={}, outputs={}, errors={})
    assert latency_plot(outcome, empty, 1.2, tmp_path / "q.png") is None
    assert not (tmp_path / "q.png").exists()


def test_summary_links_the_plots() -> None:
    result = _result()
    target = result.targets[0].model_copy(update={"plots": ("onnxruntime-cpu-latency.png",)})
    text = render_summary(result.model_copy(update={"targets": (target,)}))
    assert "![onnxruntime-cpu latency and speedup](onnxruntime-cpu-latency.png)" in text


def test_pareto_front_and_dominated_candidates_are_named() -> None:
    result = _result()
    target = result.targets[0].model_copy(
        update={"pareto_front": ("static-qdq",), "dominated_by": {"dynamic-int8": ("static-qdq",)}}
    )
    text = render_summary(result.model_copy(update={"targets": (target,)}))
    assert "better only beyond the CIs): `static-qdq`" in text
    assert "Dominated: `dynamic-int8` (by `static-qdq`)" in text


def test_recipe_text_is_one_short_line() -> None:
    olive = {
        "method": "olive",
        "passes": [{"type": "OnnxPeepholeOptimizer"}, {"type": "OnnxStaticQuantization"}],
        "olive_resolved": {"x": {"y": 1}},
    }
    assert recipe_text(olive) == "olive (passes=OnnxPeepholeOptimizer → OnnxStaticQuantization)"
    assert recipe_text({"method": "precision", "precision": "bf16"}) == "precision (precision=bf16)"


def test_gate_metrics_are_the_winners_figures(tmp_path: Path) -> None:
    path = write_gate_metrics(_result(), tmp_path / "metrics" / "gate.json")
    metrics = json.loads(path.read_text(encoding="utf-8"))
    assert (metrics["status"], metrics["exit_code"], metrics["passed"]) == ("pass", 0, 1)
    ort = metrics["targets"]["onnxruntime-cpu"]
    assert (ort["winner"], ort["figures_of"], ort["candidates"]) == ("static-qdq", "static-qdq", 3)
    assert ort["speedup"] == 3.6 and ort["latency_p50_ms"] == 0.76
    blocked = _result().targets[0].model_copy(update={"winner": None, "status": "blocked"})
    figures = gate_metrics(_result().model_copy(update={"targets": (blocked,)}))
    assert figures["targets"]["onnxruntime-cpu"]["figures_of"] == "static-qdq"  # fastest
    assert figures["targets"]["onnxruntime-cpu"]["winner"] == "none"


def test_the_preparation_steps_a_model_could_not_take_are_listed() -> None:
    result = _result()
    (target,) = result.targets
    baseline = target.outcomes[0]
    why = "symbolic shape inference: AssertionError (no message) at _infer_Concat:932"
    prepared = baseline.candidate.model_copy(update={"recipe": {"preprocess_skipped": [why]}})
    outcomes = (baseline.model_copy(update={"candidate": prepared}), *target.outcomes[1:])
    text = render_summary(
        result.model_copy(update={"targets": (target.model_copy(update={"outcomes": outcomes}),)})
    )
    assert "Preparation steps the model could not take (a safer one was used):" in text
    assert f"- `fp32`: skipped {why}" in text
    assert "could not take" not in render_summary(result)
