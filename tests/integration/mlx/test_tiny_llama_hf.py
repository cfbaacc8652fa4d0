"""The byte-level llama example written as a Hugging Face-layout folder.

The example is trained with rope on adjacent pairs (llama.cpp's ``llama`` arch), HF Llama
rotates halves: the writer permutes q/k rows per head. Here a small random model of the
example's architecture goes through PyTorch, transformers (the HF folder), MLX (the HF
folder) and llama.cpp (its GGUF), and all four agree; a wrong permutation would not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeproof.example.tiny_llama import (
    build_model,
    gguf_weights,
    llama_cpp_logits,
    mlx_logits,
    rotate_half_rows,
    torch_logits,
    write_hf_model,
)
from edgeproof.targets.llama_cpp.gguf_model import LlamaHParams, write_llama_gguf
from edgeproof.targets.mlx.hf_model import check_hf_model
from tests.integration.mlx.conftest import WINDOW, transformers_logits

HP = LlamaHParams(n_embd=128, n_ff=256, n_layer=2, n_head=4, n_head_kv=2, n_ctx=WINDOW)


@pytest.fixture(scope="module")
def model() -> object:
    """The example's architecture at a small size, with spread random weights."""
    import torch

    torch.manual_seed(0)
    net = build_model(HP).eval()
    with torch.no_grad():
        for name, param in net.named_parameters():
            if param.ndim == 1:
                continue
            if name.startswith("tok_emb"):
                param.normal_(0.0, 1.0)
            elif name.startswith("output"):
                param.normal_(0.0, 2.0 / HP.n_embd**0.5)
            else:
                param.normal_(0.0, 1.0 / param.shape[1] ** 0.5)
    return net


def test_rotate_half_rows() -> None:
    rows = np.arange(2 * 8, dtype=np.float32).reshape(16, 1)  # 2 heads of dimension 8
    moved = rotate_half_rows(rows, n_heads=2)[:, 0].astype(int).tolist()
    assert moved == [0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15]


def test_the_hf_folder_computes_the_models_logits_everywhere(
    model: object, windows: np.ndarray, tmp_path: Path
) -> None:
    folder = write_hf_model(tmp_path / "hf", model, HP, "float32")
    info = check_hf_model(folder)
    assert info.precision == "f32" and info.n_params == sum(
        p.numel()
        for p in model.parameters()  # type: ignore[attr-defined]
    )
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["num_key_value_heads"] == 2

    ctx = windows.shape[1] - 1
    expected = torch_logits(model, windows)[:, ctx // 2 :]
    by_transformers = transformers_logits(folder, windows)
    by_mlx = mlx_logits(folder, windows, threads=1)
    gguf = write_llama_gguf(tmp_path / "model.gguf", gguf_weights(model), HP, "F32")
    by_llama = llama_cpp_logits(gguf, windows, threads=1)
    scale = np.abs(expected).max()
    for got in (by_transformers, by_mlx, by_llama):
        assert np.abs(got - expected).max() < 1e-3 * scale
        assert (got.argmax(-1) == expected.argmax(-1)).mean() == 1.0
    assert (by_mlx.argmax(-1) == by_llama.argmax(-1)).mean() == 1.0


def test_float16_folder(model: object, windows: np.ndarray, tmp_path: Path) -> None:
    folder = write_hf_model(tmp_path / "hf16", model, HP, "float16")
    assert check_hf_model(folder).precision == "f16"
    ctx = windows.shape[1] - 1
    expected = torch_logits(model, windows)[:, ctx // 2 :]
    got = mlx_logits(folder, windows, threads=1)
    assert (got.argmax(-1) == expected.argmax(-1)).mean() > 0.97


@pytest.mark.slow
def test_build_writes_and_checks_the_hf_folder(tmp_path: Path) -> None:
    from edgeproof.config import LlamaExampleConfig
    from edgeproof.example.tiny_llama import build

    config = LlamaExampleConfig(seconds=3, threads=1, eval_windows=4, calibration_windows=2)
    hf = tmp_path / "model" / "tiny-llama-hf"
    metrics = build(
        tmp_path / "model" / "tiny-llama-f16.gguf",
        tmp_path / "data",
        tmp_path / "metrics.json",
        config,
        hf_dir=hf,
    )
    assert check_hf_model(hf).precision == "f16"
    assert metrics["mlx_top1_agreement"] >= 0.99
    assert metrics["mlx_vs_llama_cpp_top1_agreement"] >= 0.99
    assert metrics["hf_bytes"] > 0 and metrics["mlx_check"].startswith("mlx ")
