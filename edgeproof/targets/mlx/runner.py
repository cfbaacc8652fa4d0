"""Parent side of the MLX subprocesses: quantize, logits and speed runs, one process each.

Every MLX load happens in a fresh one-shot subprocess (``python -m edgeproof.targets.mlx.worker
REQUEST RESULT``, ``edgeproof.runtime.oneshot``): a file that makes MLX fail or crash fails that
candidate with a one-line ``MlxRunError`` (phase, signal or exit code, the worker's own
error, RSS trail), and a hang is killed at the deadline.

Threads: the usual OpenMP / BLAS variables are set to ``threads`` for each process. The
Linux CPU wheel (mlx-cpu 0.32.4) bundles a reference BLAS, whose matmuls run on one thread
whatever they say (measured: CPU time at most wall time with 1 and with 2), so on Linux
``threads`` is recorded but does not change MLX's speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.language_model import windows_file
from edgeproof.errors import MeasurementError
from edgeproof.measure.token_harness import LogitsRun
from edgeproof.runtime import oneshot

WORKER = "edgeproof.targets.mlx.worker"
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class MlxRunError(MeasurementError):
    """An MLX subprocess crashed, hung or reported an error (one-line reason)."""


def run_worker(request: dict[str, Any], timeout: float, label: str, threads: int) -> dict[str, Any]:
    """Run the MLX worker once on ``request``; its result dict, or ``MlxRunError``."""
    env = dict.fromkeys(_THREAD_VARIABLES, str(threads))
    env["HF_HUB_OFFLINE"] = "1"  # a folder is loaded, never a hub id
    return oneshot.run_module(
        WORKER, request, timeout=timeout, label=label, error=MlxRunError, env=env
    )


@dataclass(frozen=True)
class MlxSpeedRun:
    """llama-bench style timings of one MLX process: seconds per pp repetition and per
    generated token of each tg repetition."""

    pp_tokens: int
    tg_tokens: int
    pp_seconds: tuple[float, ...]
    tg_token_seconds: tuple[tuple[float, ...], ...]  # [repetition][token]
    threads: int
    load_seconds: float
    rss_after_load_mb: float | None
    peak_rss_mb: float | None
    mlx_peak_memory_mb: float | None
    device: str
    versions: dict[str, str]

    @property
    def tg_seconds(self) -> tuple[float, ...]:
        """Seconds per tg repetition (llama-bench's tg unit)."""
        return tuple(sum(rep) for rep in self.tg_token_seconds)


@dataclass(frozen=True)
class QuantizeRun:
    """What one MLX quantization produced."""

    path: Path
    seconds: float
    bits_per_weight: float
    quantized_layers: int
    float_layers: int  # left in float: input width not a multiple of the group size
    versions: dict[str, str]


def quantize_folder(
    model: Path,
    out: Path,
    *,
    bits: int,
    group_size: int,
    mixed: str | None = None,
    dtype: str | None = None,
    device: str = "cpu",
    threads: int = 2,
    timeout: float = 600.0,
) -> QuantizeRun:
    """Quantize the folder ``model`` into the new folder ``out`` (which must not exist);
    ``dtype``: cast the float weights to it first (None: keep the stored precision)."""
    request = {
        "op": "quantize",
        "model": str(Path(model).absolute()),
        "out": str(Path(out).absolute()),
        "bits": bits,
        "group_size": group_size,
        "mixed": mixed,
        "dtype": dtype,
        "device": device,
    }
    label = f"quantize {Path(model).name} to {mixed or f'{bits}-bit'} g{group_size}"
    reply = run_worker(request, timeout, label, threads)
    return QuantizeRun(
        path=Path(out),
        seconds=float(reply["seconds"]),
        bits_per_weight=float(reply["bits_per_weight"]),
        quantized_layers=int(reply["quantized_layers"]),
        float_layers=int(reply["float_layers"]),
        versions=dict(reply["versions"]),
    )


def compute_logits(
    model: Path,
    windows: np.ndarray,
    out: Path,
    *,
    device: str = "cpu",
    threads: int = 2,
    timeout: float = 300.0,
    label: str | None = None,
) -> LogitsRun:
    """Write the folder ``model``'s logits on the second half of each token window to ``out``
    (float32 .npy, (n, ctx - ctx // 2, vocab)); ``windows``: (n, ctx + 1) token ids.
    ``label`` names the model in an error (default: the folder's name)."""
    with windows_file(windows) as windows_path:
        request = {
            "op": "measure",
            "model": str(Path(model).absolute()),
            "device": device,
            "windows": windows_path,
            "logits": {"out": str(Path(out).absolute())},
        }
        reply = run_worker(request, timeout, f"{label or Path(model).name} logits", threads)
    return LogitsRun.from_reply(out, reply)


def measure_speed(
    model: Path,
    *,
    pp_tokens: int = 128,
    tg_tokens: int = 32,
    warmup: int = 1,
    repetitions: int = 5,
    device: str = "cpu",
    threads: int = 2,
    windows: np.ndarray | None = None,
    timeout: float = 300.0,
    label: str | None = None,
) -> MlxSpeedRun:
    """Time prompt processing and generation of the folder ``model`` in a fresh process;
    the tokens come from ``windows`` when given."""
    if min(pp_tokens, tg_tokens, repetitions) < 1 or warmup < 0:
        raise ValueError("pp_tokens, tg_tokens and repetitions must be >= 1, warmup >= 0")
    with windows_file(windows) as windows_path:
        request = {
            "op": "measure",
            "model": str(Path(model).absolute()),
            "device": device,
            "windows": windows_path,
            "speed": {
                "pp_tokens": pp_tokens,
                "tg_tokens": tg_tokens,
                "warmup": warmup,
                "repetitions": repetitions,
            },
        }
        reply = run_worker(request, timeout, f"{label or Path(model).name} speed", threads)
    return MlxSpeedRun(
        pp_tokens=pp_tokens,
        tg_tokens=tg_tokens,
        pp_seconds=tuple(reply["pp_seconds"]),
        tg_token_seconds=tuple(tuple(rep) for rep in reply["tg_token_seconds"]),
        threads=threads,
        load_seconds=float(reply["load_seconds"]),
        rss_after_load_mb=reply.get("rss_after_load_mb"),
        peak_rss_mb=reply.get("peak_rss_mb"),
        mlx_peak_memory_mb=reply.get("mlx_peak_memory_mb"),
        device=str(reply.get("device", device)),
        versions=dict(reply.get("versions", {})),
    )
