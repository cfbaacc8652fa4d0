"""Write a llama-architecture GGUF from named weights, and read back what a GGUF holds.

Facts the writer relies on (found on llama.cpp 0.3.36 / gguf 0.19.0; docs/architecture.md,
"Runtime facts"):

- llama.cpp loads a ``llama`` GGUF only with the ``llama.*`` hyperparameters, the standard
  tensor names (``token_embd``, ``blk.N.attn_q`` ...), ``tokenizer.ggml.model = "llama"``
  and a token list. Without a tokenizer model loading fails; with ``"none"`` tokenizing
  aborts the whole process (GGML_ASSERT).
- The vocabulary here is byte-level: 3 specials (``<unk>``, ``<s>``, ``</s>``) then the
  256 byte tokens ``<0x00>``..``<0xFF>``, so byte ``b`` is token ``3 + b``. The llama (SPM)
  tokenizer still turns spaces into U+2581 with such a vocabulary: callers feed byte ids
  directly (``Llama.eval``) and never tokenize text.
- Arch ``llama`` uses rope type 0 (rotate adjacent pairs 2i, 2i+1). A model trained with
  that convention is written with q/k weights unpermuted (the permute in HF's converter is
  for checkpoints trained with rotate-half); ``nn.Linear`` weights (out, in) go in as-is
  (gguf reverses the numpy shape into ggml's ne order).
- K-quants need rows that are a multiple of 256 values; narrower rows fall back to another
  type, so widths here should be multiples of 256.
- Norm weights (1-D) stay F32 whatever the file type; llama.cpp's quantizer leaves them so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

N_SPECIAL = 3
BYTE_OFFSET = N_SPECIAL  # token id of byte b is BYTE_OFFSET + b
N_VOCAB = N_SPECIAL + 256
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2

_FILE_TYPES = ("F32", "F16")


@dataclass(frozen=True)
class LlamaHParams:
    """Hyperparameters of a llama-architecture model (what ``llama.*`` keys record)."""

    n_embd: int = 256
    n_ff: int = 768
    n_layer: int = 4
    n_head: int = 4
    n_head_kv: int = 4
    n_ctx: int = 256
    n_vocab: int = N_VOCAB
    rms_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head or self.n_head % self.n_head_kv:
            raise ValueError(
                f"n_embd {self.n_embd} must divide by n_head {self.n_head}, "
                f"and n_head by n_head_kv {self.n_head_kv}"
            )
        if self.head_dim % 2:
            raise ValueError(f"head dimension {self.head_dim} must be even for rope")


def tensor_shapes(hp: LlamaHParams) -> dict[str, tuple[int, ...]]:
    """Standard GGUF tensor names and their numpy shapes ((out, in) like ``nn.Linear``)."""
    kv = hp.n_head_kv * hp.head_dim
    shapes: dict[str, tuple[int, ...]] = {
        "token_embd.weight": (hp.n_vocab, hp.n_embd),
        "output_norm.weight": (hp.n_embd,),
        "output.weight": (hp.n_vocab, hp.n_embd),
    }
    for i in range(hp.n_layer):
        shapes.update(
            {
                f"blk.{i}.attn_norm.weight": (hp.n_embd,),
                f"blk.{i}.attn_q.weight": (hp.n_embd, hp.n_embd),
                f"blk.{i}.attn_k.weight": (kv, hp.n_embd),
                f"blk.{i}.attn_v.weight": (kv, hp.n_embd),
                f"blk.{i}.attn_output.weight": (hp.n_embd, hp.n_embd),
                f"blk.{i}.ffn_norm.weight": (hp.n_embd,),
                f"blk.{i}.ffn_gate.weight": (hp.n_ff, hp.n_embd),
                f"blk.{i}.ffn_up.weight": (hp.n_ff, hp.n_embd),
                f"blk.{i}.ffn_down.weight": (hp.n_embd, hp.n_ff),
            }
        )
    return shapes


def byte_vocab() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of the byte-level vocabulary (3 specials + 256 bytes)."""
    import gguf

    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [int(gguf.TokenType.UNKNOWN), int(gguf.TokenType.CONTROL), int(gguf.TokenType.CONTROL)]
    types += [int(gguf.TokenType.BYTE)] * 256
    return tokens, [0.0] * len(tokens), types


