"""Shared fixtures: a small real ONNX classifier built with onnx.helper, and its data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import make_tiny_cnn, write_npz


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conv + gemm classifier (1x1x16x16 -> 10 logits), dynamic batch."""
    return make_tiny_cnn(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Eval and calibration .npz files matching ``tiny_model``."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    paths = {}
    for split, n in (("eval", 64), ("calibration", 32)):
        x = rng.random((n, 1, 16, 16), dtype=np.float32)
        y = rng.integers(0, 10, n).astype(np.int64)
        paths[split] = write_npz(folder / f"{split}.npz", input=x, labels=y)
    return paths
