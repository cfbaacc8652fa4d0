"""The MLX subprocess: quantize one Hugging Face-layout folder, or load one and write its
logits on held-out token windows and time it.

Run as ``python -m edgeproof.targets.mlx.worker REQUEST.json RESULT.json``
(``edgeproof.targets.mlx.runner`` does it, through ``edgeproof.runtime.oneshot``). MLX and
mlx-lm are imported only here: a bad file can fail inside MLX's native code, and
``mlx_lm.utils`` lowers the process's open-file limit when imported. Before each phase the
worker prints ``[edgeproof] phase: NAME`` to stderr, so the parent can say during which
phase the process died.

MLX is lazy: nothing is computed until ``mx.eval``, so every timed region ends with one.

- Logits mode: each window's first ``ctx`` ids in one forward pass without a cache; the
  second half of the positions is kept (as ``llama-perplexity --kl-divergence`` scores),
  as float32 (n, ctx - ctx // 2, vocab).
- Speed mode, timed like ``llama-bench``: pp = one prompt of N ids from an empty KV cache,
  evaluated as mlx-lm's own prefill does (the cache states, not the unused per-position
  logits); tg = M single-id steps from an empty cache, each step's logits evaluated
  (``perf_counter_ns`` around the model call and its ``mx.eval``; tg is timed per token).
  Warm-up repetitions first, then R timed repetitions of each.
- Quantize mode: optionally cast the float weights to ``dtype`` first (what
  ``mlx_lm.convert --dtype`` does; the scales and biases, and so the activations, then
  have that dtype), then ``mlx_lm.utils.quantize_model`` (affine; all layers at ``bits``,
  or one of mlx-lm's mixed recipes through its predicate), then ``save_model`` +
  ``save_config``.
  Layers whose input width does not divide by the group size stay in float (mlx-lm's
  rule); their count is returned.

Peak RSS is the kernel's high-water mark (VmHWM) of this process; MLX's own allocator peak
(``mx.get_peak_memory``) is returned beside it.

Start-up: ``import mlx_lm`` runs its package ``__init__``, which imports the generation and
tokenizer code, and with it transformers and torch: ~10 s per process on a busy 2-core
runner, for nothing (ids are fed directly; no tokenizer is used). ``import_mlx_lm``
registers the package without running its ``__init__`` and a tokenizer module that
refuses to load, so ``mlx_lm.utils`` (the real loader, quantizer and saver) imports in
~1 s. If that fails (another mlx-lm layout), it falls back to the normal import.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import platform
import sys
import time
import types
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.runtime.oneshot import ChildFailure, phase, serve
from edgeproof.runtime.proc_status import process_status_mb

SPEED_BYTE_OFFSET = 3  # the byte-level example's id of byte b is 3 + b


def _no_tokenizer(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("edgeproof's MLX worker feeds token ids and loads no tokenizer")


def import_mlx_lm() -> types.ModuleType:
    """``mlx_lm.utils`` without the package ``__init__`` (see the module docstring)."""
    if "mlx_lm.utils" in sys.modules:
        return sys.modules["mlx_lm.utils"]
    spec = importlib.util.find_spec("mlx_lm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("mlx-lm is not installed")
    package = types.ModuleType("mlx_lm")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    tokenizer = types.ModuleType("mlx_lm.tokenizer_utils")
    tokenizer.TokenizerWrapper = type("TokenizerWrapper", (), {})  # type: ignore[attr-defined]
    tokenizer.load = _no_tokenizer  # type: ignore[attr-defined]
    stubs = {"mlx_lm": package, "mlx_lm.tokenizer_utils": tokenizer}
    sys.modules.update(stubs)
    try:
        return importlib.import_module("mlx_lm.utils")
    except ImportError:
        for name in [m for m in sys.modules if m == "mlx_lm" or m.startswith("mlx_lm.")]:
            del sys.modules[name]
        return importlib.import_module("mlx_lm.utils")


def versions() -> dict[str, str]:
    """Installed mlx and mlx-lm versions."""
    out = {}
    for dist in ("mlx", "mlx-lm"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def set_device(name: str) -> str:
    """Make ``name`` ("cpu" or "gpu") MLX's default device; returns its description."""
    import mlx.core as mx

    device = {"cpu": mx.cpu, "gpu": mx.gpu}[name]
    mx.set_default_device(device)
    return str(mx.default_device())


