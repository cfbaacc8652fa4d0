"""A Hugging Face-layout language model folder (config.json + model*.safetensors): check it
without loading it, and write one from numpy weights.

mlx-lm loads such a folder with ``mlx_lm.utils.load_model``, but a bad file there can fail
deep inside MLX (or crash it), and some config mistakes load without any error and give
wrong logits. So the folder is checked here first, in pure Python, and every problem
becomes a one-line ``InputError``:

- ``config.json`` is a JSON object of a llama-like architecture (``model_type`` llama or
  mistral, both mlx-lm's ``models.llama``), with positive integer sizes; no custom
  ``model_file`` (that would run code from the folder).
- mlx-lm's llama reads ``rope_theta`` at the top level only (default 10000); transformers
  5 writes it inside ``rope_parameters`` only. The worker passes it on (``mlx_overrides``);
  a rope type other than the default, or two thetas that differ, are refused rather than
  silently giving other logits.
- mlx-lm ties the output to the embeddings when ``tie_word_embeddings`` is absent,
  transformers does not: a folder with an ``lm_head.weight`` must say which it means.
- Each safetensors file: 8-byte little-endian header length, a JSON header whose tensors
  have known dtypes, shapes matching their byte ranges, and byte ranges that tile the data
  exactly (so a truncated or padded file is caught). Every tensor the architecture needs
  is there with its shape, and nothing else (mlx-lm loads strictly).

``write_hf_folder`` writes config.json and one model.safetensors (numpy only, no
transformers or safetensors package needed) into a temporary folder, then renames it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.errors import InputError

CONFIG = "config.json"
WEIGHTS_GLOB = "model*.safetensors"
LLAMA_LIKE = ("llama", "mistral")  # model types mlx-lm runs with its models.llama
FLOAT_DTYPES = ("F16", "BF16", "F32")
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit

DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip
_NUMPY_DTYPES = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "U32": np.uint32}
_QUANT_SUFFIXES = (".scales", ".biases")
_IGNORED = ("rotary_emb.inv_freq",)  # precomputed rope frequencies; mlx-lm drops them


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a safetensors header."""

    dtype: str
    shape: tuple[int, ...]
    nbytes: int


@dataclass(frozen=True)
class HFModelInfo:
    """What a checked Hugging Face-layout folder holds."""

    folder: Path
    config: dict[str, Any]
    weight_files: tuple[Path, ...]
    tensors: dict[str, TensorInfo]
    n_params: int  # parameters of the architecture (unpacked, whatever the storage)
    tensor_bytes: int
    quantization: dict[str, Any] | None  # mlx-lm's "quantization" section, if quantized
    dtype_counts: dict[str, int] = field(default_factory=dict)  # safetensors dtype -> tensors

    @property
    def bits_per_weight(self) -> float:
        """8 * tensor bytes / parameters (scales and biases of quantized layers included)."""
        return 8.0 * self.tensor_bytes / self.n_params

    @property
    def precision(self) -> str:
        """``f16``/``bf16``/``f32`` for a float model, ``q4-g64`` / ``mixed`` when quantized."""
        if self.quantization:
            bits, group = self.quantization.get("bits"), self.quantization.get("group_size")
            per_layer = any(isinstance(v, dict) for v in self.quantization.values())
            return "mixed" if per_layer else f"q{bits}-g{group}"
        floats = {k: v for k, v in self.dtype_counts.items() if k in FLOAT_DTYPES}
        return max(floats.items(), key=lambda kv: kv[1])[0].lower() if floats else "unknown"

    @property
    def files(self) -> tuple[Path, ...]:
        """The files that make the model: weights first, then config.json (and the index)."""
        index = self.folder / "model.safetensors.index.json"
        extra = (index,) if index.is_file() else ()
        return (*self.weight_files, self.folder / CONFIG, *extra)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]


