"""Measure a target's candidates against its baseline, each in its own fresh subprocess.

Protocol (one target, one device, never two measurements at once):

1. The baseline is loaded in a long-lived worker process and warmed up (at least
   ``warmup_runs``, then until two consecutive chunk medians agree within tolerance).
2. Each candidate gets a fresh worker: load, warm up, then latency blocks interleaved with
   the baseline's (A B or B A, the order drawn at random per pair). Slow drift of the
   machine hits both alike, and block ``i`` of the candidate is paired with block ``i`` of
   the baseline for the speedup. The worker not being timed is paused (SIGSTOP), so the
   runtimes keep their defaults (ONNX Runtime's spinning threads) without stealing
   cycles. Sampling stops early once the CIs of the speedup and of both medians are
   within ``target_rel_halfwidth`` (after ``min_samples``), or once the speed gate
   clearly fails the candidate (a repeated CI, ``EarlyFail``), or at ``min_samples`` when
   a classifier's top-1 agreement clearly fails on the first eval items (``fidelity_look``,
   one look, taken then unless the speed gate already failed it), else at ``max_samples``
   or ``max_seconds``.
   Around every timed block the device's clocks, temperatures and throttle state are
   read (``device_state``, under ``measure.device_root``); each candidate's record keeps
   its window's blocks (its own and the baseline's) in ``environment["clocks"]``, the
   baseline's its own blocks, each flagged when not at steady clocks.
3. Then throughput at ``throughput_batch``, the outputs on the eval split (for accuracy and
   fidelity) and the peak RSS of that process.

Close finalists that the selection compared only via the baseline are then timed
against each other (``measure_head_to_head``): two fresh workers, blocks interleaved in
random order, until the CI of their paired ratio is within ``target_rel_halfwidth``.

A candidate whose worker crashes, hangs or errors is recorded with the reason and the
others go on; only a baseline failure stops the target.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import MeasureConfig
from edgeproof.errors import MeasurementError
from edgeproof.evaluate.scores import load_outputs, score_classifier
from edgeproof.gates.paired_selection import block_medians, paired_ratio
from edgeproof.gates.sequential import SequentialDesign, log_ratios, looks_schedule, speed_look
from edgeproof.gates.stats import median_ci, proportion_ci, speedup_ci
from edgeproof.measure.client import WorkerClient
from edgeproof.measure.device_state import ClockLog, DeviceState
from edgeproof.measure.environment import busy_reason, machine_state
from edgeproof.measure.fingerprint import device_fingerprint
from edgeproof.records import Candidate, RawMeasurement
from edgeproof.records.measurement import (
    HeadToHeadRun,
    MeasureJob,
    Progress,
    TargetMeasurements,
)

# the single early look at top-1 agreement spends this share of the gate's error (alpha):
# a fail needs the Wilson interval at confidence 1 - alpha * share wholly below the limit,
# so the fail error of look + final verdict stays <= alpha / 2 + alpha * share / 2
FIDELITY_LOOK_SHARE = 0.2


class _Measured:
    """A loaded worker plus the samples taken from it so far."""

    def __init__(
        self,
        candidate: Candidate,
        job: MeasureJob,
        measure: MeasureConfig,
        clocks: ClockLog | None = None,
    ) -> None:
        self.candidate = candidate
        self.clocks = clocks
        self.client = WorkerClient(f"{candidate.target}/{candidate.name}", measure.timeout_seconds)
        try:
            self.loaded = self.client.call(
                "load",
                backend=job.backend,
                config_model=job.config_model,
                target_config=job.target_config,
                candidate=candidate.model_dump(mode="json"),
                data=str(job.eval_data),
                labels_key=job.labels_key,
                threads=job.threads,
                feed=job.feed,
            )
            self.warmup = self.client.call(
                "warmup",
                n=measure.warmup_runs,
                max_runs=measure.max_warmup_runs,
                tolerance=measure.warmup_tolerance,
            )
        except BaseException:
            self.client.close()
            raise
        self.samples: list[float] = []
        self._head: dict[str, np.ndarray] | None = None

    def head_outputs(self, job: MeasureJob, items: int, batch: int) -> dict[str, np.ndarray]:
        """The outputs on the first ``items`` eval items (computed once per worker)."""
        if self._head is None:
            path = job.outputs_dir / f".{self.candidate.name}.head.npz"
            self.client.call("outputs", path=str(path), batch=batch, limit=items)
            try:
                self._head = load_outputs(path)
            finally:
                path.unlink(missing_ok=True)
        return self._head

    def block(self, n: int, discard: int) -> list[float]:
        """One timed block; the device's state is read just before and after it."""
        start = self.clocks.start() if self.clocks is not None else None
        samples = self.client.call("latency", n=n, discard=discard)["samples_ms"]
        if self.clocks is not None and start is not None:
            self.clocks.add(self.candidate.name, start, self.clocks.start())
        self.samples.extend(samples)
        return samples

    def finish(
        self,
        job: MeasureJob,
        measure: MeasureConfig,
        paired: list[float],
        environment: dict,
        stopped: str,
        failed_early: bool = False,
        blocks: list[dict[str, Any]] | None = None,
    ) -> tuple[RawMeasurement, Path]:
        """Throughput, eval outputs and memory, then the record; closes the worker.

        ``failed_early``: the speed gate already failed the candidate, so two throughput
        runs and the first ``early_fail_eval_items`` eval items are enough to report it.
        ``blocks``: the clock log's entries of the blocks this record's timings came from.
        """
        runs = 2 if failed_early else measure.throughput_runs
        tput = self.client.call("throughput", batch=measure.throughput_batch, runs=runs)
        out = job.outputs_dir / f"{self.candidate.name}.npz"
        limit = measure.early_fail_eval_items if failed_early else None
        self.client.call("outputs", path=str(out), batch=measure.eval_batch, limit=limit)
        stats = self.client.call("stats")
        self.client.close()
        raw = RawMeasurement(
            candidate=self.candidate.name,
            latency_ms=np.asarray(self.samples, dtype=np.float64),
            paired_baseline_ms=np.asarray(paired, dtype=np.float64),
            block_size=measure.block_size,
            throughput_batch=int(tput["batch"]),  # 1 for a model fed one item per call
            throughput_s=np.asarray(tput["seconds"], dtype=np.float64),
            peak_rss_mb=float(stats["peak_rss_mb"]),
            load_rss_mb=float(self.loaded["rss_after_mb"] - self.loaded["rss_before_mb"]),
            load_seconds=float(self.loaded["load_seconds"]),
            size_mb=self.candidate.size_bytes() / 1e6,
            threads=job.threads,
            environment={
                **environment,
                "session": self.loaded["info"],
                "fingerprint": device_fingerprint(environment, self.loaded["info"]),
                "energy": tput.get("energy", {}),
                "warmup": {k: self.warmup[k] for k in ("runs", "stable")},
                "stopped": stopped,
                **({"clocks": self.clocks.record(blocks or [])} if self.clocks is not None else {}),
            },
        )
        return raw, out