def load(folder: str) -> tuple[Any, dict[str, Any]]:
    """``mlx_lm.utils.load_model`` on a folder (weights evaluated, not lazy), with the
    config overrides mlx-lm needs to read it as transformers does (``mlx_overrides``)."""
    from edgeproof.targets.mlx.hf_model import CONFIG, mlx_overrides

    utils = import_mlx_lm()
    with open(Path(folder) / CONFIG, encoding="utf-8") as fh:
        overrides = mlx_overrides(json.load(fh))
    return utils.load_model(Path(folder), lazy=False, strict=True, model_config=overrides)


def window_logits(model: Any, windows: np.ndarray) -> np.ndarray:
    """Logits of the second half of each window: (n, ctx - ctx // 2, vocab), float32."""
    import mlx.core as mx

    ctx = windows.shape[1] - 1
    first = ctx // 2
    rows = []
    for row in windows:
        logits = model(mx.array(row[None, :ctx].astype(np.int32)))[0, first:ctx]
        logits = logits.astype(mx.float32)
        mx.eval(logits)
        rows.append(np.array(logits, copy=True))
    return np.stack(rows)


def speed_ids(windows: np.ndarray | None, n: int) -> list[int]:
    """``n`` token ids for timing: held-out tokens when given, else a fixed byte pattern."""
    if windows is not None and windows.size >= n:
        return windows.reshape(-1)[:n].astype(int).tolist()
    return [SPEED_BYTE_OFFSET + (32 + 7 * i) % 95 for i in range(n)]


def _cache(model: Any) -> list[Any]:
    """An empty KV cache for ``model`` (mlx-lm's ``make_prompt_cache``)."""
    import_mlx_lm()
    from mlx_lm.models.cache import make_prompt_cache

    return make_prompt_cache(model)


def time_pp(model: Any, prompt: list[int]) -> float:
    """Seconds to prefill ``prompt`` as one batch into an empty KV cache."""
    import mlx.core as mx

    cache = _cache(model)
    ids = mx.array([prompt], dtype=mx.int32)
    mx.eval(ids)
    start = time.perf_counter_ns()
    model(ids, cache=cache)
    mx.eval([c.state for c in cache])
    return (time.perf_counter_ns() - start) / 1e9


def time_tg(model: Any, tokens: list[int]) -> list[float]:
    """Seconds per token to decode ``tokens`` one at a time from an empty KV cache."""
    import mlx.core as mx

    cache = _cache(model)
    steps = [mx.array([[t]], dtype=mx.int32) for t in tokens]
    mx.eval(steps)
    per_token = []
    for ids in steps:
        start = time.perf_counter_ns()
        logits = model(ids, cache=cache)
        mx.eval(logits)
        per_token.append((time.perf_counter_ns() - start) / 1e9)
    return per_token


def load_windows(path: str) -> np.ndarray:
    """Token windows (n, ctx + 1) from a .npy file (never pickled objects)."""
    windows = np.load(path, allow_pickle=False)
    if windows.ndim != 2 or windows.shape[1] < 3 or windows.dtype.kind not in "iu":
        raise ValueError(f"token windows must be a 2-D integer array, got {windows.shape}")
    return windows


def cast_floats(model: Any, config: dict[str, Any], dtype: str) -> None:
    """Cast every floating parameter of ``model`` to ``dtype`` ("float32", "float16",
    "bfloat16") and record it in ``config`` (its ``dtype`` / ``torch_dtype``)."""
    import mlx.core as mx
    from mlx.utils import tree_map

    target = getattr(mx, dtype)

    def cast(value: Any) -> Any:
        return value.astype(target) if mx.issubdtype(value.dtype, mx.floating) else value

    model.update(tree_map(cast, model.parameters()))
    for key in ("dtype", "torch_dtype"):
        if key in config:
            config[key] = dtype


