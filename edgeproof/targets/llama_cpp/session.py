"""A GGUF in llama.cpp in this process, for serving: token windows in, the gate's logits out.

``LlamaCpp.open_session`` returns it; ``edgeproof.device.serving`` runs it behind MLflow's
``predict``. The gate itself never loads a GGUF in its own process (llama.cpp aborts on some
bad files, see ``edgeproof.targets.llama_cpp.worker``): it measures in one-shot
subprocesses, so a served candidate has already loaded there. Here the model is opened as
the logits worker opens it (``worker.open_model``: CPU only, batch = context,
``extra_buffer_types`` as the target config says) on the first call, with a context of the
windows' width - 1, and reopened when a call brings windows of another width. Logits are
``worker.window_logits``: the second half of each window, float32 (n, ctx - ctx // 2,
n_vocab). llama.cpp's log goes through one ``worker.LlamaLog`` per process (warnings and
errors to stderr). Calls are serialized: a llama.cpp context is not thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.language_model import LOGITS_KEY, TOKEN_WINDOWS, check_vocab, token_windows
from edgeproof.targets.llama_cpp.worker import LlamaLog, open_model, window_logits

_process_log: list[LlamaLog] = []  # installed once: llama.cpp keeps a raw pointer to it


def _llama_log() -> LlamaLog:
    if not _process_log:
        log = LlamaLog()
        log.install()
        _process_log.append(log)
    return _process_log[0]


class LlamaSession:
    """One GGUF in llama.cpp, opened on first use at the windows' context."""

    output_names = (LOGITS_KEY,)

    def __init__(self, model: Path, threads: int, extra_buffer_types: bool, precision: str):
        import llama_cpp

        if not model.is_file():
            raise FileNotFoundError(f"no GGUF file at {model}")
        self.model = model
        self.threads = threads
        self.extra_buffer_types = extra_buffer_types
        self.inputs = (TOKEN_WINDOWS,)
        self.info: dict[str, Any] = {
            "runtime": "llama.cpp",
            "runtime_version": f"llama-cpp-python {llama_cpp.__version__}",
            "device": "cpu",
            "precision": precision,
            "threads": threads,
            "extra_buffer_types": extra_buffer_types,
        }
        self._llm: Any = None
        self._n_ctx = 0
        self._lock = threading.Lock()

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The logits of the second half of each window, float32 (n, ctx - ctx // 2, n_vocab)."""
        windows = token_windows(feeds)
        with self._lock:
            llm = self._open(windows.shape[1] - 1)
            check_vocab(windows, int(llm.n_vocab()))
            return [window_logits(llm, windows)]

    def close(self) -> None:
        """Free the model (the next call opens it again)."""
        if self._llm is not None:
            self._llm.close()
            self._llm, self._n_ctx = None, 0

    def _open(self, n_ctx: int) -> Any:
        if self._llm is not None and self._n_ctx == n_ctx:
            return self._llm
        self.close()
        log = _llama_log()
        try:
            self._llm = open_model(
                str(self.model), n_ctx, self.threads, True, self.extra_buffer_types
            )
        except Exception as exc:
            first = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise RuntimeError(
                f"llama.cpp cannot open {self.model.name} at context {n_ctx}: {first}{log.said()}"
            ) from exc
        self._n_ctx = n_ctx
        self.info["n_ctx"] = n_ctx
        return self._llm