def write_llama_gguf(
    path: Path,
    weights: Mapping[str, np.ndarray],
    hp: LlamaHParams,
    file_type: str = "F16",
    name: str = "edgeproof-tiny-llama",
) -> Path:
    """Write ``weights`` (standard GGUF names, see ``tensor_shapes``) as a llama GGUF.

    ``file_type`` "F16" or "F32" sets the 2-D tensors' type; norms stay F32. Written to a
    temporary file next to ``path`` and renamed, so a crash never leaves half a model.
    """
    import gguf

    file_type = file_type.upper()
    if file_type not in _FILE_TYPES:
        raise ValueError(f"file_type must be one of {_FILE_TYPES}, got {file_type!r}")
    expected = tensor_shapes(hp)
    if set(weights) != set(expected):
        missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
        raise ValueError(
            f"weights do not match the hyperparameters: missing {missing}, extra {extra}"
        )
    for key, shape in expected.items():
        if tuple(weights[key].shape) != shape:
            raise ValueError(f"{key} has shape {tuple(weights[key].shape)}, expected {shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    try:
        writer.add_name(name)
        writer.add_context_length(hp.n_ctx)
        writer.add_embedding_length(hp.n_embd)
        writer.add_block_count(hp.n_layer)
        writer.add_feed_forward_length(hp.n_ff)
        writer.add_head_count(hp.n_head)
        writer.add_head_count_kv(hp.n_head_kv)
        writer.add_layer_norm_rms_eps(hp.rms_eps)
        writer.add_rope_freq_base(hp.rope_theta)
        writer.add_rope_dimension_count(hp.head_dim)
        writer.add_vocab_size(hp.n_vocab)
        ftype = gguf.LlamaFileType.ALL_F32 if file_type == "F32" else gguf.LlamaFileType.MOSTLY_F16
        writer.add_file_type(int(ftype))
        tokens, scores, types = byte_vocab()
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(UNK_ID)
        writer.add_bos_token_id(BOS_ID)
        writer.add_eos_token_id(EOS_ID)
        writer.add_add_bos_token(False)
        writer.add_add_eos_token(False)
        dtype = np.float32 if file_type == "F32" else np.float16
        for key in expected:  # a fixed, conventional order
            array = np.asarray(weights[key], dtype=np.float32)
            writer.add_tensor(
                key, np.ascontiguousarray(array if array.ndim == 1 else array.astype(dtype))
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(tmp, path)
    return path


def random_weights(hp: LlamaHParams, seed: int) -> dict[str, np.ndarray]:
    """Random weights whose logits are spread (std ~2), so quantization error shows in KL.

    Embeddings N(0, 1); linear layers N(0, 1/fan_in); norms 1; output N(0, (2/sqrt(d))^2).
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape in tensor_shapes(hp).items():
        if len(shape) == 1:
            weights[key] = np.ones(shape, dtype=np.float32)
        elif key == "token_embd.weight":
            weights[key] = rng.standard_normal(shape, dtype=np.float32)
        elif key == "output.weight":
            weights[key] = rng.standard_normal(shape, dtype=np.float32) * (2.0 / np.sqrt(shape[1]))
        else:
            weights[key] = rng.standard_normal(shape, dtype=np.float32) / np.sqrt(shape[1])
    return weights


def tiny_random_gguf(
    path: Path,
    seed: int = 0,
    n_embd: int = 256,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 512,
    n_ctx: int = 256,
    file_type: str = "F32",
) -> Path:
    """A random llama GGUF (about 1.4M params at the defaults), written in well under a second."""
    hp = LlamaHParams(
        n_embd=n_embd, n_ff=n_ff, n_layer=n_layer, n_head=n_head, n_head_kv=n_head, n_ctx=n_ctx
    )
    return write_llama_gguf(path, random_weights(hp, seed), hp, file_type, name="random-llama")


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF file holds: sizes, tensor types and bits per weight."""

    path: str
    file_bytes: int
    n_params: int
    tensor_bytes: int
    bits_per_weight: float  # 8 * tensor bytes / parameters (llama.cpp's "model size" basis)
    tensor_types: dict[str, int] = field(default_factory=dict)  # type name -> tensor count
    metadata: dict[str, Any] = field(default_factory=dict)  # scalar keys only


def _scalar(field_: Any) -> Any:
    """A scalar or string metadata value of a ``gguf.ReaderField``; None for arrays."""
    import gguf

    types = list(field_.types)
    if not types or types[0] == gguf.GGUFValueType.ARRAY:
        return None
    part = field_.parts[field_.data[0]]
    if types[0] == gguf.GGUFValueType.STRING:
        return bytes(part).decode("utf-8", "replace")
    return part.tolist()[0]


def gguf_info(path: Path) -> GGUFInfo:
    """Read a GGUF's tensor table and scalar metadata (pure Python: a bad file raises)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    counts: dict[str, int] = {}
    n_params = n_bytes = 0
    for tensor in reader.tensors:
        type_name = gguf.GGMLQuantizationType(tensor.tensor_type).name
        counts[type_name] = counts.get(type_name, 0) + 1
        n_params += int(tensor.n_elements)
        n_bytes += int(tensor.n_bytes)
    metadata = {}
    for key, field_ in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        value = _scalar(field_)
        if value is not None:
            metadata[key] = value
    return GGUFInfo(
        path=str(path),
        file_bytes=Path(path).stat().st_size,
        n_params=n_params,
        tensor_bytes=n_bytes,
        bits_per_weight=8.0 * n_bytes / n_params if n_params else float("nan"),
        tensor_types=dict(sorted(counts.items())),
        metadata=metadata,
    )


def byte_ids(data: bytes) -> np.ndarray:
    """Token ids of raw bytes (``BYTE_OFFSET + b``), int32."""
    return np.frombuffer(data, dtype=np.uint8).astype(np.int32) + BYTE_OFFSET


def byte_windows(data: bytes, ctx: int, n_windows: int | None = None) -> np.ndarray:
    """Consecutive, non-overlapping windows of ``ctx`` token ids plus the byte that follows.

    Row ``i`` is ids ``[i*ctx, (i+1)*ctx]`` (``ctx + 1`` values): the model is fed the
    first ``ctx``, and position ``j``'s logits predict id ``j + 1``. Shape (n, ctx + 1).
    """
    if ctx < 2:
        raise ValueError(f"ctx must be >= 2, got {ctx}")
    fit = (len(data) - 1) // ctx
    n = fit if n_windows is None else n_windows
    if n < 1 or n > fit:
        raise ValueError(
            f"{len(data)} bytes hold {fit} windows of {ctx} (+1 next byte); asked for {n}"
        )
    ids = byte_ids(data[: n * ctx + 1])
    rows = np.arange(n)[:, None] * ctx + np.arange(ctx + 1)[None, :]
    return ids[rows]
