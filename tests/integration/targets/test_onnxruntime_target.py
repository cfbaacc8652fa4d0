"""The onnxruntime-cpu target on a real (tiny) ONNX model with the real runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeproof.data.dataset import load_dataset
from edgeproof.errors import InputError
from edgeproof.targets.onnxruntime_cpu.target import (
    OnnxRuntimeCpu,
    OnnxRuntimeTargetConfig,
    OrtRecipe,
)
from tests.helpers import assert_timed_inside_the_call


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
