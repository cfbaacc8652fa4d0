"""The ``openvino-cpu`` target with the real OpenVINO runtime and NNCF.

Each recipe end to end (convert, quantize, measure in worker subprocesses, score), the
precision each session really ran at, NNCF accuracy control reaching and missing its
max_drop (a miss fails the candidate with NNCF's shortfall as the reason), and the
missing-runtime path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeproof.data.dataset import load_dataset
from edgeproof.errors import InputError
from edgeproof.evaluate.scores import score_classifier
from edgeproof.measure.harness import measure_target
from edgeproof.params.model import parse_params
from edgeproof.pipeline.judge import judge_task
from edgeproof.targets.openvino_cpu.config import OpenVinoRecipe, OpenVinoTargetConfig
from edgeproof.targets.openvino_cpu.convert import conversion_failure, unconverted_ops
from edgeproof.targets.openvino_cpu.target import OpenVinoCpu
from edgeproof.tasks.registry import task_kind
from edgeproof.tasks.tensor import TensorTruth
from tests.helpers import (
    FAST_MEASURE,
    assert_timed_inside_the_call,
    availability_without,
    first_output,
    make_tiny_cnn,
    measure_job_for,
    write_npz,
)

CLASSIFICATION = task_kind("classification")

CONFIG = OpenVinoTargetConfig(
    threads=1,
    recipes=[
        OpenVinoRecipe(name="bf16", method="precision", precision="bf16"),
        OpenVinoRecipe(name="nncf-int8", method="nncf-ptq", calibration_samples=16),
    ],
)


def test_each_recipe_end_to_end(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    target = OpenVinoCpu(CONFIG)
    assert target.available().ok
    base = target.baseline(tiny_model, tmp_path)
    assert [f.suffix for f in base.files] == [".xml", ".bin"] and base.precision == "fp32"
    calibration = load_dataset(tiny_data["calibration"])
    bf16 = target.optimize("bf16", base, calibration, tmp_path)
    int8 = target.optimize("nncf-int8", base, calibration, tmp_path)
    assert int8.size_bytes() < base.size_bytes() / 2  # int8 weights
    assert bf16.recipe == {"method": "precision", "precision": "bf16"}

    job = measure_job_for(tiny_data, tmp_path, "openvino-cpu", CONFIG)
    got = measure_target(base, [bf16, int8], job, FAST_MEASURE)
    assert got.errors == {}
    sessions = {name: raw.environment["session"] for name, raw in got.raw.items()}
    assert sessions["fp32"]["inference_precision"] == "f32"  # not the CPU's bf16 default
    assert sessions["nncf-int8"]["precision"] == "int8"
    assert {s["runtime"] for s in sessions.values()} == {"openvino"}
    base_logits = first_output(got.outputs["fp32"])
    labels = load_dataset(tiny_data["eval"]).labels
    for name in ("bf16", "nncf-int8"):
        scores = score_classifier(name, first_output(got.outputs[name]), base_logits, labels)
        assert scores.agree.mean() > 0.8  # a random tiny CNN: near-ties may flip
    session = target.open_session(int8, threads=1)
    evald = load_dataset(tiny_data["eval"])
    assert_timed_inside_the_call(session, evald.batch(0, 1), "latency")
    # the dynamic batch axis is pinned to 1 (as benchmark_app -b 1); a batch runs per item
    assert session.info["batch_pinned_to_1"] == ["input"]
    assert session.inputs[0].shape == (None, 1, 16, 16)
    batch = session.run(evald.batch(0, 5))[0]
    singles = np.concatenate([session.run(evald.batch(i, 1))[0] for i in range(5)])
    assert batch.shape == (5, 10)
    np.testing.assert_array_equal(batch, singles)


def _fragile_case(folder: Path, outlier_scale: float) -> tuple[Path, Path]:
    """A tiny CNN and labelled calibration data on which int8 visibly changes predictions.

    Labels are the FP32 model's own predictions (FP32 top-1 = 100%); int8 flips a few near
    ties (3 of 64), and two items scaled up by ``outlier_scale`` stretch the activation
    ranges so that reverting one layer to float is no longer enough.
    """
    model = make_tiny_cnn(folder / "fragile.onnx")
    x = np.random.default_rng(0).random((64, 1, 16, 16), dtype=np.float32)
    x[:2] *= outlier_scale
    session = ort.InferenceSession(str(model))
    labels = session.run(None, {session.get_inputs()[0].name: x})[0].argmax(axis=1)
    data = write_npz(folder / "calibration.npz", input=x, labels=labels.astype(np.int64))
    return model, data


def _accuracy_control(max_drop: float, max_iterations: int | None) -> OpenVinoTargetConfig:
    recipe = OpenVinoRecipe(
        name="ac",
        method="nncf-accuracy-control",
        max_drop=max_drop,
        max_iterations=max_iterations,
        calibration_samples=64,
    )
    return OpenVinoTargetConfig(threads=1, recipes=[recipe])


def test_accuracy_control_reaches_max_drop_by_reverting_layers(tmp_path: Path) -> None:
    model, data = _fragile_case(tmp_path, outlier_scale=1.0)
    target = OpenVinoCpu(_accuracy_control(max_drop=0.0, max_iterations=None))
    base = target.baseline(model, tmp_path)
    got = target.optimize("ac", base, load_dataset(data), tmp_path)
    assert got.failure is None and got.precision == "int8"
    assert got.recipe["max_drop"] == 0.0 and got.recipe["method"] == "nncf-accuracy-control"


def test_accuracy_control_that_misses_max_drop_fails_the_candidate(
    tmp_path: Path, tiny_data: dict[str, Path]
) -> None:
    """NNCF only logs the miss and returns a model: edgeproof's verdict fails it, saying why."""
    model, data = _fragile_case(tmp_path, outlier_scale=300.0)
    config = _accuracy_control(max_drop=0.0, max_iterations=1)  # one revert is not enough
    target = OpenVinoCpu(config)
    base = target.baseline(model, tmp_path)
    got = target.optimize("ac", base, load_dataset(data), tmp_path)
    assert got.failure is not None
    assert "did not reach max_drop 0.00 pt (NNCF reports" in got.failure
    assert "top-1 100.00% ->" in got.failure

    job = measure_job_for(tiny_data, tmp_path, "openvino-cpu", config)
    measure = FAST_MEASURE.model_copy(update={"min_samples": 60, "max_samples": 60})  # p90 CI
    measured = measure_target(base, [got], job, measure)
    params = parse_params(_params_for(config) | {"measure": measure.model_dump(mode="json")})
    labels = load_dataset(tiny_data["eval"]).labels
    outcome = judge_task(
        CLASSIFICATION, "openvino-cpu", base, [got], [], measured, TensorTruth(labels), params
    )
    verdict = next(o.verdict for o in outcome.outcomes if o.candidate.name == "ac")
    assert verdict.status == "fail"
    assert verdict.checks[0].name == "optimizer" and verdict.checks[0].status == "fail"
    assert verdict.reasons[0] == f"optimizer: {got.failure}"
    assert outcome.winner is None


