"""Models that are not image classifiers: a two-input int64 text encoder (``embedding``),
a regressor (``regression``), and clear errors for data that does not fit the model.

The encoder is a transformer-style block exported from PyTorch by the test itself (token
ids + attention mask, dynamic batch and sequence). Its run goes through the real CLI,
Prefect flow, measurement workers and MLflow store; the label-free fidelity gates (cosine
similarity, its low quantile, relative L2, k-NN agreement) decide.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgeproof.config import MeasureConfig
from edgeproof.data.dataset import load_dataset
from edgeproof.errors import InputError
from edgeproof.measure.harness import measure_target
from edgeproof.params.model import parse_params
from edgeproof.pipeline.judge import judge_task
from edgeproof.pipeline.resolve import resolve_inputs
from edgeproof.targets.onnxruntime_cpu.target import (
    OnnxRuntimeCpu,
    OnnxRuntimeTargetConfig,
    OrtRecipe,
)
from edgeproof.tasks.registry import task_kind
from edgeproof.tasks.tensor import TensorTruth
from tests.helpers import make_tiny_encoder, measure_job_for, run, token_data, write_npz

MEASURE = {"warmup_runs": 5, "max_warmup_runs": 60, "min_samples": 60, "max_samples": 60}
MEASURE |= {"block_size": 10, "throughput_batch": 8, "throughput_runs": 3, "max_seconds": 10}


def _encoder_project(folder: Path, min_cosine_mean: float) -> Path:
    make_tiny_encoder(folder / "models" / "encoder.onnx")
    for split, n, seed in (("eval", 160, 1), ("calibration", 48, 2)):
        write_npz(folder / "data" / f"{split}.npz", **token_data(n, 16, seed=seed))
    params = {
        "model": {"name": "tiny-encoder", "path": "models/encoder.onnx", "task": "embedding"},
        "data": {"eval": "data/eval.npz", "calibration": "data/calibration.npz"},
        "targets": {
            "onnxruntime-cpu": {
                "threads": 1,
                "recipes": [
                    {"name": "dynamic-int8", "method": "dynamic"},
                    {"name": "dynamic-int8-keep-softmax", "method": "dynamic"}
                    | {"exclude_op_types": ["Softmax"], "per_channel": True},
                ],
            }
        },
        "measure": MEASURE,
        "gates": {
            "latency": {"min_speedup": None},
            "fidelity": {"min_cosine_mean": min_cosine_mean, "knn_k": 5},
        },
    }
    (folder / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return folder


def test_two_input_int64_encoder_is_gated_on_embedding_fidelity(tmp_path: Path) -> None:
    """Token ids + mask in, embedding out, no labels: a strict cosine threshold fails the
    int8 candidates with the numbers shown; the per-output fidelity table is reported."""
    project = _encoder_project(tmp_path, min_cosine_mean=0.999999)
    done = run(["edgeproof", "run", "--params", "params.yaml"], project, timeout=900)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "quality gate: ❌ blocked" in done.stdout
    assert "fidelity.min_cosine_mean[embedding]: mean cosine 0.99" in done.stdout
    assert "< min 0.999999" in done.stdout  # cosines shown with six decimals
    assert "Fidelity to the baseline per output (label-free task):" in done.stdout

    verdict = json.loads(next((project / "reports").glob("*/verdict.json")).read_text())
    (target,) = verdict["targets"]
    by_name = {o["candidate"]["name"]: o for o in target["outcomes"]}
    assert set(by_name) == {"fp32", "dynamic-int8", "dynamic-int8-keep-softmax"}
    for name in ("dynamic-int8", "dynamic-int8-keep-softmax"):
        summary = by_name[name]["summary"]
        (fidelity,) = summary["outputs"]
        assert fidelity["output"] == "embedding"
        assert 0.9 < fidelity["cosine_mean"]["value"] < 0.999999
        assert fidelity["knn_agreement"] is not None and fidelity["cosine_low"] is not None
        assert summary["accuracy"] is None and summary["top1_agreement"] is None
        checks = {c["name"]: c["status"] for c in by_name[name]["verdict"]["checks"]}
        assert checks["fidelity.min_cosine_mean[embedding]"] == "fail"
        assert "fidelity.min_knn_agreement[embedding]" in checks
        assert "fidelity.min_top1_agreement" not in checks  # a classifier's check
    assert by_name["dynamic-int8-keep-softmax"]["candidate"]["recipe"]["exclude_op_types"] == [
        "Softmax"
    ]


def _regressor(path: Path) -> Path:
    """A 2-layer MLP, 8 features -> 2 targets, built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(0, 0.5, (8, 64)), rng.normal(0, 0.5, (64, 2))
    inits = [
        numpy_helper.from_array(w1.astype(np.float32), "w1"),
        numpy_helper.from_array(np.zeros(64, np.float32), "b1"),
        numpy_helper.from_array(w2.astype(np.float32), "w2"),
        numpy_helper.from_array(np.zeros(2, np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["features", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["prediction"]),
    ]
    graph = helper.make_graph(
        nodes,
        "regressor",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["batch", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_regression_is_gated_on_mae_against_targets(tmp_path: Path) -> None:
    model = _regressor(tmp_path / "regressor.onnx")
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (128, 8)).astype(np.float32)
    targets = rng.normal(0, 1, (128, 2)).astype(np.float32)
    eval_file = write_npz(tmp_path / "eval.npz", features=x, labels=targets)
    config = OnnxRuntimeTargetConfig(
        threads=1, recipes=[OrtRecipe(name="qdq", method="static", calibration_samples=32)]
    )
    target = OnnxRuntimeCpu(config)
    base = target.baseline(model, tmp_path)
    calibration = load_dataset(eval_file, label_kind="values")
    qdq = target.optimize("qdq", base, calibration, tmp_path)
    measure = MeasureConfig.model_validate(MEASURE)
    job = measure_job_for({"eval": eval_file}, tmp_path, "onnxruntime-cpu", config)
    measured = measure_target(base, [qdq], job, measure)
    params = parse_params(
        {
            "model": {"name": "reg", "path": "regressor.onnx", "task": "regression"},
            "data": {"eval": "eval.npz", "calibration": "eval.npz"},
            "targets": {"onnxruntime-cpu": config.model_dump(mode="json")},
            "measure": MEASURE,
            "gates": {
                "latency": {"min_speedup": None},
                "regression": {"max_mae_increase": 0.0, "max_mae_increase_rel": None},
            },
        }
    )
    labels = TensorTruth(load_dataset(eval_file, label_kind="values").labels)
    outcome = judge_task(
        task_kind(params.model.task), "onnxruntime-cpu", base, [qdq], [], measured, labels, params
    )
    summaries = {o.candidate.name: o for o in outcome.outcomes}
    fp32, cand = summaries["fp32"].summary, summaries["qdq"].summary
    assert fp32.mae is not None and fp32.mae.value > 0.5  # random targets: a real error
    assert fp32.mae_increase.value == 0.0  # the baseline against itself
    assert cand.mae_increase is not None and cand.mae_increase.value != 0.0
    check = next(c for c in summaries["qdq"].verdict.checks if c.name.startswith("regression"))
    assert check.name == "regression.max_mae_increase"
    assert check.message.startswith("MAE increase ")
    assert check.baseline == pytest.approx(fp32.mae.value)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"tokens": np.zeros((4, 16), np.int64), "attention_mask": np.ones((4, 16), np.int64)},
            r"eval data arrays \['attention_mask', 'tokens'\] do not match model inputs "
            r"\['attention_mask', 'input_ids'\]",
        ),
        (
            {"input_ids": np.zeros((4, 16), np.int32), "attention_mask": np.ones((4, 16))},
            r"eval data 'input_ids' has dtype int32, model expects int64",
        ),
        (
            {"input_ids": np.zeros((4,), np.int64), "attention_mask": np.ones((4,), np.int64)},
            r"eval data 'input_ids' has 1 dims \(4,\), model expects 2 \(\?, \?\)",
        ),
    ],
)
def test_input_name_dtype_and_rank_mismatches_are_clear_errors(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    project = _encoder_project(tmp_path, min_cosine_mean=0.99)
    write_npz(project / "data" / "eval.npz", **arrays)
    with pytest.raises(InputError, match=message):
        resolve_inputs(project / "params.yaml")
