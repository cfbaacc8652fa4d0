"""Input resolution: every bad input is one clear error before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgeproof.errors import ConfigError, InputError
from edgeproof.pipeline.resolve import resolve_inputs
from tests.helpers import write_npz


def _project(tmp_path: Path, tiny_model: Path, tiny_data: dict[str, Path], **changes) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    shutil.copy(tiny_model, tmp_path / "model.onnx")
    for split, src in tiny_data.items():
        shutil.copy(src, tmp_path / "data" / f"{split}.npz")
    params = {
        "model": {"name": "tiny", "path": "model.onnx"},
        "data": {"eval": "data/eval.npz", "calibration": "data/calibration.npz"},
        "targets": {"onnxruntime-cpu": {"recipes": [{"name": "dyn", "method": "dynamic"}]}},
    }
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        params[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_valid_project_resolves(tmp_path, tiny_model, tiny_data) -> None:
    got = resolve_inputs(_project(tmp_path, tiny_model, tiny_data))
    assert got.model == (tmp_path / "model.onnx").resolve()
    assert list(got.targets) == ["onnxruntime-cpu"]
    assert got.model_inputs[0].name == "input"
    assert len(got.lineage.params_sha256) == 64


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"model__path": "../outside.onnx"}, InputError, "escapes the project folder"),
        ({"model__path": "missing.onnx"}, InputError, "model file not found"),
        ({"model__input_name": "pixels"}, ConfigError, "model.input_name"),
        ({"data__eval": "data/nope.npz"}, InputError, "data file not found"),
    ],
)
def test_bad_inputs(tmp_path, tiny_model, tiny_data, changes, error, message) -> None:
    with pytest.raises(error, match=message):
        resolve_inputs(_project(tmp_path, tiny_model, tiny_data, **changes))


def test_unknown_and_disabled_targets(tmp_path, tiny_model, tiny_data) -> None:
    params = _project(tmp_path, tiny_model, tiny_data)
    with pytest.raises(ConfigError, match="unknown target 'tpu'"):
        resolve_inputs(params, ["tpu"])


def test_symlink_loop_is_refused(tmp_path, tiny_model, tiny_data) -> None:
    (tmp_path / "loop.onnx").symlink_to(tmp_path / "loop.onnx")
    with pytest.raises(InputError, match=r"loop\.onnx"):
        resolve_inputs(_project(tmp_path, tiny_model, tiny_data, model__path="loop.onnx"))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"pixels": np.zeros((4, 1, 16, 16), np.float32)}, "do not match model inputs"),
        ({"input": np.zeros((4, 1, 16, 16), np.float64)}, "has dtype float64"),
        ({"input": np.zeros((4, 1, 8, 8), np.float32)}, "has shape"),
    ],
)
def test_data_not_matching_the_model(tmp_path, tiny_model, tiny_data, arrays, message) -> None:
    params = _project(tmp_path, tiny_model, tiny_data)
    write_npz(tmp_path / "data" / "eval.npz", labels=np.zeros(4, np.int64), **arrays)
    with pytest.raises(InputError, match=message):
        resolve_inputs(params)


def test_without_the_data_gate_values_and_labels_are_checked_here(
    tmp_path, tiny_model, tiny_data
) -> None:
    """With `data.checks.enabled: false` resolution itself refuses NaN and bad labels."""
    off = {"enabled": False}
    params = _project(tmp_path, tiny_model, tiny_data, model__num_classes=3, data__checks=off)
    with pytest.raises(InputError, match=r"eval labels outside 0\.\.2"):
        resolve_inputs(params)
    params = _project(tmp_path, tiny_model, tiny_data, data__checks=off)
    inf = np.full((4, 1, 16, 16), np.inf, np.float32)
    write_npz(tmp_path / "data" / "eval.npz", labels=np.zeros(4, np.int64), input=inf)
    with pytest.raises(InputError, match="NaN or inf"):
        resolve_inputs(params)


def test_with_the_data_gate_values_are_left_to_it(tmp_path, tiny_model, tiny_data) -> None:
    """The data gate reports NaN rows in full, so resolution lets them through to it."""
    params = _project(tmp_path, tiny_model, tiny_data)
    inf = np.full((4, 1, 16, 16), np.inf, np.float32)
    write_npz(tmp_path / "data" / "eval.npz", labels=np.zeros(4, np.int64), input=inf)
    assert resolve_inputs(params).params.data.checks.enabled