def extended(measure: MeasureConfig) -> MeasureConfig:
    """The measurement settings for a rerun: ``rerun_factor`` times the budget."""
    factor = measure.rerun_factor
    return measure.model_copy(
        update={
            "max_seconds": measure.max_seconds * factor,
            "max_samples": int(measure.max_samples * factor),
            "min_samples": int(measure.min_samples * factor),
            "seed": measure.seed + 1,
        }
    )


def measure_target(
    baseline: Candidate,
    candidates: list[Candidate],
    job: MeasureJob,
    measure: MeasureConfig,
    progress: Progress = lambda _msg: None,
) -> TargetMeasurements:
    """Measure the baseline and every candidate; raises only if the baseline fails."""
    job.outputs_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(measure.seed)
    environment = machine_state(Path(measure.device_root))
    check_busy(environment, measure, baseline.target, progress)
    clocks = clock_log(measure)
    raw: dict[str, RawMeasurement] = {}
    outputs: dict[str, Path] = {}
    errors: dict[str, str] = {}
    progress(f"{baseline.target}: loading baseline {baseline.name}")
    base = _Measured(baseline, job, measure, clocks)
    try:
        for candidate in candidates:
            progress(f"{candidate.target}: measuring {candidate.name} against {baseline.name}")
            try:
                raw[candidate.name], outputs[candidate.name] = _interleave(
                    base, candidate, job, measure, rng, environment
                )
            except MeasurementError as exc:
                errors[candidate.name] = str(exc)
        stopped = "paired with candidates"
        if not base.samples:  # no candidate ran: the baseline still gets its own samples
            stopped = _sample_alone(base, measure)
        own = [b for b in clocks.blocks if b["worker"] == baseline.name]
        raw[baseline.name], outputs[baseline.name] = base.finish(
            job, measure, [], environment, stopped, blocks=own
        )
    finally:
        base.client.close()
    return TargetMeasurements(raw, outputs, errors)


def clock_log(measure: MeasureConfig) -> ClockLog:
    """A log of the device's state around every block, read under ``measure.device_root``."""
    state = DeviceState(Path(measure.device_root), measure.clock_cpus)
    return ClockLog(state, measure.clock_tolerance)


