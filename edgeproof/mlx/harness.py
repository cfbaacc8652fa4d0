"""Measure an MLX language model's candidates against its baseline, like the llama.cpp target.

The same procedure and the same result shape as ``edgeproof.llama.harness``, so
``gates.summarize_lm`` summarizes MLX candidates unchanged. Per candidate (the baseline
first), every step in a fresh one-shot MLX subprocess (``edgeproof.mlx.runner``), so a
folder that makes MLX fail or crash fails that candidate only:

1. Logits on the held-out token windows (second half of each window), written as
   ``<candidate>.npy`` (float32, (windows, positions, vocab)).
2. Speed as ``llama-bench`` times it (warm-up, then ``repetitions`` of pp and of tg), in
   ``rounds`` fresh processes interleaved with as many baseline processes (order drawn at
   random per round); repetition ``i`` of round ``r`` of the candidate is paired with the
   baseline's for the speedup. Generation is timed per token.

``RawMeasurement``: latency = ms per generated token, throughput = prompt tokens per pp
repetition, peak RSS over all of a model's processes, size = the folder's files
(safetensors + config); the pp and tg timings themselves are in
``environment["language"]`` (keys as the llama.cpp harness writes them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import MeasureConfig
from edgeproof.errors import MeasurementError
from edgeproof.llama.harness import load_token_windows
from edgeproof.measure.environment import machine_state
from edgeproof.measure.fingerprint import device_fingerprint
from edgeproof.measure.harness import check_busy
from edgeproof.mlx.runner import MlxSpeedRun, compute_logits, measure_speed
from edgeproof.records import Candidate, RawMeasurement
from edgeproof.records.measurement import MeasureJob, Progress, TargetMeasurements
from edgeproof.targets.mlx import MlxTargetConfig


def model_folder(candidate: Candidate) -> Path:
    """The Hugging Face-layout folder of a candidate (its files' folder)."""
    return candidate.model_file.parent


class _Speed:
    """The speed runs of one model, in the order taken."""

    def __init__(self, candidate: Candidate) -> None:
        self.candidate = candidate
        self.runs: list[MlxSpeedRun] = []

    def token_ms(self, start: int = 0) -> list[float]:
        """Per-token generation times (ms) of the runs from index ``start`` on."""
        return [t * 1e3 for run in self.runs[start:] for rep in run.tg_token_seconds for t in rep]


def measure_mlx_models(
    baseline: Candidate,
    candidates: list[Candidate],
    job: MeasureJob,
    measure: MeasureConfig,
    progress: Progress = lambda _msg: None,
) -> TargetMeasurements:
    """Logits and interleaved speed runs of the baseline and every candidate; raises only
    if the baseline fails."""
    config = MlxTargetConfig.model_validate(job.target_config)
    windows = load_token_windows(job.eval_data)
    job.outputs_dir.mkdir(parents=True, exist_ok=True)
    environment = machine_state()
    check_busy(environment, measure, baseline.target, progress)
    rng = np.random.default_rng(measure.seed)
    logits_peak: dict[str, float | None] = {}
    raw: dict[str, RawMeasurement] = {}
    outputs: dict[str, Path] = {}
    errors: dict[str, str] = {}

    def logits(candidate: Candidate) -> Path:
        out = job.outputs_dir / f"{candidate.name}.npy"
        run = compute_logits(
            model_folder(candidate),
            windows,
            out,
            device=config.device,
            threads=job.threads,
            timeout=config.timeout_seconds,
            label=candidate.name,
        )
        logits_peak[candidate.name] = run.peak_rss_mb
        return out

    def speed(candidate: Candidate) -> MlxSpeedRun:
        return measure_speed(
            model_folder(candidate),
            pp_tokens=config.pp_tokens,
            tg_tokens=config.tg_tokens,
            warmup=config.warmup,
            repetitions=config.repetitions,
            device=config.device,
            threads=job.threads,
            windows=windows,
            timeout=config.timeout_seconds,
            label=candidate.name,
        )

    progress(f"{baseline.target}: baseline {baseline.name}: logits on {len(windows)} windows")
    base_logits = logits(baseline)  # a failing baseline raises: the target errs
    base = _Speed(baseline)
    for candidate in candidates:
        progress(f"{candidate.target}: measuring {candidate.name} against {baseline.name}")
        try:
            outputs[candidate.name] = logits(candidate)
            cand, first_paired = _Speed(candidate), len(base.runs)
            for _ in range(config.rounds):
                for model in (base, cand) if rng.random() < 0.5 else (cand, base):
                    model.runs.append(speed(model.candidate))
        except MeasurementError as exc:
            outputs.pop(candidate.name, None)
            errors[candidate.name] = str(exc)
            continue
        paired_ms = base.token_ms(first_paired)  # the baseline's runs beside this candidate's
        raw[candidate.name] = _record(cand, paired_ms, config, job, environment, logits_peak)
    if not base.runs:  # no candidate ran: the baseline still gets its own samples
        base.runs.extend(speed(baseline) for _ in range(config.rounds))
    outputs[baseline.name] = base_logits
    raw[baseline.name] = _record(base, [], config, job, environment, logits_peak)
    return TargetMeasurements(raw, outputs, errors)


def _record(
    speed: _Speed,
    paired_ms: list[float],
    config: MlxTargetConfig,
    job: MeasureJob,
    environment: dict[str, Any],
    logits_peak: dict[str, float | None],
) -> RawMeasurement:
    """One model's speed runs (and its logits run's peak RSS) as a ``RawMeasurement``."""
    runs, cand = speed.runs, speed.candidate
    last = runs[-1]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(last.versions.items()))
    session = {
        "runtime": "mlx",
        "runtime_version": versions,
        "device": config.device,
        "mlx_device": last.device,
        "precision": cand.precision,
        "threads": job.threads,
    }
    peaks = [r.peak_rss_mb for r in runs] + [logits_peak.get(cand.name)]
    loaded = [r.rss_after_load_mb for r in runs if r.rss_after_load_mb is not None]
    mlx_peaks = [r.mlx_peak_memory_mb for r in runs if r.mlx_peak_memory_mb is not None]
    return RawMeasurement(
        candidate=cand.name,
        latency_ms=np.asarray(speed.token_ms(), dtype=np.float64),
        paired_baseline_ms=np.asarray(paired_ms, dtype=np.float64),
        block_size=config.tg_tokens,
        throughput_batch=config.pp_tokens,
        throughput_s=np.asarray([s for r in runs for s in r.pp_seconds], dtype=np.float64),
        peak_rss_mb=max(p for p in peaks if p is not None),
        load_rss_mb=float(np.median(loaded)) if loaded else 0.0,
        load_seconds=float(np.median([r.load_seconds for r in runs])),
        size_mb=cand.size_bytes() / 1e6,
        threads=job.threads,
        environment={
            **environment,
            "session": session,
            "fingerprint": device_fingerprint(environment, session),
            "energy": {},
            "language": {
                "pp_tokens": config.pp_tokens,
                "tg_tokens": config.tg_tokens,
                "pp_seconds": [s for r in runs for s in r.pp_seconds],
                "tg_seconds": [s for r in runs for s in r.tg_seconds],
                "processes": len(runs),
            },
            "mlx_peak_memory_mb": max(mlx_peaks) if mlx_peaks else None,
            "stopped": f"{len(runs)} speed processes x {config.repetitions} repetitions",
        },
    )
