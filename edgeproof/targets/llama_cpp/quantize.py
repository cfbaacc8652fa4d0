"""Quantize a GGUF to a llama.cpp quantization type with llama-cpp-python's bundled library.

``llama_cpp.llama_model_quantize`` is the same code as the ``llama-quantize`` binary, so no
separate binaries are needed; on a model of a few million parameters it takes well under a
second. It loads the source file with llama.cpp's loader, which can abort the process on a
bad file, so it runs in a one-shot subprocess (``runner.run_module``) like every other
llama.cpp call, and a crash becomes ``LlamaRunError``.

Importance matrix: the bindings (0.3.36) expose ``llama_model_quantize_params.imatrix`` as
a C array of ``llama_model_imatrix_data`` {name, data, size} ended by a NULL name, so it
can be passed from Python. Accepted files: the GGUF that ``llama-imatrix`` writes
(``NAME.in_sum2`` / ``NAME.counts`` tensors; value = sum / count, 1 where count is 0, as
``llama-quantize`` does) or an ``.npz`` of tensor name -> mean squared input activation
per input column (what ``edgeproof.example.tiny_llama.importance_matrix`` computes). The
bindings cannot *compute* one (that is ``llama-imatrix``, not bundled). The legacy
``.dat`` format is not read. The IQ1/IQ2 types need an importance matrix.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.errors import ConfigError

# Quantization type name (as llama-quantize spells it) -> suffix of llama_cpp.LLAMA_FTYPE_*.
QUANT_TYPES: dict[str, str] = {
    "F32": "ALL_F32",
    "F16": "MOSTLY_F16",
    "BF16": "MOSTLY_BF16",
    **{
        name: f"MOSTLY_{name}"
        for name in (
            "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_1",
            "Q4_0", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "Q2_K_S", "IQ4_NL", "IQ4_XS",
            "IQ3_M", "IQ3_S", "IQ3_XS", "IQ3_XXS", "IQ2_M", "IQ2_S", "IQ2_XS", "IQ2_XXS",
            "IQ1_M", "IQ1_S", "TQ2_0", "TQ1_0",
        )
    },
}  # fmt: skip
NEEDS_IMATRIX = frozenset({"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_S", "IQ1_M"})


class UnknownQuantType(ConfigError, ValueError):
    """A quantization type name llama.cpp does not have."""


def quant_type(name: str) -> str:
    """The canonical (upper-case) type name; ``UnknownQuantType`` listing the known ones."""
    canonical = name.strip().upper()
    if canonical not in QUANT_TYPES:
        raise UnknownQuantType(
            f"unknown llama.cpp quantization type {name!r}; known: {', '.join(QUANT_TYPES)}"
        )
    return canonical


@dataclass(frozen=True)
class QuantizeResult:
    """A quantized file and how it was made."""

    path: Path
    qtype: str
    seconds: float
    imatrix_entries: int  # tensors with importance data (0 = none used)


def quantize(
    src: Path,
    dst: Path,
    qtype: str,
    imatrix: Path | None = None,
    threads: int = 2,
    timeout: float = 300.0,
) -> QuantizeResult:
    """Quantize ``src`` (F32/F16 GGUF) to ``qtype`` at ``dst``, in a subprocess.

    Raises ``UnknownQuantType`` for a bad name (before starting anything), and
    ``LlamaRunError`` when llama.cpp fails or dies.
    """
    from edgeproof.targets.llama_cpp.runner import run_module

    canonical = quant_type(qtype)
    if canonical in NEEDS_IMATRIX and imatrix is None:
        raise ConfigError(f"llama.cpp quantization type {canonical} needs an importance matrix")
    if not Path(src).is_file():
        raise FileNotFoundError(f"no GGUF to quantize at {src}")
    if imatrix is not None and not Path(imatrix).is_file():
        raise FileNotFoundError(f"no importance matrix at {imatrix}")
    request = {
        "src": str(Path(src).absolute()),
        "dst": str(Path(dst).absolute()),
        "qtype": canonical,
        "imatrix": str(Path(imatrix).absolute()) if imatrix else None,
        "threads": threads,
    }
    reply = run_module(
        "edgeproof.targets.llama_cpp.quantize",
        request,
        timeout,
        f"quantize {Path(src).name} to {canonical}",
    )
    return QuantizeResult(
        path=Path(dst),
        qtype=canonical,
        seconds=float(reply["seconds"]),
        imatrix_entries=int(reply["imatrix_entries"]),
    )


def load_imatrix(path: Path) -> dict[str, np.ndarray]:
    """Tensor name -> importance per input column (float32) from a .gguf or .npz file."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            data = {k: np.asarray(npz[k], dtype=np.float32).ravel() for k in npz.files}
    elif path.suffix == ".gguf":
        import gguf

        reader = gguf.GGUFReader(str(path))
        tensors = {t.name: np.asarray(t.data, dtype=np.float32) for t in reader.tensors}
        data = {}
        for key, sums in tensors.items():
            if not key.endswith(".in_sum2"):
                continue
            name = key[: -len(".in_sum2")]
            counts = tensors.get(f"{name}.counts")
            if counts is None:
                raise ValueError(f"imatrix {path.name}: {name}.in_sum2 has no {name}.counts")
            rows = sums.reshape(counts.size, -1)
            scale = counts.reshape(-1, 1)
            data[name] = np.where(scale > 0, rows / np.where(scale > 0, scale, 1), 1.0).ravel()
    else:
        raise ValueError(
            f"importance matrix must be .gguf (llama-imatrix) or .npz, got {path.name}"
        )
    bad = [k for k, v in data.items() if not np.all(np.isfinite(v))]
    if not data or bad:
        raise ValueError(f"importance matrix {path.name} is empty or not finite ({bad[:3]})")
    return data


