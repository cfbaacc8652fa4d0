"""Builders for test inputs: real ONNX models made with onnx.helper and .npz data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_tiny_cnn(path: Path, seed: int = 0, size: int = 16, classes: int = 10) -> Path:
    """Conv(8, 3x3) -> Relu -> Flatten -> Gemm(classes); input "input" N x 1 x size x size."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 0.3, (8, 1, 3, 3)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, 8).astype(np.float32)
    fc_w = rng.normal(0, 0.05, (8 * size * size, classes)).astype(np.float32)
    fc_b = np.zeros(classes, np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [
            numpy_helper.from_array(conv_w, "conv_w"),
            numpy_helper.from_array(conv_b, "conv_b"),
            numpy_helper.from_array(fc_w, "fc_w"),
            numpy_helper.from_array(fc_b, "fc_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def estimate(value: float, half: float = 0.0):
    from edgeproof.records import Estimate

    return Estimate(value=value, low=value - half, high=value + half, confidence=0.95)


def summary(name: str, *, baseline: bool = False, median: float = 1.0, speedup: float | None = 2.0):
    """A hand-made CandidateSummary with plausible numbers."""
    from edgeproof.records import CandidateSummary

    return CandidateSummary(
        candidate=name,
        precision="fp32" if baseline else "int8",
        is_baseline=baseline,
        n_eval_items=360,
        accuracy=estimate(0.99, 0.01),
        accuracy_drop=estimate(0.0, 0.005),
        top1_agreement=estimate(1.0 if baseline else 0.995, 0.005),
        mean_kl=estimate(0.0 if baseline else 0.002, 0.001),
        max_abs_logit_error=0.0 if baseline else 1.5,
        latency_samples=300,
        median_ms=estimate(median, 0.02),
        p90_ms=estimate(median * 1.1, 0.03),
        p99_ms=None,
        speedup=None if baseline else estimate(speedup or 1.0, 0.1),
        throughput_ips=estimate(1000.0 / median, 10.0),
        peak_rss_mb=150.0,
        load_rss_mb=20.0,
        load_seconds=0.05,
        size_mb=7.8 if baseline else 2.0,
        threads=2,
    )


def run_info(**overrides: object):
    """A RunInfo of a run named ``digits-cnn-20261125T000000Z``; ``overrides`` replace fields."""
    from edgeproof.records import Lineage, RunInfo

    fields: dict = {
        "run_name": "digits-cnn-20261125T000000Z",
        "model": "digits-cnn",
        "mlflow_run_id": "abc123",
        "mlflow_experiment_id": "1",
        "tracking_uri": "sqlite:///mlflow.db",
        "started_at": "2026-11-25T00:00:00+00:00",
        "trigger": "cli",
        "lineage": Lineage(
            git_sha="0123456789abcdef",
            git_branch="main",
            git_dirty=True,
            params_sha256="0" * 64,
            dvc_md5={},
        ),
    }
    return RunInfo(**(fields | overrides))