def measure_head_to_head(
    a: Candidate,
    b: Candidate,
    job: MeasureJob,
    measure: MeasureConfig,
    progress: Progress = lambda _msg: None,
) -> HeadToHeadRun:
    """Time two finalists interleaved with each other, block by block (the order drawn at
    random per pair, the idle worker paused), until the CI of their paired ratio is within
    ``target_rel_halfwidth`` (after ``min_samples``), or ``max_samples`` / ``max_seconds``.
    Raises MeasurementError if either worker fails."""
    environment = machine_state(Path(measure.device_root))
    check_busy(environment, measure, a.target, progress)
    progress(f"{a.target}: timing {a.name} against {b.name} head to head")
    rng = np.random.default_rng(measure.seed + 1)
    first = _Measured(a, job, measure)
    try:
        second = _Measured(b, job, measure)
        try:
            stopped = _race(first, second, measure, rng)
        finally:
            second.client.close()
    finally:
        first.client.close()
    return HeadToHeadRun(
        a=a.name,
        b=b.name,
        a_ms=np.asarray(first.samples, dtype=np.float64),
        b_ms=np.asarray(second.samples, dtype=np.float64),
        block_size=measure.block_size,
        stopped=stopped,
    )


def _race(
    first: _Measured, second: _Measured, measure: MeasureConfig, rng: np.random.Generator
) -> str:
    """Interleave blocks of two loaded workers; why it stopped."""
    min_blocks, max_blocks = _block_bounds(measure)
    deadline = time.monotonic() + measure.max_seconds
    for done in range(1, max_blocks + 1):
        _pair_of_blocks(first, second, measure, rng)
        if done < min_blocks:
            continue
        ratio = paired_ratio(
            block_medians(np.asarray(first.samples), measure.block_size),
            block_medians(np.asarray(second.samples), measure.block_size),
            measure.confidence,
        )
        if ratio.half_width <= measure.target_rel_halfwidth * ratio.value:
            return "precision reached"
        if time.monotonic() > deadline:
            return "max_seconds reached"
    return "max_samples reached"