def read_safetensors_header(path: Path) -> dict[str, TensorInfo]:
    """The tensor table of a safetensors file; ``ValueError`` saying what is wrong with it."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ValueError(f"file of {size} bytes has no header")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise ValueError(f"header length {n} does not fit a file of {size} bytes")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"header is not JSON ({_first_line(exc)})") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    tensors: dict[str, TensorInfo] = {}
    ranges: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"tensor {name!r} lacks dtype, shape or data_offsets") from None
        if dtype not in DTYPE_BYTES:
            raise ValueError(f"tensor {name!r} has unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ValueError(f"tensor {name!r} has a bad shape {shape!r}")
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end):
            raise ValueError(f"tensor {name!r} has bad data_offsets {[begin, end]}")
        nbytes = math.prod(shape) * DTYPE_BYTES[dtype]
        if end - begin != nbytes:
            raise ValueError(
                f"tensor {name!r} {dtype} {shape} needs {nbytes} bytes, its offsets span "
                f"{end - begin}"
            )
        tensors[name] = TensorInfo(dtype, tuple(shape), nbytes)
        ranges.append((begin, end, name))
    data = size - 8 - n
    position = 0
    for begin, end, name in sorted(ranges):
        if begin != position:
            raise ValueError(f"tensor {name!r} starts at byte {begin}, expected {position}")
        position = end
    if position != data:
        state = "truncated" if position > data else "has trailing bytes"
        raise ValueError(f"file {state}: tensors need {position} data bytes, it has {data}")
    return tensors


def _positive_int(config: Mapping[str, Any], key: str) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{key} must be a positive integer, got {value!r}")
    return value


def expected_tensors(config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a llama-architecture model with this config (HF names)."""
    hidden = _positive_int(config, "hidden_size")
    layers = _positive_int(config, "num_hidden_layers")
    heads = _positive_int(config, "num_attention_heads")
    inter = _positive_int(config, "intermediate_size")
    vocab = _positive_int(config, "vocab_size")
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    if not isinstance(kv_heads, int) or kv_heads < 1 or heads % kv_heads:
        raise ValueError(f"num_attention_heads {heads} must divide by num_key_value_heads")
    if not isinstance(head_dim, int) or head_dim < 2 or head_dim % 2:
        raise ValueError(f"head dimension {head_dim!r} must be an even integer")
    q, kv = heads * head_dim, kv_heads * head_dim
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (vocab, hidden),
        "model.norm.weight": (hidden,),
    }
    if config.get("tie_word_embeddings") is False:
        shapes["lm_head.weight"] = (vocab, hidden)
    linear = {
        "self_attn.q_proj": (q, hidden, config.get("attention_bias", False)),
        "self_attn.k_proj": (kv, hidden, config.get("attention_bias", False)),
        "self_attn.v_proj": (kv, hidden, config.get("attention_bias", False)),
        "self_attn.o_proj": (hidden, q, config.get("attention_bias", False)),
        "mlp.gate_proj": (inter, hidden, config.get("mlp_bias", False)),
        "mlp.up_proj": (inter, hidden, config.get("mlp_bias", False)),
        "mlp.down_proj": (hidden, inter, config.get("mlp_bias", False)),
    }
    for i in range(layers):
        prefix = f"model.layers.{i}."
        shapes[prefix + "input_layernorm.weight"] = (hidden,)
        shapes[prefix + "post_attention_layernorm.weight"] = (hidden,)
        for name, (out, inp, bias) in linear.items():
            shapes[f"{prefix}{name}.weight"] = (out, inp)
            if bias:
                shapes[f"{prefix}{name}.bias"] = (out,)
    return shapes


