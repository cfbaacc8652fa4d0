"""The llama.cpp subprocess: load one GGUF, write its logits on held-out bytes, time it.

Run as ``python -m edgeproof.targets.llama_cpp.worker REQUEST.json RESULT.json`` (``runner``
does it, through ``edgeproof.runtime.oneshot``).
llama.cpp can abort the whole process on a bad file (GGML_ASSERT), so a GGUF is only ever
loaded here; the parent turns a death into a failed-candidate reason. The worker helps it:

- Before each phase it prints ``[edgeproof] phase: NAME`` to stderr, so the parent
  can say during which phase the process died.
- llama-cpp-python with ``verbose=False`` points fd 2 at /dev/null while it loads a model,
  which would swallow the very GGML_ASSERT line that explains an abort. So the model is
  opened with ``verbose=True`` and quiet instead: Python-side prints during construction
  go to a buffer, and a log callback keeps only llama.cpp's warnings and errors (written
  to stderr at once, so they survive an abort, and the last ones appended to an error).
- ``GGML_NO_BACKTRACE=1`` (set by the parent) stops ggml from attaching a debugger to
  print a backtrace when it aborts.

Token ids are fed with ``Llama.eval`` (held-out windows come as a .npy of ids; for the
byte-level example, id = 3 + byte), never by tokenizing text: the SPM tokenizer would turn
spaces into U+2581. Logits mode (``logits_all=True``) keeps only
the second half of each window, where every position has at least ctx/2 tokens of
context, as ``llama-perplexity --kl-divergence`` scores. Speed mode
(``logits_all=False``, so no logits are copied out) times like ``llama-bench``: pp = one
prompt of N tokens from an empty cache, tg = M single-token decodes from an empty cache;
warm-up runs first, then R timed repetitions of each (``perf_counter_ns`` around the
decode calls only; tg is timed per token, so its percentiles are per-token latencies).
Peak RSS is the kernel's high-water mark (VmHWM) of this process.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.runtime.oneshot import ChildFailure, phase, serve
from edgeproof.runtime.proc_status import process_status_mb
from edgeproof.targets.llama_cpp.gguf_model import BYTE_OFFSET

# ggml_log_level in the bundled ggml: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5.
# (llama-cpp-python's own _logger still maps the older order, INFO 1 .. DEBUG 4, so with
# verbose=False it files llama.cpp's errors as DEBUG and drops them.)
_LOG_LEVELS = {3: "warning", 4: "error"}


class LlamaLog:
    """A llama.cpp log callback that keeps warnings and errors, and drops the info chatter."""

    def __init__(self, keep: int = 5) -> None:
        self.recent: collections.deque[str] = collections.deque(maxlen=keep)
        self.first_error: str | None = None  # the specific cause; later lines are generic
        self._line = ""
        self._level = 0
        self._callback: Any = None  # kept referenced: llama.cpp holds a raw pointer to it

    def install(self) -> None:
        import ctypes

        import llama_cpp

        @llama_cpp.llama_log_callback
        def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            if level != 5:
                self._level = level
            self._line += text.decode("utf-8", "replace")
            if self._line.endswith("\n"):
                line, self._line = self._line.strip(), ""
                if line and self._level in _LOG_LEVELS:
                    self.recent.append(line)
                    if self._level == 4 and self.first_error is None:
                        self.first_error = line
                    # fd 2 itself: sys.stderr is redirected while the model loads
                    os.write(2, f"llama.cpp {_LOG_LEVELS[self._level]}: {line}\n".encode())

        self._callback = callback
        llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))

    def said(self) -> str:
        """`` (llama.cpp: <first error, else last warning>)``, or "" if it said nothing."""
        line = self.first_error or (self.recent[-1] if self.recent else None)
        return f" (llama.cpp: {line})" if line else ""


def open_model(path: str, n_ctx: int, threads: int, logits_all: bool, extra_bufts: bool) -> Any:
    """``llama_cpp.Llama`` on ``path``, CPU only, batch = context (one decode per window).

    ``extra_bufts=False`` keeps every weight in the plain CPU buffer: no repacked
    (CPU_REPACK) or AMX copies. llama.cpp's default is True; its AMX kernels segfault on
    some AMX CPUs (llama.cpp#20824; seen here on a Xeon with amx_int8 for Q4_0/Q8_0/Q6_K).
    ``Llama`` has no argument for it, so the default-params factory it calls is wrapped
    for the duration of the constructor (this process loads one model, then exits).
    """
    import llama_cpp
    import llama_cpp.llama as high_level

    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file at {path}")
    factory = high_level.llama_cpp.llama_model_default_params

    def model_params() -> Any:
        params = factory()
        params.use_extra_bufts = extra_bufts
        return params

    chatter = io.StringIO()
    high_level.llama_cpp.llama_model_default_params = model_params
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            return llama_cpp.Llama(
                model_path=path,
                n_ctx=n_ctx,
                n_batch=n_ctx,
                n_ubatch=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=0,
                logits_all=logits_all,
                verbose=True,  # see the module docstring: keeps fd 2 open for abort messages
            )
    finally:
        high_level.llama_cpp.llama_model_default_params = factory


def window_logits(llm: Any, windows: np.ndarray) -> np.ndarray:
    """Logits of the second half of each window: shape (n, ctx - ctx // 2, n_vocab), float32."""
    ctx = windows.shape[1] - 1
    first = ctx // 2
    out = np.empty((len(windows), ctx - first, llm.n_vocab()), dtype=np.float32)
    for i, row in enumerate(windows):
        llm.reset()
        llm.eval(row[:ctx].tolist())
        out[i] = llm.scores[first:ctx]
    return out


def speed_ids(windows: np.ndarray | None, n: int) -> list[int]:
    """``n`` token ids for timing: held-out tokens when given, else a fixed byte pattern."""
    if windows is not None and windows.size >= n:
        return windows.reshape(-1)[:n].astype(int).tolist()
    return [BYTE_OFFSET + (32 + 7 * i) % 95 for i in range(n)]  # printable ASCII


def load_windows(path: str) -> np.ndarray:
    """Token windows (n, ctx + 1) from a .npy file (never pickled objects)."""
    windows = np.load(path, allow_pickle=False)
    if windows.ndim != 2 or windows.shape[1] < 3 or windows.dtype.kind not in "iu":
        raise ValueError(f"token windows must be a 2-D integer array, got {windows.shape}")
    return windows


def time_pp(llm: Any, prompt: list[int]) -> float:
    """Seconds to decode ``prompt`` as one batch from an empty cache."""
    llm.reset()
    start = time.perf_counter_ns()
    llm.eval(prompt)
    return (time.perf_counter_ns() - start) / 1e9


def time_tg(llm: Any, tokens: list[int]) -> list[float]:
    """Seconds per token to decode ``tokens`` one at a time from an empty cache (llama-bench's
    tg is their sum)."""
    llm.reset()
    per_token = []
    for token in tokens:
        start = time.perf_counter_ns()
        llm.eval([token])
        per_token.append((time.perf_counter_ns() - start) / 1e9)
    return per_token


def run(req: dict[str, Any]) -> dict[str, Any]:
    """Do what ``req`` asks (its ``logits`` and/or ``speed`` section); returns the result."""
    import llama_cpp

    log = LlamaLog()
    log.install()
    result: dict[str, Any] = {"llama_cpp_version": llama_cpp.__version__}
    threads, n_ctx = int(req["threads"]), int(req["n_ctx"])
    windows = load_windows(req["windows"]) if req.get("windows") else None
    try:
        phase("load")
        start = time.perf_counter()
        llm = open_model(
            req["model"],
            n_ctx,
            threads,
            logits_all="logits" in req,
            extra_bufts=bool(req.get("extra_bufts", True)),
        )
        result["load_seconds"] = time.perf_counter() - start
        result["rss_after_load_mb"] = process_status_mb("self", "VmRSS")
        result["n_vocab"] = int(llm.n_vocab())
        if "logits" in req:
            spec = req["logits"]
            if windows is None:
                raise ValueError("logits mode needs held-out token windows")
            phase("logits")
            start = time.perf_counter()
            logits = window_logits(llm, windows)
            result["logits_seconds"] = time.perf_counter() - start
            if not np.all(np.isfinite(logits)):
                raise ValueError("model produced non-finite logits")
            out = Path(spec["out"])
            tmp = out.with_name(f".{out.name}.tmp.npy")
            np.save(tmp, logits, allow_pickle=False)
            os.replace(tmp, out)
            result["logits_shape"] = list(logits.shape)
        if "speed" in req:
            spec = req["speed"]
            prompt = speed_ids(windows, int(spec["pp_tokens"]))
            gen = speed_ids(windows, int(spec["tg_tokens"]))
            phase("warmup")
            for _ in range(int(spec["warmup"])):
                time_pp(llm, prompt)
                time_tg(llm, gen)
            phase("speed")
            reps = int(spec["repetitions"])
            result["pp_seconds"] = [time_pp(llm, prompt) for _ in range(reps)]
            result["tg_token_seconds"] = [time_tg(llm, gen) for _ in range(reps)]
            result["system_info"] = llama_cpp.llama_print_system_info().decode(errors="replace")
        phase("close")
        llm.close()
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ChildFailure(message + log.said()) from exc
    result["peak_rss_mb"] = process_status_mb("self", "VmHWM")
    return result


if __name__ == "__main__":
    sys.exit(serve(run))