def test_accuracy_control_without_labels_is_a_clear_input_error(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_npz(tmp_path / "unlabelled.npz", input=np.zeros((4, 1, 16, 16), np.float32))
    target = OpenVinoCpu(_accuracy_control(max_drop=0.01, max_iterations=None))
    base = target.baseline(tiny_model, tmp_path)
    with pytest.raises(InputError, match="needs labels in the calibration data"):
        target.optimize("ac", base, load_dataset(data), tmp_path)


def _params_for(config: OpenVinoTargetConfig) -> dict:
    """Minimal params with only ``openvino-cpu`` enabled, for judging."""
    return {
        "model": {"name": "tiny", "path": "tiny.onnx"},
        "data": {"eval": "eval.npz", "calibration": "calibration.npz"},
        "targets": {"openvino-cpu": config.model_dump(mode="json")},
        "gates": {"latency": {"min_speedup": None}},
    }


def test_a_model_openvino_cannot_read_is_a_clear_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a valid ONNX file"):
        OpenVinoCpu(CONFIG).baseline(bad, tmp_path)


def test_without_openvino_the_target_says_why(tmp_path: Path) -> None:
    """A runner without the [openvino] extra: unavailable with a reason, nothing raised."""
    shown = availability_without("openvino", "openvino-cpu", tmp_path)
    assert "ok=False" in shown and "openvino is not installed" in shown


def _linear_classifier(path: Path) -> Path:
    """An ai.onnx.ml ``LinearClassifier`` (label int64 [N], probabilities float [N, 3]):
    what skl2onnx exports for a linear model with ``zipmap=False``; tensors only."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node(
        "LinearClassifier",
        ["x"],
        ["label", "probabilities"],
        domain="ai.onnx.ml",
        coefficients=[0.1] * 12,
        intercepts=[0.0] * 3,
        classlabels_ints=[0, 1, 2],
        post_transform="SOFTMAX",
    )
    graph = helper.make_graph(
        [node],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
        ],
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_an_op_openvino_cannot_convert_is_named(tmp_path: Path) -> None:
    """Not a bare ``Check 'false' failed at ...``: the op and its domain, in one line."""
    model = _linear_classifier(tmp_path / "linear.onnx")
    target = OpenVinoCpu(OpenVinoTargetConfig())
    with pytest.raises(InputError) as raised:
        target.baseline(model, tmp_path / "work")
    message = str(raised.value)
    assert "\n" not in message and "Check 'false'" not in message, message
    assert "ops ai.onnx.ml.LinearClassifier did not convert" in message, message
    assert unconverted_ops(model) == ["ai.onnx.ml.LinearClassifier"]
    bare = RuntimeError("Check 'false' failed at src/frontends/common/src/frontend.cpp:47:\n")
    assert "ai.onnx.ml.LinearClassifier" in conversion_failure(bare, model)
