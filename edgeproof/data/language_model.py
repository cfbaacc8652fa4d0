"""The language-model I/O contract: token windows in, logits out, whatever the runtime.

A language model's data files hold one array, ``tokens``: (windows, context + 1) integer
token ids. A language-model session (llama.cpp, MLX) takes those windows and returns one
output, ``logits``: float32 (windows, scored positions, vocabulary), the second half of each
window scored, as ``llama-perplexity --kl-divergence`` does. The task kind checks data with
it, both runtimes' sessions and harnesses read and write it, and serving signs models with
it, so it lives below all of them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.dataset import load_dataset
from edgeproof.errors import InputError
from edgeproof.records.measurement import InputSpec

TOKENS_KEY = "tokens"  # the token-window array of a language model's data files


def load_token_windows(path: Path) -> np.ndarray:
    """(n, ctx + 1) integer token windows from a data file's ``tokens`` array."""
    data = load_dataset(path, label_kind="values")
    if TOKENS_KEY not in data.inputs:
        raise InputError(f"language-model data needs a {TOKENS_KEY!r} array: {path}")
    windows = data.inputs[TOKENS_KEY]
    if windows.ndim != 2 or windows.dtype.kind not in "iu" or windows.shape[1] < 3:
        raise InputError(
            f"{TOKENS_KEY!r} must be (windows, context + 1) integer token ids, "
            f"got {windows.dtype} {windows.shape}: {path}"
        )
    return windows


LOGITS_KEY = "logits"  # the one output of a language-model session
TOKEN_WINDOWS = InputSpec(TOKENS_KEY, np.dtype(np.int32), (None, None))
WINDOW_LOGITS = InputSpec(LOGITS_KEY, np.dtype(np.float32), (None, None, None))


def token_windows(feeds: Mapping[str, Any]) -> np.ndarray:
    """``feeds["tokens"]`` as (n, ctx + 1) integer token ids (ctx >= 2); ValueError if not."""
    if TOKENS_KEY not in feeds:
        raise ValueError(f"a language model takes {TOKENS_KEY!r}, got {sorted(feeds)}")
    windows = np.asarray(feeds[TOKENS_KEY])
    if windows.ndim != 2 or windows.dtype.kind not in "iu" or windows.shape[1] < 3:
        raise ValueError(
            f"{TOKENS_KEY!r} must be (windows, context + 1) integer token ids, "
            f"got {windows.dtype} {windows.shape}"
        )
    return windows


def check_vocab(windows: np.ndarray, n_vocab: int) -> None:
    """ValueError if an id of ``windows`` is outside the model's vocabulary."""
    if windows.size == 0:
        return
    low, high = int(windows.min()), int(windows.max())
    if low < 0 or high >= n_vocab:
        raise ValueError(f"token ids must be in [0, {n_vocab}), got [{low}, {high}]")


@contextmanager
def windows_file(windows: np.ndarray | None) -> Iterator[str | None]:
    """``windows`` saved as a temporary .npy for a runtime's subprocess (None passes through)."""
    if windows is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="edgeproof-windows-") as tmp:
        path = Path(tmp) / "windows.npy"
        np.save(path, np.ascontiguousarray(windows, dtype=np.int32), allow_pickle=False)
        yield str(path)
