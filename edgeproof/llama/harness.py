"""Measure a language model's candidates against its baseline, llama.cpp style.

Per candidate (the baseline first), every step in a fresh one-shot subprocess
(``edgeproof.llama.runner``), so a file that makes llama.cpp abort fails that candidate only:

1. Logits on the held-out token windows (second half of each window), written as .npy:
   what ``llama-perplexity --kl-divergence`` compares.
2. Speed as ``llama-bench`` times it (warm-up, then ``repetitions`` of pp and of tg), in
   ``rounds`` fresh processes interleaved with as many baseline processes (order drawn at
   random per round): drift of a noisy machine hits both alike, and repetition ``i`` of
   round ``r`` of the candidate is paired with the baseline's for the speedup. Generation
   is timed per token, so latency percentiles are per generated token.

The result has the shape of any target's measurements (``TargetMeasurements``): latency =
ms per generated token, throughput = prompt tokens per pp repetition, outputs = the logits
file; the pp and tg timings themselves are kept in ``environment["language"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import MeasureConfig
from edgeproof.data import load_dataset
from edgeproof.errors import InputError, MeasurementError
from edgeproof.llama.runner import SpeedRun, compute_logits, measure_speed
from edgeproof.measure.environment import machine_state
from edgeproof.measure.fingerprint import device_fingerprint
from edgeproof.measure.harness import check_busy
from edgeproof.records import Candidate, RawMeasurement
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


class _Speed:
    """The speed runs of one model, in the order taken."""

    def __init__(self, candidate: Candidate) -> None:
        self.candidate = candidate
        self.runs: list[SpeedRun] = []

    def token_ms(self, start: int = 0) -> list[float]:
        """Per-token generation times (ms) of the runs from index ``start`` on."""
        return [t * 1e3 for run in self.runs[start:] for rep in run.tg_token_seconds for t in rep]


def measure_language_models(
    baseline: Candidate,
    candidates: list[Candidate],
    job: MeasureJob,
    measure: MeasureConfig,
    progress: Progress = lambda _msg: None,
) -> TargetMeasurements:
    """Logits and interleaved speed runs of the baseline and every candidate; raises only
    if the baseline fails."""
    config = LlamaCppTargetConfig.model_validate(job.target_config)
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
            candidate.model_file,
            windows,
            out,
            threads=job.threads,
            extra_buffer_types=config.extra_buffer_types,
            timeout=config.timeout_seconds,
        )
        logits_peak[candidate.name] = run.peak_rss_mb
        return out

    def speed(candidate: Candidate) -> SpeedRun:
        return measure_speed(
            candidate.model_file,
            pp_tokens=config.pp_tokens,
            tg_tokens=config.tg_tokens,
            warmup=config.warmup,
            repetitions=config.repetitions,
            threads=job.threads,
            windows=windows,
            extra_buffer_types=config.extra_buffer_types,
            timeout=config.timeout_seconds,
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
    config: LlamaCppTargetConfig,
    job: MeasureJob,
    environment: dict[str, Any],
    logits_peak: dict[str, float | None],
) -> RawMeasurement:
    """One model's speed runs (and its logits run's peak RSS) as a ``RawMeasurement``."""
    runs, cand = speed.runs, speed.candidate
    last = runs[-1]
    session = {
        "runtime": "llama.cpp",
        "runtime_version": f"llama-cpp-python {last.llama_cpp_version}",
        "device": "cpu",
        "precision": cand.precision,
        "threads": job.threads,
        "extra_buffer_types": config.extra_buffer_types,
        "system_info": last.system_info,
    }
    peaks = [r.peak_rss_mb for r in runs] + [logits_peak.get(cand.name)]
    loaded = [r.rss_after_load_mb for r in runs if r.rss_after_load_mb is not None]
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
            "stopped": f"{len(runs)} speed processes x {config.repetitions} repetitions",
        },
    )
