"""Parent side of the llama.cpp subprocesses: start, time out, kill, explain a death.

llama.cpp aborts the whole process on some bad files (GGML_ASSERT) instead of returning an
error, and a native crash cannot be caught in Python. So every GGUF load, every quantization
and every evaluation runs in a fresh one-shot subprocess (``python -m MODULE REQUEST RESULT``,
one JSON file each way, ``edgeproof.runtime.oneshot``). That samples the child's RSS while it runs,
enforces a deadline (a hang kills the whole process group), and turns any failure into
``LlamaRunError`` with a one-line reason: the
phase it was in, the signal or exit code, the last meaningful stderr line (a GGML_ASSERT
message, a llama.cpp error) and the RSS trail. The candidate fails with that reason; the
pipeline goes on with the others.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.language_model import windows_file
from edgeproof.errors import MeasurementError
from edgeproof.measure.token_harness import LogitsRun
from edgeproof.runtime import oneshot

_SIGNAL_HINTS = {signal.SIGABRT: "llama.cpp abort, e.g. a failed GGML_ASSERT"}


class LlamaRunError(MeasurementError):
    """A llama.cpp subprocess crashed, aborted, hung or reported an error (one-line reason)."""


def run_module(module: str, request: dict[str, Any], timeout: float, label: str) -> dict[str, Any]:
    """Run ``python -m module REQUEST RESULT`` once; its result dict, or ``LlamaRunError``.

    ``GGML_NO_BACKTRACE=1`` stops ggml from attaching a debugger to print a backtrace when it
    aborts; its backtrace lines are not taken for the reason.
    """
    return oneshot.run_module(
        module,
        request,
        timeout=timeout,
        label=label,
        error=LlamaRunError,
        env={"GGML_NO_BACKTRACE": "1"},
        noise=(r"ggml_print_backtrace",),
        signal_hints=_SIGNAL_HINTS,
    )


@dataclass(frozen=True)
class SpeedRun:
    """llama-bench style timings: seconds per repetition of pp (prompt) and per generated
    token of each tg repetition."""

    pp_tokens: int
    tg_tokens: int
    pp_seconds: tuple[float, ...]
    tg_token_seconds: tuple[tuple[float, ...], ...]  # [repetition][token]
    threads: int
    extra_buffer_types: bool
    load_seconds: float
    rss_after_load_mb: float | None
    peak_rss_mb: float | None
    system_info: str
    llama_cpp_version: str

    @property
    def tg_seconds(self) -> tuple[float, ...]:
        """Seconds per tg repetition (llama-bench's tg unit)."""
        return tuple(sum(rep) for rep in self.tg_token_seconds)


def compute_logits(
    model: Path,
    windows: np.ndarray,
    out: Path,
    *,
    threads: int = 2,
    extra_buffer_types: bool = False,
    timeout: float = 300.0,
) -> LogitsRun:
    """Write ``model``'s logits on the second half of each token window to ``out``.

    ``windows``: (n, ctx + 1) token ids (e.g. ``gguf_model.byte_windows``): the model reads
    the first ``ctx`` of each row. The .npy holds float32 (n, ctx - ctx // 2, n_vocab).
    ``extra_buffer_types``: llama.cpp's repacked/AMX weight copies (see ``worker.open_model``
    for a CPU where they crash).
    """
    ctx = int(windows.shape[1]) - 1
    with windows_file(windows) as windows_path:
        request = {
            "model": str(Path(model).absolute()),
            "n_ctx": ctx,
            "threads": threads,
            "extra_bufts": extra_buffer_types,
            "windows": windows_path,
            "logits": {"out": str(Path(out).absolute())},
        }
        reply = run_module(
            "edgeproof.targets.llama_cpp.worker", request, timeout, f"{Path(model).name} logits"
        )
    return LogitsRun.from_reply(out, reply)


def measure_speed(
    model: Path,
    *,
    pp_tokens: int = 256,
    tg_tokens: int = 128,
    warmup: int = 1,
    repetitions: int = 10,
    threads: int = 2,
    windows: np.ndarray | None = None,
    extra_buffer_types: bool = False,
    timeout: float = 300.0,
) -> SpeedRun:
    """Time prompt processing and generation in a fresh process (``logits_all=False``);
    the tokens come from ``windows`` when given."""
    if min(pp_tokens, tg_tokens, repetitions) < 1 or warmup < 0:
        raise ValueError("pp_tokens, tg_tokens and repetitions must be >= 1, warmup >= 0")
    with windows_file(windows) as windows_path:
        request = {
            "model": str(Path(model).absolute()),
            "n_ctx": max(pp_tokens, tg_tokens),
            "threads": threads,
            "extra_bufts": extra_buffer_types,
            "windows": windows_path,
            "speed": {
                "pp_tokens": pp_tokens,
                "tg_tokens": tg_tokens,
                "warmup": warmup,
                "repetitions": repetitions,
            },
        }
        reply = run_module(
            "edgeproof.targets.llama_cpp.worker", request, timeout, f"{Path(model).name} speed"
        )
    return SpeedRun(
        pp_tokens=pp_tokens,
        tg_tokens=tg_tokens,
        pp_seconds=tuple(reply["pp_seconds"]),
        tg_token_seconds=tuple(tuple(rep) for rep in reply["tg_token_seconds"]),
        threads=threads,
        extra_buffer_types=extra_buffer_types,
        load_seconds=float(reply["load_seconds"]),
        rss_after_load_mb=reply.get("rss_after_load_mb"),
        peak_rss_mb=reply.get("peak_rss_mb"),
        system_info=str(reply.get("system_info", "")),
        llama_cpp_version=str(reply.get("llama_cpp_version", "")),
    )
