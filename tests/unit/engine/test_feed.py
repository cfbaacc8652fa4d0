"""Feeding real input layouts: items on each input's own batch axis, constant inputs (a 0-d
sample rate, given in the data or in params) and a streaming state carried from call to
call, on a small stateful ONNX model run in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeproof.config import InputConfig
from edgeproof.data.dataset import load_dataset
from edgeproof.data.feed import FeedLayout, stream_calls
from edgeproof.data.streaming import carried_states
from edgeproof.errors import ConfigError, InputError
from edgeproof.onnx.model import check_data_matches, check_onnx, feed_layout

STREAMING = {"sr": InputConfig(value=16000), "state": InputConfig(carried_from="stateN")}


def stateful_model(path: Path) -> Path:
    """``stateN = 0.5 * state + input`` (state ``[2, batch, 4]``, batch on axis 1) and
    ``out = sum(stateN over axes 0 and 2) * sr / 16000``: the answer depends on the past."""
    f = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("input", f, ["batch", 4]),
        helper.make_tensor_value_info("state", f, [2, "batch", 4]),
        helper.make_tensor_value_info("sr", TensorProto.INT64, []),
    ]
    outputs = [
        helper.make_tensor_value_info("out", f, ["batch"]),
        helper.make_tensor_value_info("stateN", f, [2, "batch", 4]),
    ]
    consts = [
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array([0, 2], np.int64), "axes02"),
        numpy_helper.from_array(np.array(16000.0, np.float32), "rate"),
    ]
    nodes = [
        helper.make_node("Mul", ["state", "half"], ["decayed"]),
        helper.make_node("Unsqueeze", ["input", "axis0"], ["lifted"]),
        helper.make_node("Add", ["decayed", "lifted"], ["stateN"]),
        helper.make_node("ReduceSum", ["stateN", "axes02"], ["summed"], keepdims=0),
        helper.make_node("Cast", ["sr"], ["sr_float"], to=f),
        helper.make_node("Div", ["sr_float", "rate"], ["scale"]),
        helper.make_node("Mul", ["summed", "scale"], ["out"]),
    ]
    graph = helper.make_graph(nodes, "stateful", inputs, outputs, consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return stateful_model(tmp_path / "model.onnx")


def reference(model: Path, chunks: np.ndarray, resets: set[int] = frozenset()) -> np.ndarray:
    """The model streamed by hand: one chunk per call, the state carried."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 4), np.float32)
    answers = []
    for i, chunk in enumerate(chunks):
        if i in resets:
            state = np.zeros_like(state)
        feeds = {"input": chunk[None], "state": state, "sr": np.array(16000, np.int64)}
        out, state = session.run(None, feeds)
        answers.append(out[0])
    return np.array(answers)


def test_the_layout_comes_from_the_graph_and_params(model: Path):
    layout = feed_layout(model, STREAMING)
    assert layout.item_axes == {"state": 1}
    assert layout.output_axes == {"stateN": 1}
    assert layout.constant_inputs == {"sr"}
    assert layout.constants["sr"].dtype == np.int64 and layout.constants["sr"].shape == ()
    assert layout.states["state"].output == "stateN"
    assert layout.states["state"].shape == (2, 1, 4)
    assert layout.max_batch == 1
    assert FeedLayout.from_json(layout.to_json()).to_json() == layout.to_json()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"rate": InputConfig(value=1)}, r"model.inputs.rate: not an input of the model"),
        ({"sr": InputConfig(value=[1, 2])}, r"model.inputs.sr.value: has shape \(2,\)"),
        ({"state": InputConfig(carried_from="nope")}, r"'nope' is not an output"),
        ({"state": InputConfig(carried_from="out")}, r"output 'out' .* cannot feed input 'state'"),
    ],
)
def test_bad_model_inputs_in_params_name_the_key(model: Path, inputs, message):
    with pytest.raises(ConfigError, match=message):
        feed_layout(model, inputs)


