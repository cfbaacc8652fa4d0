"""An MLX candidate folder in mlx-lm in this process, for serving: token windows in, the
gate's logits out.

``MlxLm.open_session`` returns it (after checking that mlx and mlx-lm are there);
``edgeproof.device.serving`` runs it behind MLflow's ``predict``. The gate itself measures in
one-shot subprocesses (``edgeproof.targets.mlx.worker``); here the same worker functions run in the
calling process: ``set_device``, ``load`` (the folder checked first in pure Python,
``check_hf_model``, so a bad file is a one-line ``InputError`` rather than a failure inside
MLX) and ``window_logits`` (the second half of each window, float32 (n, ctx - ctx // 2,
vocab)). Loading imports ``mlx_lm.utils`` as the worker does (no tokenizer; mlx-lm lowers
the process's open-file limit) and makes ``device`` MLX's default device for the process.
MLX reads its thread count from the environment at import, so ``threads`` is recorded only.
Calls are serialized.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.language_model import LOGITS_KEY, TOKEN_WINDOWS, check_vocab, token_windows
from edgeproof.targets.mlx.hf_model import check_hf_model
from edgeproof.targets.mlx.worker import load, set_device, versions, window_logits


class MlxSession:
    """One MLX candidate folder (config.json + safetensors), loaded at open."""

    output_names = (LOGITS_KEY,)

    def __init__(self, folder: Path, device: str, threads: int, precision: str):
        check_hf_model(folder, allow_quantized=True)
        described = set_device(device)
        self._model, config = load(str(folder))
        self.n_vocab = int(config["vocab_size"])
        self.inputs = (TOKEN_WINDOWS,)
        found = versions()
        self.info: dict[str, Any] = {
            "runtime": "mlx",
            "runtime_version": f"mlx {found['mlx']}, mlx-lm {found['mlx-lm']}",
            "device": described,
            "precision": precision,
            "threads": threads,
        }
        self._lock = threading.Lock()

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The logits of the second half of each window, float32 (n, ctx - ctx // 2, vocab)."""
        windows = token_windows(feeds)
        check_vocab(windows, self.n_vocab)
        with self._lock:
            return [window_logits(self._model, windows)]
