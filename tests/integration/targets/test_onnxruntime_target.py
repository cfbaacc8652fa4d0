"""The onnxruntime-cpu target on a real (tiny) ONNX model with the real runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeproof.data.dataset import Dataset, load_dataset
from edgeproof.errors import InputError
from edgeproof.targets.onnxruntime_cpu.target import (
    OnnxRuntimeCpu,
    OnnxRuntimeTargetConfig,
    OrtRecipe,
    opset_for_per_channel,
)
from tests.helpers import assert_timed_inside_the_call, make_tiny_cnn


def _target() -> OnnxRuntimeCpu:
    return OnnxRuntimeCpu(
        OnnxRuntimeTargetConfig(
            recipes=[
                OrtRecipe(name="dyn", method="dynamic"),
                OrtRecipe(name="qdq", method="static", calibration_samples=16),
                OrtRecipe(
                    name="qdq-pc", method="static", per_channel=True, calibrate_method="entropy"
                ),
            ]
        )
    )


def _op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_baseline_and_recipes_produce_runnable_models(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    target = _target()
    assert target.available().ok
    calib = load_dataset(tiny_data["calibration"])
    evald = load_dataset(tiny_data["eval"])
    base = target.baseline(tiny_model, tmp_path)
    assert base.is_baseline and base.precision == "fp32"
    assert base.model_file.parent == tmp_path / "fp32"
    ref = target.open_session(base, threads=1).run(evald.batch(0, 8))[0]
    assert ref.shape == (8, 10)

    dyn = target.optimize("dyn", base, calib, tmp_path)
    assert "DynamicQuantizeLinear" in _op_types(dyn.model_file)
    assert dyn.recipe["method"] == "dynamic" and "calibrate_method" not in dyn.recipe

    qdq = target.optimize("qdq", base, calib, tmp_path)
    assert {"QuantizeLinear", "DequantizeLinear"} <= _op_types(qdq.model_file)
    assert qdq.recipe["calibrate_method"] == "minmax"
    assert qdq.size_bytes() < base.size_bytes()

    pc = target.optimize("qdq-pc", base, calib, tmp_path)
    for cand in (dyn, qdq, pc):
        session = target.open_session(cand, threads=1)
        assert session.info["precision"] == "int8" and session.info["threads"] == 1
        out = session.run(evald.batch(0, 8))[0]
        assert out.shape == ref.shape
        # int8 stays close to fp32 on this small well-conditioned model
        assert np.mean(out.argmax(1) == ref.argmax(1)) >= 0.75
        assert_timed_inside_the_call(session, evald.batch(0, 1), "InferenceSession.run")


def test_corrupt_model_is_a_clear_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not a protobuf at all")
    with pytest.raises(InputError, match="not a valid ONNX file"):
        _target().baseline(bad, tmp_path / "work")


def _calibration(tmp_path: Path) -> Dataset:
    images = np.random.default_rng(0).normal(size=(16, 1, 16, 16)).astype(np.float32)
    return Dataset({"input": images}, None, tmp_path / "calibration.npz")


def test_a_per_channel_static_recipe_upgrades_an_opset_11_graph(tmp_path: Path) -> None:
    """ORT writes DequantizeLinear with ``axis`` (opset 13) whatever the opset: on an
    opset-11 graph the result would not load. A copy upgraded to 13 is quantized instead,
    and the recipe says so; the other recipes are left alone."""
    import onnxruntime as ort

    model = make_tiny_cnn(tmp_path / "m.onnx", opset=11)
    recipes = [
        {"name": "pc", "method": "static", "per_channel": True},
        {"name": "pt", "method": "static", "per_channel": False},
    ]
    target = OnnxRuntimeCpu(OnnxRuntimeTargetConfig.model_validate({"recipes": recipes}))
    baseline = target.baseline(model, tmp_path / "work")
    calibration = _calibration(tmp_path)
    per_channel = target.optimize("pc", baseline, calibration, tmp_path / "work")
    assert per_channel.recipe["opset_upgraded"] == [11, 13]
    assert [p.name for p in per_channel.model_file.parent.iterdir()] == ["model.onnx"]
    ort.InferenceSession(str(per_channel.model_file), providers=["CPUExecutionProvider"])
    per_tensor = target.optimize("pt", baseline, calibration, tmp_path / "work")
    assert "opset_upgraded" not in per_tensor.recipe


def test_a_graph_the_converter_cannot_upgrade_refuses_the_recipe(tmp_path: Path) -> None:
    """HardSwish stamped opset 11 (it exists from 14): no upgrade, a one-line reason."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("HardSwish", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    onnx.save(model, str(tmp_path / "bad.onnx"))
    with pytest.raises(InputError) as raised:
        opset_for_per_channel(tmp_path / "bad.onnx", tmp_path, "pc")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        "pc: per_channel static (QDQ) quantization needs opset >= 13 and the model is opset "
        "11; ONNX's version converter could not upgrade it (No Op registered for HardSwish"
    ), message
    assert list(tmp_path.glob("opset13.onnx")) == []
