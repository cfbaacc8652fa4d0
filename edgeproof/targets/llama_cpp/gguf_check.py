"""The opening check of a GGUF model: readable by the pure-Python gguf reader, not truncated.

Run before any work, so a corrupt or truncated file is a one-line refusal with nothing
written (llama.cpp itself would abort the process on some of these files).
"""

from __future__ import annotations

from pathlib import Path

from edgeproof.errors import InputError


def check_gguf(path: Path) -> dict[str, object]:
    """A readable llama GGUF's facts (``gguf_info``); ``InputError`` naming what is wrong."""
    from edgeproof.targets.llama_cpp.gguf_model import gguf_info

    if path.is_dir():
        raise InputError(f"model path is a directory, not a file: {path}")
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    try:
        info = gguf_info(path)
    except Exception as exc:  # the gguf reader raises several types on a bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise InputError(f"model is not a readable GGUF file ({first}): {path}") from None
    if info.n_params == 0 or info.tensor_bytes > info.file_bytes:
        raise InputError(f"GGUF has no tensors or is truncated: {path}")
    return {
        "architecture": info.metadata.get("general.architecture"),
        "file_type": _file_type(info.tensor_types),
        "n_params": info.n_params,
        "bits_per_weight": round(info.bits_per_weight, 3),
    }


def _file_type(tensor_types: dict[str, int]) -> str:
    """The dominant tensor type (e.g. F16), as llama.cpp names a file's type."""
    return max(tensor_types.items(), key=lambda kv: kv[1])[0] if tensor_types else "unknown"
