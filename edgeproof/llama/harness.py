"""llama.cpp's part of language-model measurement, and the token-window data format.

``measure_language_models`` measures GGUF candidates with ``edgeproof.measure.token_harness``
(logits, then llama-bench style speed processes interleaved with the baseline's), through
llama.cpp's one-shot subprocesses (``edgeproof.llama.runner``): a file that makes llama.cpp
abort fails that candidate only. Data files of language models hold ``tokens``
(windows, context + 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import MeasureConfig
from edgeproof.data import load_dataset
from edgeproof.errors import InputError
from edgeproof.llama.runner import SpeedRun, compute_logits, measure_speed
from edgeproof.measure.token_harness import measure_token_models
from edgeproof.records import Candidate
from edgeproof.records.measurement import MeasureJob, Progress, TargetMeasurements
from edgeproof.targets.llama_cpp import LlamaCppTargetConfig

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


@dataclass(frozen=True)
class _LlamaRuntime:
    """llama.cpp's one-shot subprocess calls (``edgeproof.llama.runner``)."""

    config: LlamaCppTargetConfig
    threads: int

    def logits(self, candidate: Candidate, windows: np.ndarray, out: Path) -> float | None:
        run = compute_logits(
            candidate.model_file,
            windows,
            out,
            threads=self.threads,
            extra_buffer_types=self.config.extra_buffer_types,
            timeout=self.config.timeout_seconds,
        )
        return run.peak_rss_mb

    def speed(self, candidate: Candidate, windows: np.ndarray) -> SpeedRun:
        return measure_speed(
            candidate.model_file,
            pp_tokens=self.config.pp_tokens,
            tg_tokens=self.config.tg_tokens,
            warmup=self.config.warmup,
            repetitions=self.config.repetitions,
            threads=self.threads,
            windows=windows,
            extra_buffer_types=self.config.extra_buffer_types,
            timeout=self.config.timeout_seconds,
        )

    def session(self, runs: Sequence[Any], candidate: Candidate) -> dict[str, Any]:
        last = runs[-1]
        return {
            "runtime": "llama.cpp",
            "runtime_version": f"llama-cpp-python {last.llama_cpp_version}",
            "device": "cpu",
            "precision": candidate.precision,
            "threads": self.threads,
            "extra_buffer_types": self.config.extra_buffer_types,
            "system_info": last.system_info,
        }

    def environment(self, runs: Sequence[Any]) -> dict[str, Any]:
        return {}


def measure_language_models(
    baseline: Candidate,
    candidates: list[Candidate],
    job: MeasureJob,
    measure: MeasureConfig,
    progress: Progress = lambda _msg: None,
) -> TargetMeasurements:
    """Logits and interleaved speed runs of the baseline and every candidate
    (``measure_token_models``); raises only if the baseline fails."""
    config = LlamaCppTargetConfig.model_validate(job.target_config)
    windows = load_token_windows(job.eval_data)
    runtime = _LlamaRuntime(config, job.threads)
    return measure_token_models(
        baseline, candidates, job, measure, config, runtime, windows, progress
    )