def _block_bounds(measure: MeasureConfig) -> tuple[int, int]:
    """Block pairs to take at least (``min_samples``, and 4) and at most (``max_samples``)."""
    min_blocks = max(4, -(-measure.min_samples // measure.block_size))
    return min_blocks, max(2, measure.max_samples // measure.block_size)


def _pair_of_blocks(
    x: _Measured, y: _Measured, measure: MeasureConfig, rng: np.random.Generator
) -> list[float]:
    """One block of each worker, in an order drawn at random, the other one paused while a
    block is timed; the samples of ``x``'s block."""
    order = (x, y) if rng.random() < 0.5 else (y, x)
    taken: list[float] = []
    for timed, idle in (order, order[::-1]):
        idle.client.pause()  # resumed by its next call
        samples = timed.block(measure.block_size, measure.block_warmup)
        if timed is x:
            taken = samples
    return taken


def check_busy(
    environment: dict[str, Any], measure: MeasureConfig, target: str, progress: Progress
) -> None:
    """Refuse to measure on a busy machine, or note the warning in ``environment``."""
    busy = busy_reason(environment, measure.max_load_average)
    if busy and measure.on_busy == "refuse":
        raise MeasurementError(f"{target}: refusing to measure: {busy}")
    if busy:
        environment["warning"] = busy
        progress(f"{target}: warning: {busy}")


def precise_enough(
    paired_ms: list[float], candidate_ms: list[float], measure: MeasureConfig
) -> bool:
    """True when speedup and both medians have CIs within the target relative half-width."""
    target = measure.target_rel_halfwidth
    try:
        estimates = [
            median_ci(np.asarray(paired_ms), measure.confidence),
            median_ci(np.asarray(candidate_ms), measure.confidence),
            speedup_ci(
                np.asarray(paired_ms),
                np.asarray(candidate_ms),
                measure.block_size,
                measure.confidence,
                resamples=400,
                seed=measure.seed,
            ),
        ]
    except ValueError:  # too few samples for an interval yet
        return False
    return all(e.half_width <= target * abs(e.value) for e in estimates)


class EarlyFail:
    """Stop timing a candidate as soon as the speed gate clearly fails it.

    At planned looks (``looks_schedule``: block pairs 4, 8, 16, ..., fixed before any
    data) the repeated confidence interval of ``gates.sequential.speed_look`` is checked
    against ``limit``; wholly below it is a fail at any look with error <= alpha overall,
    so the trust figures hold however often it looks. A pass does not stop: the winner's
    selection needs the precision target.
    """

    def __init__(
        self, limit: float | None, min_blocks: int, max_blocks: int, measure: MeasureConfig
    ) -> None:
        self.limit = limit
        self.block_size = measure.block_size
        self.planned = frozenset(looks_schedule(min(min_blocks, max_blocks), max_blocks))
        self.design = SequentialDesign(
            max_n=max_blocks, alpha=1.0 - measure.confidence, min_n=min(min_blocks, max_blocks)
        )
        self.taken: list[int] = []

    def look(self, done: int, paired: list[float], samples: list[float]) -> str | None:
        """Why to stop after ``done`` block pairs (a clear fail), else None."""
        if self.limit is None or done not in self.planned:
            return None
        self.taken.append(done)
        d = log_ratios(np.asarray(paired), np.asarray(samples), self.block_size)
        seen = speed_look(d, self.taken, self.design, self.limit)
        return f"speed gate failed early: {seen.message}" if seen.decision == "fail" else None


def fidelity_look(
    base: _Measured, cand: _Measured, job: MeasureJob, measure: MeasureConfig
) -> str | None:
    """Why to stop timing ``cand`` early: its top-1 agreement with the baseline on the first
    ``early_fail_eval_items`` eval items (scored as the gate scores it) is wholly below
    ``job.stop_below_agreement`` at confidence ``1 - alpha * FIDELITY_LOOK_SHARE``; else
    None (no limit, not a classifier's outputs, or not clearly below)."""
    limit = job.stop_below_agreement
    if limit is None:
        return None
    items, batch = measure.early_fail_eval_items, measure.eval_batch
    ref, got = base.head_outputs(job, items, batch), cand.head_outputs(job, items, batch)
    if not ref or list(ref) != list(got):
        return None  # the full evaluation reports the mismatch
    first = next(iter(ref))
    try:
        agree = score_classifier(cand.candidate.name, got[first], ref[first], None).agree
    except MeasurementError:
        return None
    if agree is None or not len(agree):
        return None
    confidence = 1.0 - (1.0 - measure.confidence) * FIDELITY_LOOK_SHARE
    est = proportion_ci(agree, confidence)
    if est.high >= limit:
        return None
    return (
        f"top-1 agreement gate failed early: {est.value:.1%} [{est.low:.1%}, {est.high:.1%}] "
        f"on the first {len(agree)} eval items, below {limit:.1%}"
    )


def _sample_alone(base: _Measured, measure: MeasureConfig) -> str:
    deadline = time.monotonic() + measure.max_seconds
    while len(base.samples) < measure.max_samples:
        base.block(measure.block_size, measure.block_warmup)
        if len(base.samples) >= measure.min_samples:
            try:
                est = median_ci(np.asarray(base.samples), measure.confidence)
            except ValueError:
                continue
            if est.half_width <= measure.target_rel_halfwidth * est.value:
                return "precision reached"
        if time.monotonic() > deadline:
            return "max_seconds reached"
    return "max_samples reached"


def _interleave(
    base: _Measured,
    candidate: Candidate,
    job: MeasureJob,
    measure: MeasureConfig,
    rng: np.random.Generator,
    environment: dict,
) -> tuple[RawMeasurement, Path]:
    cand = _Measured(candidate, job, measure, base.clocks)
    first_block = len(base.clocks.blocks) if base.clocks is not None else 0
    try:
        paired: list[float] = []
        min_blocks, max_blocks = _block_bounds(measure)
        early = EarlyFail(job.stop_below_speedup, min_blocks, max_blocks, measure)
        deadline = time.monotonic() + measure.max_seconds
        stopped, failed_early = "max_samples reached", False
        for done in range(1, max_blocks + 1):
            paired.extend(_pair_of_blocks(base, cand, measure, rng))
            failed = early.look(done, paired, cand.samples)
            if failed is None and done == min_blocks:  # min_samples: the summary needs them
                failed = fidelity_look(base, cand, job, measure)
            if failed is not None:
                stopped = failed
                failed_early = True
                break
            if done >= min_blocks and precise_enough(paired, cand.samples, measure):
                stopped = "precision reached"
                break
            if done >= min_blocks and time.monotonic() > deadline:  # min_samples first
                stopped = "max_seconds reached"
                break
        base.client.pause()  # while the candidate's throughput and outputs run
        window = base.clocks.blocks[first_block:] if base.clocks is not None else []
        return cand.finish(job, measure, paired, environment, stopped, failed_early, window)
    finally:
        cand.client.close()
