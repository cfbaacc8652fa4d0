"""A tiny random llama saved by transformers (``save_pretrained``, safetensors), and held-out
token windows, for the MLX tests.

Weights are drawn so that the logits are spread (std ~2, as ``gguf_model.random_weights``
does), so quantization error shows in KL and top-1 agreement is meaningful; transformers'
own init (std 0.02) gives nearly uniform logits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgeproof.targets.llama_cpp.gguf_model import N_VOCAB, byte_windows

os.environ.setdefault("HF_HUB_OFFLINE", "1")
WINDOW, N_WINDOWS = 64, 6
HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS = 128, 256, 2, 4, 2


def tiny_hf_llama(
    folder: Path,
    seed: int = 0,
    dtype: str = "float32",
    rope_theta: float = 10000.0,
    intermediate: int = INTERMEDIATE,
) -> Path:
    """A random ``LlamaForCausalLM`` (grouped-query attention, untied output) saved in
    ``folder`` with ``save_pretrained(safe_serialization=True)``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=N_VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=intermediate,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 1:
                param.fill_(1.0)
            elif "embed_tokens" in name:
                param.copy_(torch.randn(param.shape, generator=gen))
            elif "lm_head" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 2.0 / HIDDEN**0.5)
            else:
                param.copy_(torch.randn(param.shape, generator=gen) / param.shape[1] ** 0.5)
    model.to(getattr(torch, dtype)).save_pretrained(folder, safe_serialization=True)
    return folder


def transformers_logits(folder: Path, windows: np.ndarray) -> np.ndarray:
    """transformers' float32 logits of the second half of each window (as the workers keep)."""
    import torch
    from transformers import LlamaForCausalLM

    ctx = windows.shape[1] - 1
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model(torch.from_numpy(windows[:, :ctx].astype(np.int64))).logits
    return out[:, ctx // 2 :].float().numpy()


@pytest.fixture(scope="session")
def hf_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random llama folder (float32)."""
    return tiny_hf_llama(tmp_path_factory.mktemp("hf") / "tiny-llama")


@pytest.fixture(scope="session")
def windows() -> np.ndarray:
    """Held-out byte windows (N_WINDOWS, WINDOW + 1) of text that ships with Python."""
    from pydoc_data.topics import topics

    return byte_windows(topics["assignment"].encode(), WINDOW, N_WINDOWS)
