"""Integer data for a float input: a ``uint8`` image set stays ``uint8`` in the file and in
memory and is cast on feed to the input's dtype as ``value * scale + offset``
(``model.inputs.<name>.scale`` / ``offset``); wrong combinations are one-line errors before
any work. Real ONNX models, real data files, ONNX Runtime runs the feeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edgeproof.config import DataChecks, InputConfig
from edgeproof.data.datagate import item_hashes, validate_data
from edgeproof.data.dataset import load_dataset
from edgeproof.data.feed import FeedLayout
from edgeproof.errors import ConfigError, InputError
from edgeproof.onnx.model import check_data_matches, check_onnx, feed_layout
from edgeproof.params.model import parse_params
from tests.helpers import make_tiny_cnn, write_npz

SCALE = 0.00392156862745098  # 1 / 255: 0-255 images to 0-1
OFFSET = -0.5


def images(n: int = 12, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 1, size, size), dtype=np.uint8)


def as_fed(u8: np.ndarray, scale: float = SCALE, offset: float = OFFSET) -> np.ndarray:
    """What the model must see: value * scale + offset, rounded once to float32."""
    return (u8.astype(np.float64) * scale + offset).astype(np.float32)


def integer_model(path: Path, dtype: int = TensorProto.INT64) -> Path:
    """``ids`` (integer [N, 4]) -> Cast -> ReduceSum over axis 1 -> ``total`` (float [N])."""
    nodes = [
        helper.make_node("Cast", ["ids"], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["as_float"], ["total"], keepdims=0, axes=[1]),
    ]
    graph = helper.make_graph(
        nodes,
        "ints",
        [helper.make_tensor_value_info("ids", dtype, ["N", 4])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, ["N"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def cnn(tmp_path: Path) -> Path:
    return make_tiny_cnn(tmp_path / "cnn.onnx", size=8)


def test_uint8_data_stays_uint8_and_is_fed_as_float32_with_scale_and_offset(
    cnn: Path, tmp_path: Path
) -> None:
    u8 = images()
    write_npz(tmp_path / "eval.npz", input=u8, labels=np.arange(12) % 10)
    layout = feed_layout(cnn, {"input": InputConfig(scale=SCALE, offset=OFFSET)})
    data = load_dataset(tmp_path / "eval.npz", layout=layout)
    check_data_matches(check_onnx(cnn), data, "eval")  # accepted: uint8 for a float32 input
    assert data.inputs["input"].dtype == np.uint8  # a quarter of float32's memory

    fed = data.batch(3, 5)["input"]
    assert fed.dtype == np.float32 and fed.shape == (5, 1, 8, 8)
    np.testing.assert_array_equal(fed, as_fed(u8[3:8]))
    assert fed.min() >= -0.5 and fed.max() <= 0.5
    # the measurement workers get the layout as JSON: the cast travels with it
    again = load_dataset(tmp_path / "eval.npz", layout=FeedLayout.from_json(layout.to_json()))
    np.testing.assert_array_equal(again.batch(0, 12)["input"], as_fed(u8))

    # ONNX Runtime on the fed batches answers as on the float data itself
    session = ort.InferenceSession(str(cnn), providers=["CPUExecutionProvider"])
    from_u8 = np.concatenate([session.run(None, feeds)[0] for feeds in data.batches(4)])
    (from_float,) = session.run(None, {"input": as_fed(u8)})
    np.testing.assert_array_equal(from_u8, from_float)


def test_integer_data_defaults_to_scale_1_offset_0_and_float16_inputs_cast_too(
    cnn: Path, tmp_path: Path
) -> None:
    u8 = images()
    write_npz(tmp_path / "eval.npz", input=u8)
    data = load_dataset(tmp_path / "eval.npz", layout=feed_layout(cnn, {}))
    check_data_matches(check_onnx(cnn), data, "eval")
    np.testing.assert_array_equal(data.batch(0, 12)["input"], u8.astype(np.float32))

    half = onnx.load(str(cnn))
    half.graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.save(half, str(tmp_path / "half.onnx"))
    i8 = (images().astype(np.int16) - 128).astype(np.int8)
    write_npz(tmp_path / "signed.npz", input=i8)
    layout = feed_layout(tmp_path / "half.onnx", {"input": InputConfig(scale=1 / 128)})
    data = load_dataset(tmp_path / "signed.npz", layout=layout)
    check_data_matches(check_onnx(tmp_path / "half.onnx"), data, "eval")
    fed = data.batch(0, 12)["input"]
    assert fed.dtype == np.float16
    np.testing.assert_array_equal(fed, (i8 / 128).astype(np.float16))


INT64_IDS = np.arange(8, dtype=np.int64).reshape(2, 4)


@pytest.mark.parametrize(
    ("arrays", "inputs", "message"),
    [
        (  # a float array for an integer input
            {"ids": INT64_IDS.astype(np.float32)},
            {},
            "eval data 'ids' has dtype float32, model expects int64: store 'ids' as int64 (a "
            "float array cannot feed an integer input; params.yaml: model.inputs.ids.scale / "
            "offset cast integer data to a float input only)",
        ),
        (  # uint8 data with a scale, for an input that is itself integer
            {"ids": INT64_IDS.astype(np.uint8)},
            {"ids": InputConfig(scale=SCALE)},
            "eval data 'ids' has dtype uint8, model expects int64: params.yaml: "
            "model.inputs.ids.scale / offset cast data to a float input only: remove them, "
            "and store 'ids' as int64",
        ),
        (  # right dtype, but a scale that cannot apply
            {"ids": INT64_IDS},
            {"ids": InputConfig(offset=1.0)},
            "eval data 'ids' has dtype int64, model expects int64: params.yaml: "
            "model.inputs.ids.scale / offset cast data to a float input only: remove them",
        ),
        (  # another integer dtype, no scale: the plain mismatch, as before
            {"ids": INT64_IDS.astype(np.int32)},
            {},
            "eval data 'ids' has dtype int32, model expects int64",
        ),
    ],
)
def test_integer_inputs_refuse_float_data_and_a_scale_in_one_line(
    tmp_path: Path, arrays: dict, inputs: dict, message: str
) -> None:
    model = integer_model(tmp_path / "ints.onnx")
    write_npz(tmp_path / "eval.npz", **arrays)
    data = load_dataset(tmp_path / "eval.npz", layout=feed_layout(model, inputs))
    with pytest.raises(InputError) as refused:
        check_data_matches(check_onnx(model), data, "eval")
    assert str(refused.value) == message
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("array", "inputs", "message"),
    [
        (  # float data and a scale: refused rather than scaled twice
            images().astype(np.float32),
            {"input": InputConfig(scale=SCALE)},
            "eval data 'input' is already float32: params.yaml: model.inputs.input.scale / "
            "offset cast integer data only (uint8, int8, uint16 or int16): remove them, or "
            "store 'input' as integers",
        ),
        (  # int64 is as large as float32 and not exact in it: not cast
            images().astype(np.int64),
            {},
            "eval data 'input' has dtype int64, model expects float32: a float input takes "
            "float32, or uint8, int8, uint16 or int16 data cast with params.yaml: "
            "model.inputs.input.scale / offset",
        ),
        (
            images().astype(np.float64),
            {},
            "eval data 'input' has dtype float64, model expects float32: a float input takes "
            "float32, or uint8, int8, uint16 or int16 data cast with params.yaml: "
            "model.inputs.input.scale / offset",
        ),
    ],
)
def test_float_inputs_refuse_other_data_in_one_line(
    cnn: Path, tmp_path: Path, array: np.ndarray, inputs: dict, message: str
) -> None:
    write_npz(tmp_path / "eval.npz", input=array)
    data = load_dataset(tmp_path / "eval.npz", layout=feed_layout(cnn, inputs))
    with pytest.raises(InputError) as refused:
        check_data_matches(check_onnx(cnn), data, "eval")
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"value": 1, "scale": 2.0}, "scale / offset cast the data file's integer array"),
        ({"carried_from": "out", "offset": 1.0}, "not with value or carried_from"),
        ({}, "give value, carried_from, or scale / offset"),
        ({"scale": float("nan")}, "model.inputs.input.scale"),
    ],
)
def test_a_scale_beside_value_or_carried_from_is_a_config_error(entry: dict, message: str):
    raw = {
        "model": {"name": "m", "path": "m.onnx", "inputs": {"input": entry}},
        "data": {"eval": "e.npz", "calibration": "c.npz"},
        "targets": {"onnxruntime-cpu": {"recipes": []}},
    }
    with pytest.raises(ConfigError, match=message) as refused:
        parse_params(raw)
    assert str(refused.value).startswith("params.yaml: model.inputs.input")


def test_the_data_gate_checks_values_and_dtypes_as_fed(cnn: Path, tmp_path: Path) -> None:
    """value_min / value_max bound the cast values (0-255 stored, 0-1 fed: passes; a
    scale of 1/128 feeds up to 1.99: fails); uint8 eval items and their float32 copies in
    the calibration set are the same items (leakage)."""
    u8 = images(n=40)
    labels = np.arange(40) % 10
    write_npz(tmp_path / "eval.npz", input=u8[:30], labels=labels[:30])
    write_npz(tmp_path / "calibration.npz", input=u8[30:], labels=labels[30:])
    specs = check_onnx(cnn)
    checks = DataChecks(min_eval_rows=10, min_calibration_rows=5, value_min=0.0, value_max=1.0)

    def gate(scale: float, calibration: str = "calibration.npz") -> list[str]:
        layout = feed_layout(cnn, {"input": InputConfig(scale=scale)})
        splits = {
            "eval": load_dataset(tmp_path / "eval.npz", layout=layout),
            "calibration": load_dataset(tmp_path / calibration, layout=layout),
        }
        return validate_data(splits, checks, 10, specs).failures

    assert gate(SCALE) == []
    failures = gate(1 / 128)
    assert any("value_max" in line and "max_value=1.0" in line for line in failures), failures
    assert not any("dtype" in line for line in failures), failures

    # the first eval items again, as the float32 the model sees, in the calibration set
    leaked = np.concatenate([as_fed(u8[:3], SCALE, 0.0), as_fed(u8[30:], SCALE, 0.0)])
    write_npz(tmp_path / "leaky.npz", input=leaked, labels=labels[27:])
    floats = load_dataset(tmp_path / "leaky.npz", layout=feed_layout(cnn, {}))
    eval_u8 = load_dataset(
        tmp_path / "eval.npz", layout=feed_layout(cnn, {"input": InputConfig(scale=SCALE)})
    )
    assert set(item_hashes(eval_u8)) & set(item_hashes(floats)) == set(item_hashes(floats)[:3])
