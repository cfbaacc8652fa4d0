"""The ``tflite-cpu`` target with the real converter (onnx2tf + TensorFlow) and LiteRT.

Each recipe end to end (convert in the toolchain subprocess, measure in worker
subprocesses, compare with the ONNX model run by onnxruntime), full-int8 really int8 and
smaller, a static-batch RGB model (onnx2tf would download sample images for it) with a
channel-last output mapped back to NCHW, conversion failures as one-line errors, a hung
converter killed at its deadline, and the missing-runtime / missing-converter paths.
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
from edgeproof.records import Candidate
from edgeproof.targets.litert.toolchain import ConversionError
from edgeproof.targets.tflite_cpu.target import TfliteCpu, TfliteRecipe, TfliteTargetConfig
from tests.helpers import (
    FAST_MEASURE,
    assert_timed_inside_the_call,
    availability_without,
    first_output,
    measure_job_for,
)

CONFIG = TfliteTargetConfig(
    threads=1,
    recipes=[
        TfliteRecipe(name="dynamic-range", method="dynamic-range"),
        TfliteRecipe(name="full-int8", method="full-int8", calibration_samples=16),
    ],
)


@pytest.fixture(scope="module")
def built(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Candidate]:
    """The baseline and both recipes of the tiny CNN, converted once for this module."""
    target, work = TfliteCpu(CONFIG), tmp_path_factory.mktemp("tflite")
    base = target.baseline(tiny_model, work)
    calibration = load_dataset(tiny_data["calibration"])
    return {"fp32": base} | {
        name: target.optimize(name, base, calibration, work)
        for name in ("dynamic-range", "full-int8")
    }


def _onnx_logits(model: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(model)).run(None, {"input": x})[0]


def test_each_recipe_end_to_end(
    built: dict[str, Candidate], tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    assert TfliteCpu(CONFIG).available().ok
    base = built["fp32"]
    assert [f.name for f in base.files] == ["model.tflite", "io.json"]
    assert base.recipe["method"] == "fp32" and base.recipe["onnx2tf_version"] == "1.28.8"
    assert built["full-int8"].recipe["calibration_samples"] == 16

    job = measure_job_for(tiny_data, tmp_path, "tflite-cpu", CONFIG)
    got = measure_target(base, [built["dynamic-range"], built["full-int8"]], job, FAST_MEASURE)
    assert got.errors == {}
    sessions = {name: raw.environment["session"] for name, raw in got.raw.items()}
    assert {s["runtime"] for s in sessions.values()} == {"litert"}
    assert {s["batching"] for s in sessions.values()} == {"resize"}  # dynamic batch kept
    assert sessions["full-int8"]["input_types"] == {"input": "int8"}
    assert sessions["dynamic-range"]["input_types"] == {"input": "float32"}

    # the fp32 TFLite model computes what the ONNX model computes (NCHW in, ONNX names out)
    eval_data = load_dataset(tiny_data["eval"])
    onnx = _onnx_logits(tiny_model, eval_data.inputs["input"])
    fp32 = first_output(got.outputs["fp32"])
    assert np.abs(fp32 - onnx).max() < 1e-4
    for name in ("dynamic-range", "full-int8"):
        logits = first_output(got.outputs[name])
        scores = score_classifier(name, logits, onnx, eval_data.labels)
        assert scores.agree.mean() > 0.8  # a random tiny CNN: near-ties may flip
        cosine = (
            (logits * onnx).sum(1) / np.linalg.norm(logits, axis=1) / np.linalg.norm(onnx, axis=1)
        )
        assert cosine.min() > 0.98


def test_full_int8_takes_int8_and_is_about_4x_smaller(built: dict[str, Candidate]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    int8 = Interpreter(model_path=str(built["full-int8"].model_file))
    [tensor] = int8.get_input_details()
    assert tensor["dtype"] == np.int8 and tensor["quantization"][0] > 0
    assert int8.get_output_details()[0]["dtype"] == np.int8
    fp32_size = built["fp32"].model_file.stat().st_size
    assert fp32_size / built["full-int8"].model_file.stat().st_size > 3.3
    assert fp32_size / built["dynamic-range"].model_file.stat().st_size > 3.3


def test_session_maps_layout_and_batches(built: dict[str, Candidate], tiny_model: Path) -> None:
    session = TfliteCpu(CONFIG).open_session(built["full-int8"], threads=1)
    assert [(i.name, i.dtype, i.shape) for i in session.inputs] == [
        ("input", np.dtype(np.float32), (None, 1, 16, 16))
    ]
    assert session.output_names == ["logits"]
    x = np.random.default_rng(1).random((5, 1, 16, 16), dtype=np.float32)
    batch = session.run({"input": x})[0]
    singles = np.concatenate([session.run({"input": x[i : i + 1]})[0] for i in range(5)])
    assert batch.dtype == np.float32 and batch.shape == (5, 10)
    np.testing.assert_array_equal(batch, singles)
    assert_timed_inside_the_call(session, {"input": x[:1]}, "Interpreter.invoke")
    with pytest.raises(ValueError, match="one item"):
        session.prepare({"input": x})


def _rgb_static_model(path: Path) -> Path:
    """Conv on a 1x3x8x8 (static batch 1) input; outputs a (1, 8) vector and the NCHW map."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["image.1", "w"], ["features"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["vector"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "rgb",
        [helper.make_tensor_value_info("image.1", TensorProto.FLOAT, [1, 3, 8, 8])],
        [
            helper.make_tensor_value_info("vector", TensorProto.FLOAT, [1, 8]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 8, 8, 8]),
        ],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_static_batch_rgb_model_converts_offline_and_maps_outputs_back(tmp_path: Path) -> None:
    """onnx2tf would fetch sample images from GitHub for this input (4-D, batch 1, 3
    channels); offline that kills the conversion unless its local sample file is there."""
    model = _rgb_static_model(tmp_path / "rgb.onnx")
    target = TfliteCpu(TfliteTargetConfig(threads=1))
    base = target.baseline(model, tmp_path)
    session = target.open_session(base, threads=1)
    assert session.output_names == ["vector", "features"]  # ONNX names and order
    assert session.info["batching"] == "per-item"  # static batch 1 under XNNPACK
    x = np.random.default_rng(2).random((3, 3, 8, 8), dtype=np.float32)
    got = session.run({"image.1": x})
    onnx = ort.InferenceSession(str(model))
    want = [
        np.concatenate(c)
        for c in zip(*(onnx.run(None, {"image.1": x[i : i + 1]}) for i in range(3)), strict=True)
    ]
    assert got[1].shape == (3, 8, 8, 8)  # NCHW again
    for g, w in zip(got, want, strict=True):
        assert np.abs(g - w).max() < 1e-4


