"""The bundled example: data splits and a trained, exported, single-file ONNX model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeproof.config import ExampleConfig
from edgeproof.errors import ConfigError
from edgeproof.example.data import prepare_splits
from edgeproof.example.train import build_model, train_and_export

SMALL = ExampleConfig(image_size=16, eval_size=300, calibration_size=100, epochs=1)


def _hashes(path: Path) -> set[str]:
    with np.load(path, allow_pickle=False) as npz:
        return {hashlib.sha256(x.tobytes()).hexdigest() for x in npz["input"]}


def test_splits_are_stratified_disjoint_and_deterministic(tmp_path: Path) -> None:
    paths = prepare_splits(SMALL, tmp_path / "a")
    assert sorted(paths) == ["calibration", "eval", "train"]
    with np.load(paths["eval"], allow_pickle=False) as npz:
        x, y = npz["input"], npz["labels"]
    assert x.shape == (300, 1, 16, 16) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert set(np.bincount(y)) <= set(range(25, 36))  # about 30 per class
    assert not _hashes(paths["eval"]) & _hashes(paths["train"])  # no leakage
    assert _hashes(paths["calibration"]) <= _hashes(paths["train"])
    again = prepare_splits(SMALL, tmp_path / "b")
    for split, path in paths.items():
        assert path.read_bytes() == again[split].read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "calibration.npz", "eval.npz", "train.npz",
    ]  # fmt: skip


def test_too_large_splits_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="eval_size \\+ calibration_size"):
        prepare_splits(ExampleConfig(eval_size=1700, calibration_size=200), tmp_path)


def test_default_model_has_about_two_million_parameters() -> None:
    params = sum(p.numel() for p in build_model(64).parameters())
    assert 1_800_000 <= params <= 2_300_000


def test_train_and_export_writes_a_verified_single_file_model(tmp_path: Path) -> None:
    prepare_splits(SMALL, tmp_path / "splits")
    onnx_path = tmp_path / "model" / "m.onnx"
    metrics = train_and_export(SMALL, tmp_path / "splits", onnx_path, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == metrics
    assert metrics["onnx_matches_torch_within"] == 1e-3  # train_and_export raises otherwise
    assert sorted(p.name for p in onnx_path.parent.iterdir()) == ["m.onnx"]  # no .data file
    onnx.checker.check_model(str(onnx_path))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    for n in (1, 5):
        out = session.run(None, {"input": np.zeros((n, 1, 16, 16), np.float32)})[0]
        assert out.shape == (n, 10)
