"""Any exporter's outputs: a sequence or map output (skl2onnx's ZipMap) is refused at
resolve in one line naming the output and the exporter option that avoids it."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from edgeproof.errors import InputError
from edgeproof.onnx.model import check_onnx
from tests.helpers import make_tiny_cnn, skl2onnx_outputs


def test_a_zipmap_output_is_refused_naming_it_and_the_exporter_option(tmp_path: Path) -> None:
    path = make_tiny_cnn(tmp_path / "m.onnx")
    onnx.save(skl2onnx_outputs(onnx.load(str(path))), str(path))
    onnx.checker.check_model(str(path))
    with pytest.raises(InputError) as raised:
        check_onnx(path)
    message = str(raised.value)
    assert "\\n" not in message
    assert message.startswith(
        "model output 'output_probability' is a sequence of map(int64 -> tensor(float32)) "
        "(made by ZipMap, ai.onnx.ml), not a tensor"
    ), message
    assert "skl2onnx: options={id(model): {'zipmap': False}}" in message


def test_tensor_outputs_of_any_type_pass(tmp_path: Path) -> None:
    path = make_tiny_cnn(tmp_path / "m.onnx")
    model = skl2onnx_outputs(onnx.load(str(path)))
    del model.graph.output[1:]  # output_label (int64) alone: zipmap=False's label output
    onnx.save(model, str(path))
    assert [s.name for s in check_onnx(path)] == ["input"]
