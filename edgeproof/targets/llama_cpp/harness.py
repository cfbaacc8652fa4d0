"""llama.cpp's part of language-model measurement, and the token-window data format.

``measure_language_models`` measures GGUF candidates with ``edgeproof.measure.token_harness``
(logits, then llama-bench style speed processes interleaved with the baseline's), through
llama.cpp's one-shot subprocesses (``edgeproof.targets.llama_cpp.runner``): a file that makes
llama.cpp abort fails that candidate only. Data files of language models hold ``tokens``
(windows, context + 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import MeasureConfig
from edgeproof.data.language_model import load_token_windows
from edgeproof.measure.token_harness import measure_token_models
from edgeproof.records import Candidate
from edgeproof.records.measurement import MeasureJob, Progress, TargetMeasurements
from edgeproof.targets.llama_cpp.config import LlamaCppTargetConfig
from edgeproof.targets.llama_cpp.runner import SpeedRun, compute_logits, measure_speed


@dataclass(frozen=True)
class _LlamaRuntime:
    """llama.cpp's one-shot subprocess calls (``edgeproof.targets.llama_cpp.runner``)."""

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
