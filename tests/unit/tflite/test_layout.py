"""Matching TFLite tensors to the ONNX model's (names, order, channel-last layout), and the
one-shot subprocess helper the converter runs through."""

from __future__ import annotations

import pytest

from edgeproof.errors import InputError
from edgeproof.runtime.oneshot import run_module
from edgeproof.targets.litert.layout import inverse, layout_perm, match_inputs, match_outputs


@pytest.mark.parametrize(
    ("onnx", "tflite", "perm"),
    [
        ((None, 1, 16, 16), (-1, 16, 16, 1), (0, 2, 3, 1)),  # NCHW -> NHWC
        ((None, 10), (-1, 10), (0, 1)),  # unchanged
        ((1, 8, 8, 8), (1, 8, 8, 8), (0, 2, 3, 1)),  # both fit: onnx2tf's channel-last
        ((None, 12, 768), (-1, 12, 768), (0, 1, 2)),  # only identity fits
        ((2, 3, 4, 5, 6), (2, 4, 5, 6, 3), (0, 2, 3, 4, 1)),  # NCDHW -> NDHWC
        ((None, 3, 8), (-1, 8, 4), None),  # nothing fits
        ((None, 3), (-1, 3, 1), None),  # rank differs
    ],
)
def test_layout_perm(onnx: tuple, tflite: tuple, perm: tuple | None) -> None:
    assert layout_perm(onnx, tflite) == perm
    if perm is not None:
        assert tuple(perm[i] for i in inverse(perm)) == tuple(range(len(perm)))


def test_inputs_match_by_name_then_sanitized_name_then_position() -> None:
    assert match_inputs(["x.1", "mask"], ["mask", "x_1"]) == {"x.1": "x_1", "mask": "mask"}
    keys = ["serving_default_mask:0", "serving_default_x.1:0"]  # no signature
    assert match_inputs(["x.1", "mask"], keys) == {"x.1": keys[1], "mask": keys[0]}
    assert match_inputs(["images"], ["input_1"]) == {"images": "input_1"}
    with pytest.raises(ValueError, match=r"no TFLite input for ONNX input\(s\) \['b'\]"):
        match_inputs(["a", "b"], ["a", "c"])


def test_outputs_follow_onnx_order() -> None:
    names = [f"out{i}" for i in range(11)]
    keys = [f"output_{i}" for i in (10, 1, 0, 2, 3, 4, 5, 6, 7, 8, 9)]
    assert match_outputs(names, keys)[10] == ("out10", "output_10")
    assert match_outputs(["a", "b"], ["b", "a"]) == [("a", "a"), ("b", "b")]
    # a model without signatures: its output tensors are numbered like the ONNX outputs
    assert match_outputs(["a", "b"], ["PartitionedCall:1", "PartitionedCall:0"]) == [
        ("a", "PartitionedCall:0"),
        ("b", "PartitionedCall:1"),
    ]
    assert match_outputs(["a", "b"], ["Identity_1", "Identity"])[0] == ("a", "Identity")
    # neither ONNX names nor onnx2tf's numbering: the TFLite names, in their natural order
    got = match_outputs(["a", "b"], ["PartitionedCall:10", "PartitionedCall:9"])
    assert got == [("PartitionedCall:9",) * 2, ("PartitionedCall:10",) * 2]


def test_a_child_that_cannot_start_is_a_one_line_error() -> None:
    with pytest.raises(InputError) as caught:
        run_module("edgeproof.no_such_module", {}, timeout=60, label="probe", error=InputError)
    message = str(caught.value)
    assert message.startswith("probe: process exited with code 1 and no result;")
    assert message.endswith("No module named edgeproof.no_such_module")
