"""The measurement harness with real worker subprocesses and the real runtime."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from edgeproof.config import MeasureConfig
from edgeproof.data.dataset import load_dataset
from edgeproof.evaluate.scores import load_outputs
from edgeproof.measure.environment import busy_reason
from edgeproof.measure.harness import measure_head_to_head, measure_target, precise_enough
from edgeproof.records import Candidate
from edgeproof.targets.onnxruntime_cpu.target import OnnxRuntimeCpu
from tests.helpers import (
    FAST_MEASURE,
    TINY_ORT_CONFIG,
    first_output,
    make_tiny_cnn,
    measure_job_for,
)


def test_interleaved_measurement_of_baseline_and_candidate(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    target = OnnxRuntimeCpu(TINY_ORT_CONFIG)
    base = target.baseline(tiny_model, tmp_path)
    qdq = target.optimize("qdq", base, load_dataset(tiny_data["calibration"]), tmp_path)
    progress: list[str] = []
    got = measure_target(
        base, [qdq], measure_job_for(tiny_data, tmp_path), FAST_MEASURE, progress.append
    )

    assert got.errors == {}
    assert set(got.raw) == {"fp32", "qdq"}
    cand, baseline = got.raw["qdq"], got.raw["fp32"]
    assert len(cand.latency_ms) == 40 and len(cand.paired_baseline_ms) == 40
    assert (cand.latency_ms > 0).all() and (cand.paired_baseline_ms > 0).all()
    assert len(baseline.latency_ms) == 40 and len(baseline.paired_baseline_ms) == 0
    assert len(cand.throughput_s) == 3 and cand.throughput_batch == 8
    assert cand.peak_rss_mb > 10 and cand.threads == 1
    assert cand.size_mb == qdq.size_bytes() / 1e6
    assert cand.environment["session"]["precision"] == "int8"
    assert "cpu_count" in cand.environment
    for name in ("fp32", "qdq"):
        outputs = first_output(got.outputs[name])
        assert outputs.shape == (64, 10) and outputs.dtype == np.float32
    assert any("qdq" in line for line in progress)
    warmup = cand.environment["warmup"]
    assert warmup["runs"] >= 5 and isinstance(warmup["stable"], bool)
    assert cand.environment["stopped"] in ("precision reached", "max_samples reached")


def test_sampling_stops_at_the_target_precision_or_the_cap(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    target = OnnxRuntimeCpu(TINY_ORT_CONFIG)
    base = target.baseline(tiny_model, tmp_path)
    twin = base.model_copy(update={"name": "twin", "is_baseline": False})
    loose = FAST_MEASURE.model_copy(update={"max_samples": 400, "target_rel_halfwidth": 0.9})
    got = measure_target(base, [twin], measure_job_for(tiny_data, tmp_path), loose).raw["twin"]
    assert got.environment["stopped"] == "precision reached"
    assert len(got.latency_ms) == 40  # min_samples: 4 blocks of 10

    strict = FAST_MEASURE.model_copy(update={"max_samples": 60, "target_rel_halfwidth": 1e-9})
    got = measure_target(base, [twin], measure_job_for(tiny_data, tmp_path), strict).raw["twin"]
    assert got.environment["stopped"] == "max_samples reached"
    assert len(got.latency_ms) == 60 == len(got.paired_baseline_ms)


def test_a_clear_speed_failure_stops_at_the_first_look(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    """A twin of the baseline (speedup ~1x) against a 3x gate: decided at an early look
    (4 or 8 block pairs on a quiet or busy machine) by the repeated CI; against a 0.2x gate
    nothing stops it before its budget."""
    target = OnnxRuntimeCpu(TINY_ORT_CONFIG)
    base = target.baseline(tiny_model, tmp_path)
    twin = base.model_copy(update={"name": "twin", "is_baseline": False})
    budget = FAST_MEASURE.model_copy(
        update={"max_samples": 200, "target_rel_halfwidth": 1e-9, "early_fail_eval_items": 5}
    )
    job = measure_job_for(tiny_data, tmp_path)
    failing = measure_target(base, [twin], replace(job, stop_below_speedup=3.0), budget)
    got = failing.raw["twin"]
    assert got.environment["stopped"].startswith("speed gate failed early: look ")
    assert len(got.latency_ms) in (40, 80) and len(got.paired_baseline_ms) == len(got.latency_ms)
    # a clear failure is not evaluated in full: two throughput runs, the first 5 eval items
    assert len(got.throughput_s) == 2
    items = {name: len(load_outputs(path)["logits"]) for name, path in failing.outputs.items()}
    assert items["twin"] == 5 and items[base.name] == len(np.load(tiny_data["eval"])["labels"])
    passing = measure_target(base, [twin], replace(job, stop_below_speedup=0.2), budget)
    assert passing.raw["twin"].environment["stopped"] == "max_samples reached"
    assert len(passing.raw["twin"].latency_ms) == 200
    assert len(passing.raw["twin"].throughput_s) == budget.throughput_runs
    assert len(load_outputs(passing.outputs["twin"])["logits"]) == items[base.name]


def test_a_clearly_unfaithful_classifier_is_timed_for_min_samples_only(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    """Another network of the same shape (other weights: as fast, top-1 agreement ~10%)
    fails the agreement look on the first eval items and is timed for min_samples only,
    scored on those items; the baseline's twin (100% agreement) runs to its budget."""
    target = OnnxRuntimeCpu(TINY_ORT_CONFIG)
    base = target.baseline(tiny_model, tmp_path / "base")
    other = make_tiny_cnn(tmp_path / "other.onnx", seed=7)
    wrong = target.baseline(other, tmp_path / "wrong").model_copy(
        update={"name": "wrong", "is_baseline": False}
    )
    twin = base.model_copy(update={"name": "twin", "is_baseline": False})
    budget = FAST_MEASURE.model_copy(
        update={"max_samples": 200, "target_rel_halfwidth": 1e-9, "early_fail_eval_items": 20}
    )
    job = replace(measure_job_for(tiny_data, tmp_path), stop_below_agreement=0.9)
    got = measure_target(base, [wrong, twin], job, budget)
    stopped = got.raw["wrong"].environment["stopped"]
    assert stopped.startswith("top-1 agreement gate failed early: ")
    assert "on the first 20 eval items, below 90.0%" in stopped
    assert len(got.raw["wrong"].latency_ms) == 40  # min_samples: 4 blocks of 10
    assert len(first_output(got.outputs["wrong"])) == 20
    assert got.raw["twin"].environment["stopped"] == "max_samples reached"
    assert len(got.raw["twin"].latency_ms) == 200
    assert not list(job.outputs_dir.glob(".*.head.npz"))  # the look's files are gone