def _imatrix_param(data: dict[str, np.ndarray]) -> tuple[Any, list[Any]]:
    """A NULL-terminated ``llama_model_imatrix_data`` array, and the buffers it points into."""
    import ctypes

    import llama_cpp

    entries = (llama_cpp.llama_model_imatrix_data * (len(data) + 1))()
    keep: list[Any] = [entries]
    for i, (name, values) in enumerate(sorted(data.items())):
        buf = np.ascontiguousarray(values, dtype=np.float32)
        cname = ctypes.c_char_p(name.encode())
        keep += [buf, cname]
        entries[i].name = cname.value
        entries[i].data = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        entries[i].size = buf.size
    pointer = ctypes.cast(entries, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
    return pointer, keep


def _quantize_here(req: dict[str, Any]) -> dict[str, Any]:
    """Child side: call ``llama_model_quantize`` (never call this in the pipeline process)."""
    import ctypes

    import llama_cpp

    from edgeproof.runtime.oneshot import ChildFailure, phase
    from edgeproof.targets.llama_cpp.worker import LlamaLog

    log = LlamaLog()
    log.install()
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{QUANT_TYPES[req['qtype']]}")
    params.nthread = int(req["threads"])
    keep: list[Any] = []
    entries = 0
    if req.get("imatrix"):
        phase("imatrix")
        data = load_imatrix(Path(req["imatrix"]))
        params.imatrix, keep = _imatrix_param(data)
        entries = len(data)
    dst = Path(req["dst"])
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    phase("quantize")
    start = time.perf_counter()
    code = llama_cpp.llama_model_quantize(
        req["src"].encode(), str(tmp).encode(), ctypes.byref(params)
    )
    seconds = time.perf_counter() - start
    del keep
    if code != 0:
        tmp.unlink(missing_ok=True)
        raise ChildFailure(f"llama_model_quantize returned {code}{log.said()}")
    os.replace(tmp, dst)
    return {"seconds": seconds, "imatrix_entries": entries}


if __name__ == "__main__":
    import sys

    from edgeproof.runtime.oneshot import serve

    sys.exit(serve(_quantize_here))