def test_items_are_read_on_the_states_own_axis_and_fed_back_on_it(model: Path, tmp_path: Path):
    specs = check_onnx(model)
    layout = feed_layout(model, {})
    chunks = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    states = np.random.default_rng(1).normal(size=(2, 6, 4)).astype(np.float32)
    np.savez(tmp_path / "eval.npz", input=chunks, state=states, sr=np.array(16000, np.int64))
    data = load_dataset(tmp_path / "eval.npz", layout=layout)
    check_data_matches(specs, data, "eval")
    assert len(data) == 6 and data.inputs["state"].shape == (6, 2, 4)
    batch = data.batch(2, 3)
    assert batch["state"].shape == (2, 3, 4)
    np.testing.assert_array_equal(batch["state"], states[:, 2:5])
    assert batch["sr"].shape == ()
    # the state stacked items-first, as a user might write it, is refused
    np.savez(tmp_path / "bad.npz", input=chunks, state=np.moveaxis(states, 1, 0), sr=16000)
    with pytest.raises(InputError, match=r"differ in length .*'state \(items on axis 1\)': 2"):
        load_dataset(tmp_path / "bad.npz", layout=layout)
    # ... and where the counts happen to agree, by its fixed dimension
    square = np.zeros((2, 2, 4), np.float32)
    np.savez(tmp_path / "two.npz", input=chunks[:2], state=square.copy(), sr=16000)
    check_data_matches(specs, load_dataset(tmp_path / "two.npz", layout=layout), "eval")
    np.savez(
        tmp_path / "odd.npz", input=chunks[:3], state=np.zeros((3, 3, 4), np.float32), sr=16000
    )
    with pytest.raises(InputError, match=r"'state' has shape \(3, 3, 4\).*axis 0 must be 2"):
        check_data_matches(specs, load_dataset(tmp_path / "odd.npz", layout=layout), "eval")


def test_a_constant_from_params_and_a_left_out_state_start_at_zeros(model: Path, tmp_path: Path):
    layout = feed_layout(model, STREAMING)
    chunks = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    np.savez(tmp_path / "eval.npz", input=chunks)
    data = load_dataset(tmp_path / "eval.npz", layout=layout)
    check_data_matches(check_onnx(model), data, "eval")
    batch = data.batch(0, 2)
    np.testing.assert_array_equal(batch["state"], np.zeros((2, 2, 4), np.float32))
    assert int(batch["sr"]) == 16000
    # given twice (data and params): refused
    np.savez(tmp_path / "twice.npz", input=chunks, sr=np.array(16000, np.int64))
    with pytest.raises(InputError, match=r"'sr' is also given in params.yaml"):
        load_dataset(tmp_path / "twice.npz", layout=layout)


def test_streaming_carries_the_state_and_resets_at_each_stream(model: Path, tmp_path: Path):
    layout = feed_layout(model, STREAMING)
    chunks = np.random.default_rng(3).normal(size=(8, 4)).astype(np.float32)
    streams = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    np.savez(tmp_path / "eval.npz", input=chunks, stream=streams)
    data = load_dataset(tmp_path / "eval.npz", layout=layout)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    calls = stream_calls(
        lambda feeds: session.run(None, feeds), names, data.batches(1), layout, data.streams
    )
    answers = np.array([out[0][0] for out in calls])
    np.testing.assert_allclose(answers, reference(model, chunks, {3, 7}), rtol=1e-6)
    stateless = session.run(None, data.batch(0, 8))[0]
    assert np.abs(stateless - answers).max() > 0.1  # the carried state matters


def test_calibration_gets_the_states_the_model_carries(model: Path, tmp_path: Path):
    layout = feed_layout(model, STREAMING)
    chunks = np.random.default_rng(4).normal(size=(4, 4)).astype(np.float32)
    np.savez(tmp_path / "calibration.npz", input=chunks)
    filled = carried_states(model, load_dataset(tmp_path / "calibration.npz", layout=layout))
    assert filled.inputs["state"].shape == (4, 2, 4)
    np.testing.assert_array_equal(filled.inputs["state"][0], np.zeros((2, 4), np.float32))
    expected = 0.5 * (0.5 * chunks[0] + chunks[1]) + chunks[2]  # the state before item 3
    np.testing.assert_allclose(filled.inputs["state"][3][0], expected, rtol=1e-6)
