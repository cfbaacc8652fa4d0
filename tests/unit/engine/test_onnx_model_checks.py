"""Opening checks of ``edgeproof.onnx.model``: a model that cannot end well is refused
with one line before any work; input layouts and the fixed-dimension check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeproof.errors import InputError
from edgeproof.onnx.model import InputLayout, check_onnx, describe_inputs, item_axis_of

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])


def _save(tmp_path: Path, nodes, outputs=(Y,), opsets=(("", 17),), ir=9, inits=(), **kw) -> Path:
    graph = helper.make_graph(list(nodes), "g", [X], list(outputs), list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = ir
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path), **kw)
    return path


def _relu():
    return [helper.make_node("Relu", ["x"], ["y"])]


def test_a_valid_model_passes_and_a_negative_dim_is_dynamic(tmp_path: Path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, None, None])
    graph = helper.make_graph(_relu(), "g", [x], [Y])
    path = tmp_path / "paddle.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7)
    onnx.save(model, str(path))
    (spec,) = check_onnx(path, for_onnxruntime=True)
    assert spec.shape == (None, 3, None, None)
    (layout,) = describe_inputs(path)
    assert (layout.batch_axis, layout.fixed) == (0, {1: 3})


def test_no_outputs_is_refused(tmp_path: Path):
    path = _save(tmp_path, _relu(), outputs=())
    with pytest.raises(InputError, match=r"^model declares no outputs"):
        check_onnx(path, for_onnxruntime=True)


def test_an_opset_newer_than_onnx_runtime_supports_is_refused(tmp_path: Path):
    path = _save(tmp_path, _relu(), opsets=(("", 27),), ir=10)
    with pytest.raises(InputError) as caught:
        check_onnx(path, for_onnxruntime=True)
    message = str(caught.value)
    assert message.startswith(f"onnxruntime {ort.__version__} cannot load the model (opset 27")
    assert "supports up to opset 26" in message and "\n" not in message


def test_an_ir_version_newer_than_onnx_runtime_supports_is_refused(tmp_path: Path):
    """onnx 1.23's make_model stamps IR 14 by default; ONNX Runtime 1.31 reads up to 13."""
    path = _save(tmp_path, _relu(), ir=onnx.IR_VERSION)
    assert check_onnx(path)  # valid ONNX: only the runtime refuses it
    with pytest.raises(InputError, match=r"Unsupported model IR version: \d+, max supported"):
        check_onnx(path, for_onnxruntime=True)


def test_an_op_domain_onnx_runtime_does_not_know_is_refused(tmp_path: Path):
    node = helper.make_node("Foo", ["x"], ["y"], domain="com.acme")
    path = _save(tmp_path, [node], opsets=(("", 17), ("com.acme", 1)))
    with pytest.raises(InputError, match=r"op domain 'com.acme' \(op Foo\), which onnxruntime"):
        check_onnx(path, for_onnxruntime=True)


def test_an_unknown_domain_inside_an_if_branch_is_found(tmp_path: Path):
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    branch = helper.make_graph(
        [helper.make_node("Bar", ["x"], ["y"], domain="com.acme")], "b", [], [out]
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
    graph = helper.make_graph([node], "g", [X, cond], [Y])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)]
    )
    model.ir_version = 9
    path = tmp_path / "if.onnx"
    onnx.save(model, str(path))
    with pytest.raises(InputError, match=r"op domain 'com.acme' \(op Bar\)"):
        check_onnx(path, for_onnxruntime=True)


def test_other_targets_are_not_held_to_onnx_runtime_limits(tmp_path: Path):
    node = helper.make_node("Foo", ["x"], ["y"], domain="com.acme")
    path = _save(tmp_path, [node], opsets=(("", 17), ("com.acme", 1)))
    assert [s.name for s in check_onnx(path)] == ["x"]  # a converter may know the op


def test_a_microsoft_contrib_op_is_accepted(tmp_path: Path):
    node = helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")
    path = _save(tmp_path, [node], opsets=(("", 17), ("com.microsoft", 1)))
    assert [s.name for s in check_onnx(path)] == ["x"]


def _with_external_weight(tmp_path: Path, location: str = "weights.data") -> Path:
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    return _save(
        tmp_path,
        [node],
        inits=[w],
        save_as_external_data=True,
        location=location,
        size_threshold=0,
    )


def test_missing_external_data_is_refused(tmp_path: Path):
    path = _with_external_weight(tmp_path)
    assert check_onnx(path, for_onnxruntime=True)
    (tmp_path / "weights.data").unlink()
    with pytest.raises(InputError, match=r"needs external data file 'weights.data', which is"):
        check_onnx(path, for_onnxruntime=True)


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path):
    inner = tmp_path / "model"
    inner.mkdir()
    path = _with_external_weight(inner)
    model = onnx.load(str(path), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../weights.data"
    (inner / "weights.data").rename(tmp_path / "weights.data")
    onnx.save(model, str(path))
    with pytest.raises(InputError, match=r"external data outside the model's folder"):
        check_onnx(path, for_onnxruntime=True)


def test_the_item_axis_is_the_batch_axis_wherever_it_is_else_a_fixed_one():
    state = InputLayout(
        "state", np.dtype(np.float32), (2, None, 128), (None,) * 3, 1, {0: 2, 2: 128}
    )
    assert state.item_axis == 1
    assert item_axis_of((2, 1, 128)) == 1  # a state fixed at batch 1
    batch_one = InputLayout("x", np.dtype(np.float32), (1, 3), (None, None), None, {0: 1, 1: 3})
    assert batch_one.item_axis == 0
    table = InputLayout("t", np.dtype(np.float32), (4, 3), (None, None), None, {0: 4, 1: 3})
    assert table.item_axis is None  # a constant
    assert item_axis_of(()) is None  # a scalar: a constant