def check_config(config: Any) -> None:
    """``ValueError`` unless ``config`` is a llama-like config mlx-lm runs as transformers
    would."""
    if not isinstance(config, dict):
        raise ValueError("is not a JSON object")
    model_type = config.get("model_type")
    if model_type not in LLAMA_LIKE:
        raise ValueError(f"model_type {model_type!r} is not one of {', '.join(LLAMA_LIKE)}")
    if "model_file" in config:
        raise ValueError("asks to run custom model code (model_file); refused")
    eps = config.get("rms_norm_eps")
    if not isinstance(eps, int | float) or isinstance(eps, bool) or not 0 < eps < 1:
        raise ValueError(f"rms_norm_eps must be a number in (0, 1), got {eps!r}")
    expected_tensors(config)  # raises on bad sizes
    rope = config.get("rope_parameters")
    if rope is not None:
        if not isinstance(rope, dict):
            raise ValueError("rope_parameters is not an object")
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"rope type {rope.get('rope_type')!r} is not supported (default)")
        theta, top = rope.get("rope_theta"), config.get("rope_theta")
        if not isinstance(theta, int | float | None) or not isinstance(top, int | float | None):
            raise ValueError("rope_theta must be a number")
        if theta is not None and top is not None and not math.isclose(theta, top):
            raise ValueError(f"rope_parameters.rope_theta {theta} differs from rope_theta {top}")
    if config.get("rope_scaling"):
        raise ValueError("rope_scaling is not supported")


def mlx_overrides(config: Mapping[str, Any]) -> dict[str, Any]:
    """Config values mlx-lm must be given to read a checked config as transformers does:
    ``rope_theta`` when only ``rope_parameters`` holds it."""
    rope = config.get("rope_parameters") or {}
    if "rope_theta" not in config and rope.get("rope_theta") is not None:
        return {"rope_theta": float(rope["rope_theta"])}
    return {}


