"""Measure a language model's candidates against its baseline, llama.cpp style, any runtime.

Per candidate (the baseline first), every step in a fresh one-shot subprocess of the
runtime (llama.cpp, MLX), so a file that makes the runtime abort fails that candidate only:

1. Logits on the held-out token windows (second half of each window), written as .npy:
   what ``llama-perplexity --kl-divergence`` compares.
2. Speed as ``llama-bench`` times it (warm-up, then ``repetitions`` of pp and of tg), in
   ``rounds`` fresh processes interleaved with as many baseline processes (order drawn at
   random per round): drift of a noisy machine hits both alike, and repetition ``i`` of
   round ``r`` of the candidate is paired with the baseline's for the speedup. Generation
   is timed per token, so latency percentiles are per generated token.

The result has the shape of any target's measurements (``TargetMeasurements``): latency =
ms per generated token, throughput = prompt tokens per pp repetition, outputs = the logits
file; the pp and tg timings themselves are kept in ``environment["language"]``. A runtime
supplies only its subprocess calls and how it describes its session (``TokenRuntime``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol, Self

import numpy as np
from pydantic import Field, model_validator

from edgeproof.config import MeasureConfig, PositiveFloat, RecipeTargetConfig
from edgeproof.errors import MeasurementError
from edgeproof.measure.environment import machine_state
from edgeproof.measure.fingerprint import device_fingerprint
from edgeproof.measure.harness import check_busy
from edgeproof.records import Candidate, RawMeasurement
from edgeproof.records.measurement import MeasureJob, Progress, TargetMeasurements

MIN_TOKEN_TIMINGS = 100  # per candidate: a 99% CI of the p90 needs 51


class TokenTimingConfig(RecipeTargetConfig):
    """Language-model runtimes timed as ``llama-bench`` does: ``pp_tokens`` prompt tokens in
    one batch and ``tg_tokens`` single-token decodes, ``repetitions`` each after
    ``warmup``, in ``rounds`` fresh processes per candidate interleaved with the baseline's;
    ``timeout_seconds`` per subprocess."""

    pp_tokens: Annotated[int, Field(ge=1)] = Field(
        128, description="Prompt tokens processed in one batch per timing (llama-bench's pp)."
    )
    tg_tokens: Annotated[int, Field(ge=1)] = Field(
        32,
        description="Single-token decodes per timing (llama-bench's tg): latency is per "
        "generated token.",
    )
    warmup: Annotated[int, Field(ge=0)] = Field(
        1, description="Untimed runs before the timed repetitions, in each process."
    )
    repetitions: Annotated[int, Field(ge=2)] = Field(
        5, description="Timed repetitions of the prompt and the decodes, in each process."
    )
    rounds: Annotated[int, Field(ge=2)] = Field(
        4,
        description="Fresh processes per candidate, interleaved with the baseline's; rounds "
        "x repetitions x tg_tokens must be at least 100.",
    )
    timeout_seconds: PositiveFloat = Field(
        300.0, description="Seconds per timing subprocess; a candidate over it fails."
    )

    @model_validator(mode="after")
    def _enough_token_timings(self) -> Self:
        timed = self.rounds * self.repetitions * self.tg_tokens
        if timed < MIN_TOKEN_TIMINGS:
            raise ValueError(
                f"rounds x repetitions x tg_tokens = {timed} per-token timings; at least "
                f"{MIN_TOKEN_TIMINGS} are needed for latency percentiles with CIs"
            )
        return self


@dataclass(frozen=True)
class LogitsRun:
    """Where a model's held-out logits were written, and what producing them cost."""

    path: Path
    shape: tuple[int, ...]  # (windows, scored positions per window, n_vocab)
    load_seconds: float
    seconds: float
    peak_rss_mb: float | None

    @classmethod
    def from_reply(cls, out: Path, reply: dict[str, Any]) -> LogitsRun:
        """What a runtime's logits subprocess reported, for the .npy it wrote to ``out``."""
        return cls(
            path=Path(out),
            shape=tuple(reply["logits_shape"]),
            load_seconds=float(reply["load_seconds"]),
            seconds=float(reply["logits_seconds"]),
            peak_rss_mb=reply.get("peak_rss_mb"),
        )