def _custom_op_model(path: Path) -> Path:
    """A valid ONNX model (the checker accepts it) with an op onnx2tf does not know."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Frobnicate", ["r"], ["y"], domain="com.example"),
    ]
    graph = helper.make_graph(
        nodes,
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_a_model_onnx2tf_cannot_convert_is_a_one_line_error(tmp_path: Path) -> None:
    model = _custom_op_model(tmp_path / "custom.onnx")
    with pytest.raises(ConversionError) as caught:
        TfliteCpu(CONFIG).baseline(model, tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message
    assert message.startswith("tflite-cpu fp32 conversion of custom.onnx: failed during onnx2tf")
    assert message.endswith(
        "onnx2tf cannot convert the model: Frobnicate OP is not yet implemented."
    )
    assert isinstance(caught.value, InputError)


def test_a_corrupt_onnx_file_is_a_clear_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a valid ONNX file"):
        TfliteCpu(CONFIG).baseline(bad, tmp_path)


def test_a_converter_past_its_deadline_is_killed(tiny_model: Path, tmp_path: Path) -> None:
    target = TfliteCpu(TfliteTargetConfig(convert_timeout_seconds=1.5))
    with pytest.raises(
        ConversionError, match=r"hung during import tensorflow for more than 1\.5 s"
    ):
        target.baseline(tiny_model, tmp_path)


def test_without_the_converter_in_the_toolchain_python_the_target_says_why() -> None:
    """A toolchain interpreter without TensorFlow (the system Python here)."""
    system = Path("/usr/bin/python3")
    assert system.exists()
    got = TfliteCpu(TfliteTargetConfig(toolchain_python=system)).available()
    assert not got.ok
    assert f"the TFLite converter is not installed in {system}" in got.reason
    assert "tensorflow" in got.reason and "onnx2tf" in got.reason


def test_without_litert_the_target_says_why(tmp_path: Path) -> None:
    shown = availability_without("ai_edge_litert", "tflite-cpu", tmp_path)
    assert "ok=False" in shown and "ai-edge-litert is not installed" in shown