def check_hf_model(folder: Path, *, allow_quantized: bool = False) -> HFModelInfo:
    """Check a Hugging Face-layout llama folder; ``InputError`` with one line naming the
    problem. ``allow_quantized``: accept an MLX-quantized folder (a candidate)."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"model folder not found: {folder}")
    if not folder.is_dir():
        raise InputError(f"model path must be a folder with {CONFIG} and safetensors: {folder}")
    config_path = folder / CONFIG
    if not config_path.is_file():
        raise InputError(f"no {CONFIG} in the model folder: {folder}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        check_config(config)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise InputError(f"{CONFIG} {_first_line(exc)}: {config_path}") from None
    quantization = config.get("quantization") or config.get("quantization_config")
    if quantization and not allow_quantized:
        raise InputError(f"model is already quantized ({CONFIG} has quantization): {folder}")
    if quantization and not isinstance(quantization, dict):
        raise InputError(f"{CONFIG} quantization is not an object: {config_path}")
    files = tuple(sorted(folder.glob(WEIGHTS_GLOB)))
    if not files:
        raise InputError(f"no {WEIGHTS_GLOB} in the model folder: {folder}")
    tensors: dict[str, TensorInfo] = {}
    for path in files:
        try:
            table = read_safetensors_header(path)
        except (OSError, ValueError) as exc:
            raise InputError(
                f"{path.name} is not a valid safetensors file ({exc}): {path}"
            ) from None
        if dup := sorted(set(table) & set(tensors)):
            raise InputError(f"tensor {dup[0]!r} is stored twice: {path}")
        tensors.update(table)
    expected = expected_tensors(config)
    problem = _tensor_problem(config, expected, tensors, bool(quantization))
    if problem:
        raise InputError(f"{problem}: {folder}")
    counts: dict[str, int] = {}
    for info in tensors.values():
        counts[info.dtype] = counts.get(info.dtype, 0) + 1
    return HFModelInfo(
        folder=folder,
        config=config,
        weight_files=files,
        tensors=tensors,
        n_params=sum(math.prod(s) for s in expected.values()),
        tensor_bytes=sum(t.nbytes for t in tensors.values()),
        quantization=quantization or None,
        dtype_counts=dict(sorted(counts.items())),
    )


def _tensor_problem(
    config: Mapping[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    tensors: Mapping[str, TensorInfo],
    quantized: bool,
) -> str | None:
    """What is wrong with the tensor table against the architecture, or None."""
    if "lm_head.weight" in tensors and "tie_word_embeddings" not in config:
        return (
            "weights have lm_head.weight but config.json does not set tie_word_embeddings "
            "(mlx-lm would tie it, transformers would not)"
        )
    names = {n for n in tensors if not n.endswith(_IGNORED)}
    packed = {n.rsplit(".", 1)[0] for n in names if quantized and n.endswith(_QUANT_SUFFIXES)}
    allowed = set(expected) | {f"{p}{s}" for p in packed for s in _QUANT_SUFFIXES}
    if missing := sorted(set(expected) - names):
        return f"tensor {missing[0]!r} is missing ({len(missing)} missing)"
    if extra := sorted(names - allowed):
        return f"unexpected tensor {extra[0]!r} for a {config['model_type']} model"
    for name, shape in expected.items():
        info = tensors[name]
        if name.rsplit(".", 1)[0] in packed:
            continue  # a quantized layer: uint32-packed weight, shape checked by MLX
        if info.shape != shape:
            return f"tensor {name!r} has shape {list(info.shape)}, expected {list(shape)}"
        if info.dtype not in FLOAT_DTYPES:
            return f"tensor {name!r} has dtype {info.dtype}, expected one of {FLOAT_DTYPES}"
    return None


def write_safetensors(
    path: Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write ``tensors`` (float16/float32/int32/uint32 numpy arrays) as a safetensors file."""
    codes = {np.dtype(v): k for k, v in _NUMPY_DTYPES.items()}
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    arrays, offset = [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        if array.dtype not in codes:
            raise ValueError(f"{name}: dtype {array.dtype} cannot be written")
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        header[name] = {
            "dtype": codes[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        arrays.append(array)
        offset += array.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as the library writes it
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for array in arrays:
            fh.write(array.tobytes())
    return path


def llama_config(
    *,
    vocab_size: int,
    hidden_size: int,
    intermediate_size: int,
    num_hidden_layers: int,
    num_attention_heads: int,
    num_key_value_heads: int,
    max_position_embeddings: int,
    rms_norm_eps: float = 1e-5,
    rope_theta: float = 10000.0,
    dtype: str = "float16",
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
) -> dict[str, Any]:
    """A ``LlamaForCausalLM`` config.json that transformers and mlx-lm read alike: untied
    output, no biases, SiLU, rotate-half rope with ``rope_theta`` (top level for mlx-lm,
    ``rope_parameters`` for transformers 5)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_key_value_heads,
        "head_dim": hidden_size // num_attention_heads,
        "max_position_embeddings": max_position_embeddings,
        "rms_norm_eps": rms_norm_eps,
        "rope_theta": rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta},
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
        "dtype": dtype,
        "torch_dtype": dtype,
    }


def write_hf_folder(
    folder: Path, config: Mapping[str, Any], weights: Mapping[str, np.ndarray], dtype: str
) -> Path:
    """Write config.json and model.safetensors (every tensor cast to ``dtype``, "float16" or
    "float32") into ``folder``, replacing it; checked with ``check_hf_model`` before the
    rename, so a folder that is there is a valid one."""
    folder = Path(folder)
    np_dtype = {"float16": np.float16, "float32": np.float32}[dtype]
    tmp = folder.with_name(f".{folder.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        (tmp / CONFIG).write_text(json.dumps(dict(config), indent=2) + "\n", encoding="utf-8")
        cast = {k: np.asarray(v).astype(np_dtype) for k, v in weights.items()}
        write_safetensors(tmp / "model.safetensors", cast, {"format": "pt"})
        check_hf_model(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


def link_or_copy(files: Iterable[Path], dest: Path) -> tuple[Path, ...]:
    """Hard links (or copies across file systems) of ``files`` in folder ``dest``."""
    out = []
    for src in files:
        dst = dest / src.name
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
        out.append(dst)
    return tuple(out)