class TokenSpeedRun(Protocol):
    """What one speed process measured (llama-bench style)."""

    pp_seconds: tuple[float, ...]
    tg_token_seconds: tuple[tuple[float, ...], ...]  # [repetition][token]
    load_seconds: float
    rss_after_load_mb: float | None
    peak_rss_mb: float | None

    @property
    def tg_seconds(self) -> tuple[float, ...]: ...


class TokenRuntime(Protocol):
    """A language-model runtime's one-shot subprocess calls."""

    def logits(self, candidate: Candidate, windows: np.ndarray, out: Path) -> float | None:
        """Write the candidate's logits on ``windows`` to ``out``; its peak RSS (MB)."""
        ...

    def speed(self, candidate: Candidate, windows: np.ndarray) -> TokenSpeedRun:
        """One fresh process: warm-up, then the timed pp and tg repetitions."""
        ...

    def session(self, runs: Sequence[Any], candidate: Candidate) -> dict[str, Any]:
        """How the candidate ran (runtime, version, device, precision...), from its runs."""
        ...

    def environment(self, runs: Sequence[Any]) -> dict[str, Any]:
        """Further runtime facts recorded beside the timings (may be empty)."""
        ...


class _Speed:
    """The speed runs of one model, in the order taken."""

    def __init__(self, candidate: Candidate) -> None:
        self.candidate = candidate
        self.runs: list[TokenSpeedRun] = []

    def token_ms(self, start: int = 0) -> list[float]:
        """Per-token generation times (ms) of the runs from index ``start`` on."""
        return [t * 1e3 for run in self.runs[start:] for rep in run.tg_token_seconds for t in rep]


def measure_token_models(
    baseline: Candidate,
    candidates: list[Candidate],
    job: MeasureJob,
    measure: MeasureConfig,
    config: TokenTimingConfig,
    runtime: TokenRuntime,
    windows: np.ndarray,
    progress: Progress = lambda _msg: None,
) -> TargetMeasurements:
    """Logits and interleaved speed runs of the baseline and every candidate; raises only
    if the baseline fails."""
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
        logits_peak[candidate.name] = runtime.logits(candidate, windows, out)
        return out

    def record(speed: _Speed, paired_ms: list[float]) -> RawMeasurement:
        return _record(speed, paired_ms, config, runtime, job, environment, logits_peak)

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
                    model.runs.append(runtime.speed(model.candidate, windows))
        except MeasurementError as exc:
            outputs.pop(candidate.name, None)
            errors[candidate.name] = str(exc)
            continue
        paired_ms = base.token_ms(first_paired)  # the baseline's runs beside this candidate's
        raw[candidate.name] = record(cand, paired_ms)
    if not base.runs:  # no candidate ran: the baseline still gets its own samples
        base.runs.extend(runtime.speed(baseline, windows) for _ in range(config.rounds))
    outputs[baseline.name] = base_logits
    raw[baseline.name] = record(base, [])
    return TargetMeasurements(raw, outputs, errors)


def _record(
    speed: _Speed,
    paired_ms: list[float],
    config: TokenTimingConfig,
    runtime: TokenRuntime,
    job: MeasureJob,
    environment: dict[str, Any],
    logits_peak: dict[str, float | None],
) -> RawMeasurement:
    """One model's speed runs (and its logits run's peak RSS) as a ``RawMeasurement``."""
    runs, cand = speed.runs, speed.candidate
    session = runtime.session(runs, cand)
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
            **runtime.environment(runs),
            "stopped": f"{len(runs)} speed processes x {config.repetitions} repetitions",
        },
    )
