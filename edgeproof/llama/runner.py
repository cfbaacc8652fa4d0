"""Parent side of the llama.cpp subprocesses: start, time out, kill, explain a death.

llama.cpp aborts the whole process on some bad files (GGML_ASSERT) instead of returning an
error, and a native crash cannot be caught in Python. So every GGUF load, every quantization
and every evaluation runs in a fresh one-shot subprocess (``python -m MODULE REQUEST RESULT``,
one JSON file each way). This side samples the child's RSS while it runs
(``edgeproof.measure.proc_status.RssTrail``), enforces a deadline (a hang kills the whole
process group), and turns any failure into ``LlamaRunError`` with a one-line reason: the
phase it was in, the signal or exit code, the last meaningful stderr line (a GGML_ASSERT
message, a llama.cpp error) and the RSS trail. The candidate fails with that reason; the
pipeline goes on with the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.errors import MeasurementError
from edgeproof.llama.worker import PHASE_MARK
from edgeproof.measure.proc_status import RssTrail

_SIGNAL_HINTS = {
    signal.SIGABRT: "llama.cpp abort, e.g. a failed GGML_ASSERT",
    signal.SIGSEGV: "native crash",
    signal.SIGBUS: "native crash, e.g. a truncated memory-mapped file",
    signal.SIGKILL: "also what the kernel's OOM killer sends",
}


class LlamaRunError(MeasurementError):
    """A llama.cpp subprocess crashed, aborted, hung or reported an error (one-line reason)."""


def _stderr_summary(path: Path, limit: int = 300) -> tuple[str | None, str]:
    """(last phase marker, last meaningful output lines) from the child's stderr file."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 16384))
        text = fh.read().decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    phases = [ln[len(PHASE_MARK) :] for ln in lines if ln.startswith(PHASE_MARK)]
    rest = [
        ln
        for ln in lines
        if not ln.startswith((PHASE_MARK, "Traceback", "File ", "^"))
        and "ggml_print_backtrace" not in ln
    ]
    return (phases[-1] if phases else None), " | ".join(rest[-2:])[-limit:]


def run_module(module: str, request: dict[str, Any], timeout: float, label: str) -> dict[str, Any]:
    """Run ``python -m module REQUEST RESULT`` once; its result dict, or ``LlamaRunError``."""
    with tempfile.TemporaryDirectory(prefix="edgeproof-llama-") as tmp:
        req_path, res_path, err_path = (Path(tmp) / n for n in ("req.json", "res.json", "err"))
        req_path.write_text(json.dumps(request), encoding="utf-8")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "GGML_NO_BACKTRACE": "1"}
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, str(req_path), str(res_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
                env=env,
            )
        rss = RssTrail(proc.pid)
        try:
            code = proc.wait(timeout=timeout)
            hung = False
        except subprocess.TimeoutExpired:
            hung = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        finally:
            rss.stop()
        stage, tail = _stderr_summary(err_path)
        during = f" during {stage}" if stage else ""
        if hung:
            raise LlamaRunError(
                f"{label}: hung{during} for more than {timeout:g} s and was killed "
                f"({rss.text()})" + (f"; last output: {tail}" if tail else "")
            )
        reply = None
        if res_path.exists():
            reply = json.loads(res_path.read_text(encoding="utf-8"))
        if reply is not None and not reply.get("ok"):
            raise LlamaRunError(f"{label}: failed{during}: {reply.get('error')}")
        if code != 0 or reply is None:
            if code < 0:
                sig = signal.Signals(-code)
                hint = _SIGNAL_HINTS.get(sig)
                cause = f"killed by signal {sig.name}" + (f" ({hint})" if hint else "")
            else:
                cause = f"exited with code {code}" + ("" if reply else " and no result")
            raise LlamaRunError(
                f"{label}: llama.cpp process {cause}{during}; {rss.text()}"
                + (f"; last output: {tail}" if tail else "")
            )
        return reply


@dataclass(frozen=True)
class LogitsRun:
    """Where a model's held-out logits were written, and what producing them cost."""

    path: Path
    shape: tuple[int, ...]  # (windows, scored positions per window, n_vocab)
    load_seconds: float
    seconds: float
    peak_rss_mb: float | None


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

    @property
    def pp_tokens_per_s(self) -> tuple[float, ...]:
        return tuple(self.pp_tokens / s for s in self.pp_seconds)

    @property
    def tg_tokens_per_s(self) -> tuple[float, ...]:
        return tuple(self.tg_tokens / s for s in self.tg_seconds)


@contextlib.contextmanager
def _windows_file(windows: np.ndarray | None) -> Iterator[str | None]:
    """``windows`` saved as a temporary .npy for the subprocess (None passes through)."""
    if windows is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="edgeproof-windows-") as tmp:
        path = Path(tmp) / "windows.npy"
        np.save(path, np.ascontiguousarray(windows, dtype=np.int32), allow_pickle=False)
        yield str(path)


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
    with _windows_file(windows) as windows_path:
        request = {
            "model": str(Path(model).absolute()),
            "n_ctx": ctx,
            "threads": threads,
            "extra_bufts": extra_buffer_types,
            "windows": windows_path,
            "logits": {"out": str(Path(out).absolute())},
        }
        reply = run_module("edgeproof.llama.worker", request, timeout, f"{Path(model).name} logits")
    return LogitsRun(
        path=Path(out),
        shape=tuple(reply["logits_shape"]),
        load_seconds=float(reply["load_seconds"]),
        seconds=float(reply["logits_seconds"]),
        peak_rss_mb=reply.get("peak_rss_mb"),
    )


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
    with _windows_file(windows) as windows_path:
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
        reply = run_module("edgeproof.llama.worker", request, timeout, f"{Path(model).name} speed")
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
