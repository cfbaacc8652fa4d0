"""The ONNX copy onnx2tf gets: dynamic dims pinned to the data (the batch axis left
symbolic, or fixed at 1 as the last step) and node names TensorFlow accepts as scopes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from edgeproof.data.dataset import load_dataset
from edgeproof.targets.litert.shapes import pinned_model


def paddle_like(path: Path) -> Path:
    """Paddle2ONNX's habits: the batch written as -1, dynamic H and W, ``@`` in names."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 3])
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], name="ReduceMean@0", axes=[2, 3], keepdims=0),
        helper.make_node("Softmax", ["m"], ["y"], name="Softmax@0", axis=1),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 11)]
    )
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


def test_dims_are_pinned_to_the_data_and_names_made_scope_safe(tmp_path: Path) -> None:
    model = paddle_like(tmp_path / "model.onnx")
    items = np.random.default_rng(0).random((5, 3, 48, 192), dtype=np.float32)
    np.savez(tmp_path / "calibration.npz", x=items)
    data = load_dataset(tmp_path / "calibration.npz")
    notes = pinned_model(model, tmp_path / "dynamic.onnx", data, fixed_batch=False)
    assert notes == [
        "x: (?, 3, h, w) -> (batch, 3, 48, 192)",
        "2 node names made valid TensorFlow scope names",
    ]
    pinned = onnx.load(str(tmp_path / "dynamic.onnx"))
    assert [n.name for n in pinned.graph.node] == ["ReduceMean_0", "Softmax_0"]
    onnx.checker.check_model(pinned)
    fixed = pinned_model(model, tmp_path / "fixed.onnx", data, fixed_batch=True)
    assert fixed[0] == "x: (?, 3, h, w) -> (1, 3, 48, 192)"
    # the pinned copies compute what the model does
    want = ort.InferenceSession(str(model)).run(None, {"x": items[:2]})[0]
    got = ort.InferenceSession(str(tmp_path / "dynamic.onnx")).run(None, {"x": items[:2]})[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
