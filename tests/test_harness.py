"""The measurement harness with real worker subprocesses and the real runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.config import MeasureConfig, OnnxRuntimeTargetConfig, OrtRecipe
from edgeproof.data import load_dataset
from edgeproof.measure.harness import MeasureJob, measure_target
from edgeproof.records import Candidate
from edgeproof.targets.onnxruntime_cpu import OnnxRuntimeCpu

CONFIG = OnnxRuntimeTargetConfig(
    threads=1, recipes=[OrtRecipe(name="qdq", method="static", calibration_samples=16)]
)
MEASURE = MeasureConfig(
    warmup_runs=5, latency_samples=40, block_size=10, throughput_batch=8, throughput_runs=3
)


def _job(tiny_data: dict[str, Path], tmp_path: Path) -> MeasureJob:
    return MeasureJob(
        target="onnxruntime-cpu",
        target_config=CONFIG.model_dump(mode="json"),
        eval_data=tiny_data["eval"],
        labels_key="labels",
        threads=1,
        outputs_dir=tmp_path / "outputs",
    )


def test_interleaved_measurement_of_baseline_and_candidate(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    target = OnnxRuntimeCpu(CONFIG)
    base = target.baseline(tiny_model, tmp_path)
    qdq = target.optimize("qdq", base, load_dataset(tiny_data["calibration"]), tmp_path)
    progress: list[str] = []
    got = measure_target(base, [qdq], _job(tiny_data, tmp_path), MEASURE, progress.append)

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
        outputs = np.load(got.outputs[name])
        assert outputs.shape == (64, 10) and outputs.dtype == np.float32
    assert any("qdq" in line for line in progress)


def test_a_broken_candidate_fails_alone(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    target = OnnxRuntimeCpu(CONFIG)
    base = target.baseline(tiny_model, tmp_path)
    broken_file = tmp_path / "broken.onnx"
    broken_file.write_bytes(b"garbage")
    broken = Candidate(
        target="onnxruntime-cpu", name="broken", files=(broken_file,), recipe={}, precision="int8"
    )
    qdq = target.optimize("qdq", base, load_dataset(tiny_data["calibration"]), tmp_path)
    got = measure_target(base, [broken, qdq], _job(tiny_data, tmp_path), MEASURE)

    assert set(got.raw) == {"fp32", "qdq"}
    assert "broken" in got.errors and "load failed" in got.errors["broken"]