def quantize(req: dict[str, Any]) -> dict[str, Any]:
    """Quantize ``req["model"]`` into the (new) folder ``req["out"]``; its figures."""
    import mlx.core as mx

    utils = import_mlx_lm()
    phase("load")
    model, config = load(req["model"])
    bits, group_size, mixed = int(req["bits"]), int(req["group_size"]), req.get("mixed")
    if req.get("dtype"):
        cast_floats(model, config, str(req["dtype"]))
    predicate = None
    if mixed:
        from mlx_lm.convert import mixed_quant_predicate_builder

        predicate = mixed_quant_predicate_builder(mixed, model, group_size)
    phase("quantize")
    start = time.perf_counter()
    model, qconfig = utils.quantize_model(
        model, config, group_size=group_size, bits=bits, quant_predicate=predicate
    )
    mx.eval(model.parameters())
    seconds = time.perf_counter() - start
    quantized = skipped = 0
    for _, module in model.named_modules():
        if hasattr(module, "scales"):
            quantized += 1
        elif hasattr(module, "to_quantized"):
            skipped += 1
    if quantized == 0:
        raise ChildFailure(
            f"no layer could be quantized with group size {group_size} (input widths must "
            "divide by it)"
        )
    phase("save")
    out = Path(req["out"])
    utils.save_model(out, model)
    utils.save_config(qconfig, out / "config.json")
    return {
        "seconds": seconds,
        "bits_per_weight": float(utils.compute_bits_per_weight(model)),
        "quantized_layers": quantized,
        "float_layers": skipped,
    }


def measure(req: dict[str, Any]) -> dict[str, Any]:
    """Logits and/or speed of ``req["model"]`` (its ``logits`` / ``speed`` sections)."""
    import mlx.core as mx

    result: dict[str, Any] = {}
    windows = load_windows(req["windows"]) if req.get("windows") else None
    phase("load")
    start = time.perf_counter()
    model, config = load(req["model"])
    result["load_seconds"] = time.perf_counter() - start
    result["rss_after_load_mb"] = process_status_mb("self", "VmRSS")
    result["n_vocab"] = int(config["vocab_size"])
    if "logits" in req:
        if windows is None:
            raise ValueError("logits mode needs held-out token windows")
        phase("logits")
        start = time.perf_counter()
        logits = window_logits(model, windows)
        result["logits_seconds"] = time.perf_counter() - start
        if not np.all(np.isfinite(logits)):
            raise ValueError("model produced non-finite logits")
        out = Path(req["logits"]["out"])
        tmp = out.with_name(f".{out.name}.tmp.npy")
        np.save(tmp, logits, allow_pickle=False)
        tmp.replace(out)
        result["logits_shape"] = list(logits.shape)
    if "speed" in req:
        spec = req["speed"]
        prompt = speed_ids(windows, int(spec["pp_tokens"]))
        gen = speed_ids(windows, int(spec["tg_tokens"]))
        phase("warmup")
        for _ in range(int(spec["warmup"])):
            time_pp(model, prompt)
            time_tg(model, gen)
        phase("speed")
        reps = int(spec["repetitions"])
        result["pp_seconds"] = [time_pp(model, prompt) for _ in range(reps)]
        result["tg_token_seconds"] = [time_tg(model, gen) for _ in range(reps)]
    result["mlx_peak_memory_mb"] = mx.get_peak_memory() / 1e6
    return result


def run(req: dict[str, Any]) -> dict[str, Any]:
    """Do what ``req`` asks (``op`` "quantize" or "measure"); returns the result."""
    result: dict[str, Any] = {"versions": versions(), "machine": platform.machine()}
    try:
        result["device"] = set_device(str(req.get("device", "cpu")))
        if req.get("op") == "quantize":
            result.update(quantize(req))
        else:
            result.update(measure(req))
    except ChildFailure:
        raise
    except Exception as exc:
        raise ChildFailure(f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
    result["peak_rss_mb"] = process_status_mb("self", "VmHWM")
    return result


if __name__ == "__main__":
    sys.exit(serve(run))