def test_finalists_are_timed_head_to_head_until_their_ratio_is_precise(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    """Two workers, blocks interleaved: paired blocks of equal count; a loose precision
    target stops once precise (at min_samples on a quiet machine, a block or two later on a
    loaded one), an impossible one at the cap."""
    target = OnnxRuntimeCpu(TINY_ORT_CONFIG)
    base = target.baseline(tiny_model, tmp_path)
    twin = base.model_copy(update={"name": "twin", "is_baseline": False})
    job = measure_job_for(tiny_data, tmp_path)
    progress: list[str] = []
    loose = FAST_MEASURE.model_copy(update={"max_samples": 200, "target_rel_halfwidth": 0.9})
    got = measure_head_to_head(base, twin, job, loose, progress.append)
    assert (got.a, got.b, got.stopped) == ("fp32", "twin", "precision reached")
    assert len(got.a_ms) == len(got.b_ms) and got.block_size == 10
    assert len(got.a_ms) % 10 == 0 and 40 <= len(got.a_ms) < 200
    assert (got.a_ms > 0).all() and (got.b_ms > 0).all()
    assert progress == [f"{base.target}: timing fp32 against twin head to head"]
    strict = FAST_MEASURE.model_copy(update={"max_samples": 60, "target_rel_halfwidth": 1e-9})
    capped = measure_head_to_head(base, twin, job, strict)
    assert capped.stopped == "max_samples reached" and len(capped.a_ms) == 60


def test_precision_rule_needs_every_interval_narrow() -> None:
    rng = np.random.default_rng(0)
    steady = list(rng.normal(1.0, 0.001, 200))
    noisy = list(rng.lognormal(0.0, 0.8, 200))
    cfg = MeasureConfig(block_size=25, target_rel_halfwidth=0.02)
    assert precise_enough(steady, steady[::-1], cfg)
    assert not precise_enough(steady, noisy, cfg)
    assert not precise_enough(steady[:10], steady[:10], cfg)  # too few for an interval


def test_busy_machine_guard() -> None:
    assert busy_reason({"loadavg_1m": 3.5}, 1.5) == (
        "machine busy: 1-minute load average 3.5 > max_load_average 1.5"
    )
    assert busy_reason({"loadavg_1m": 0.5}, 1.5) is None
    assert busy_reason({}, 1.5) is None and busy_reason({"loadavg_1m": 9.0}, None) is None


def test_a_broken_candidate_fails_alone(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    target = OnnxRuntimeCpu(TINY_ORT_CONFIG)
    base = target.baseline(tiny_model, tmp_path)
    broken_file = tmp_path / "broken.onnx"
    broken_file.write_bytes(b"garbage")
    broken = Candidate(
        target="onnxruntime-cpu", name="broken", files=(broken_file,), recipe={}, precision="int8"
    )
    qdq = target.optimize("qdq", base, load_dataset(tiny_data["calibration"]), tmp_path)
    got = measure_target(base, [broken, qdq], measure_job_for(tiny_data, tmp_path), FAST_MEASURE)

    assert set(got.raw) == {"fp32", "qdq"}
    assert "broken" in got.errors and "load failed" in got.errors["broken"]


def test_energy_is_read_over_the_throughput_window_where_a_counter_exists(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    """RAPL read in the worker from a powercap tree (a fixture here: no counter on this
    machine, so the energy is 0 but the path to the device runs); none: the reason."""
    package = tmp_path / "powercap" / "intel-rapl:0"
    package.mkdir(parents=True)
    for name, value in (
        ("name", "package-0"),
        ("energy_uj", "5000"),
        ("max_energy_range_uj", "1000000"),
    ):
        (package / name).write_text(value + "\n")
    target = OnnxRuntimeCpu(TINY_ORT_CONFIG)
    base = target.baseline(tiny_model, tmp_path)
    monkeypatch.setenv("EDGEPROOF_POWERCAP", str(package.parent))
    got = measure_target(base, [], measure_job_for(tiny_data, tmp_path), FAST_MEASURE)
    energy = got.raw["fp32"].environment["energy"]
    assert energy["source"] == "rapl:package-0" and energy["mj_per_inference"] == 0.0
    assert energy["inferences"] == FAST_MEASURE.throughput_batch * FAST_MEASURE.throughput_runs
    assert energy["window_s"] > 0

    monkeypatch.setenv("EDGEPROOF_POWERCAP", str(tmp_path / "absent"))
    got = measure_target(base, [], measure_job_for(tiny_data, tmp_path), FAST_MEASURE)
    assert "no powercap" in got.raw["fp32"].environment["energy"]["none"]
