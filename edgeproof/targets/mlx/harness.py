"""MLX's part of language-model measurement: the same procedure and result shape as the
llama.cpp target (``edgeproof.measure.token_harness``), so ``gates.summarize_lm``
summarizes MLX candidates unchanged.

Every step runs in a fresh one-shot MLX subprocess (``edgeproof.targets.mlx.runner``), so a folder
that makes MLX fail or crash fails that candidate only: logits on the held-out windows
(``<candidate>.npy``), then llama-bench style speed processes interleaved with the
baseline's. Size is the candidate folder's files (safetensors + config); MLX's own peak
memory is recorded beside the process RSS (``environment["mlx_peak_memory_mb"]``).
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
from edgeproof.targets.mlx.config import MlxTargetConfig
from edgeproof.targets.mlx.runner import MlxSpeedRun, compute_logits, measure_speed


def model_folder(candidate: Candidate) -> Path:
    """The Hugging Face-layout folder of a candidate (its files' folder)."""
    return candidate.model_file.parent


@dataclass(frozen=True)
class _MlxRuntime:
    """MLX's one-shot subprocess calls (``edgeproof.targets.mlx.runner``)."""

    config: MlxTargetConfig
    threads: int

    def logits(self, candidate: Candidate, windows: np.ndarray, out: Path) -> float | None:
        run = compute_logits(
            model_folder(candidate),
            windows,
            out,
            device=self.config.device,
            threads=self.threads,
            timeout=self.config.timeout_seconds,
            label=candidate.name,
        )
        return run.peak_rss_mb

    def speed(self, candidate: Candidate, windows: np.ndarray) -> MlxSpeedRun:
        return measure_speed(
            model_folder(candidate),
            pp_tokens=self.config.pp_tokens,
            tg_tokens=self.config.tg_tokens,
            warmup=self.config.warmup,
            repetitions=self.config.repetitions,
            device=self.config.device,
            threads=self.threads,
            windows=windows,
            timeout=self.config.timeout_seconds,
            label=candidate.name,
        )

    def session(self, runs: Sequence[Any], candidate: Candidate) -> dict[str, Any]:
        last = runs[-1]
        return {
            "runtime": "mlx",
            "runtime_version": ", ".join(f"{k} {v}" for k, v in sorted(last.versions.items())),
            "device": self.config.device,
            "mlx_device": last.device,
            "precision": candidate.precision,
            "threads": self.threads,
        }

    def environment(self, runs: Sequence[Any]) -> dict[str, Any]:
        peaks = [r.mlx_peak_memory_mb for r in runs if r.mlx_peak_memory_mb is not None]
        return {"mlx_peak_memory_mb": max(peaks) if peaks else None}


def measure_mlx_models(
    baseline: Candidate,
    candidates: list[Candidate],
    job: MeasureJob,
    measure: MeasureConfig,
    progress: Progress = lambda _msg: None,
) -> TargetMeasurements:
    """Logits and interleaved speed runs of the baseline and every candidate
    (``measure_token_models``); raises only if the baseline fails."""
    config = MlxTargetConfig.model_validate(job.target_config)
    windows = load_token_windows(job.eval_data)
    runtime = _MlxRuntime(config, job.threads)
    return measure_token_models(
        baseline, candidates, job, measure, config, runtime, windows, progress
    )
