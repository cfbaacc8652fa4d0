"""Records passed between layers: candidates, raw observations, summaries, verdicts.

Pure data, no logic and no I/O, so every layer may import it: targets produce
``Candidate``; the measurement harness produces ``RawMeasurement``; evaluation produces
``ItemScores``; ``gates`` turns those into ``CandidateSummary`` (estimates with confidence
intervals) and ``Verdict``; tracking and reports serialize the pydantic ones as JSON.
Raw arrays stay numpy (dataclasses); everything that is reported is pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Status = Literal["pass", "fail", "inconclusive", "skipped"]
VerdictStatus = Literal["pass", "fail", "inconclusive", "error"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Candidate(Record):
    """A model variant on disk plus the recipe that made it."""

    target: str
    name: str
    files: tuple[Path, ...]  # primary model file first
    recipe: dict[str, Any]
    precision: str  # e.g. "fp32", "int8"
    is_baseline: bool = False
    failure: str | None = None  # what the optimizer reported it could not deliver: fails it

    @property
    def model_file(self) -> Path:
        """The primary model file; a candidate that failed before it had one (an optimizer
        error: ``files`` empty) raises a ValueError naming it, never an IndexError. Callers
        that may see such a candidate ask ``has_files`` first."""
        if not self.files:
            why = f": {self.failure}" if self.failure else ""
            raise ValueError(f"candidate {self.target}/{self.name} has no model file{why}")
        return self.files[0]

    @property
    def has_files(self) -> bool:
        """Whether the candidate has model files on disk (an error candidate may have none)."""
        return bool(self.files)

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


@dataclass(frozen=True)
class RawMeasurement:
    """What the measurement subprocess observed for one candidate (no statistics yet).

    ``latency_ms`` are batch-1 timings in the order taken; ``paired_baseline_ms`` are the
    baseline's timings from the blocks interleaved with this candidate's (same length,
    block ``i`` of one is adjacent in time to block ``i`` of the other); empty for the
    baseline itself. ``throughput_s`` are wall seconds per batch of ``throughput_batch``.
    """

    candidate: str
    latency_ms: np.ndarray
    paired_baseline_ms: np.ndarray
    block_size: int
    throughput_batch: int
    throughput_s: np.ndarray
    peak_rss_mb: float
    load_rss_mb: float  # RSS growth caused by loading the model
    load_seconds: float
    size_mb: float
    threads: int
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputScores:
    """Per eval item fidelity of one output tensor to the baseline's (label-free tasks)."""

    name: str
    cosine: np.ndarray  # cosine similarity of the item's flattened outputs
    rel_l2: np.ndarray  # ||candidate - baseline|| / ||baseline|| per item
    max_abs_error: np.ndarray  # max |difference| per item
    knn_agree: np.ndarray | None = None  # embedding: share of k nearest neighbours kept


@dataclass(frozen=True)
class ItemScores:
    """Per eval item scores of one candidate; fidelity arrays compare with the baseline.

    Classification fills ``correct`` (None without labels), ``agree`` and ``kl``; the
    label-free tasks fill ``outputs`` (one entry per output tensor); regression also fills
    the absolute errors against the targets. For the baseline itself the fidelity arrays
    are trivially perfect.
    """

    candidate: str
    correct: np.ndarray | None  # bool per item
    baseline_correct: np.ndarray | None  # bool per item, same items
    agree: np.ndarray | None  # bool per item: same top-1 as the baseline
    kl: np.ndarray | None  # KL(baseline softmax || candidate softmax) per item, nats
    max_abs_error: np.ndarray  # max |output difference| per item
    outputs: tuple[OutputScores, ...] = ()
    abs_error: np.ndarray | None = None  # regression: mean |candidate - target| per item
    baseline_abs_error: np.ndarray | None = None
    metric: CustomMetricScores | None = None  # the team's own metric (model.metric)


@dataclass(frozen=True)
class CustomMetricScores:
    """The team's metric per eval item: the candidate's and the baseline's scores, the drop
    (how much worse the candidate is, in the metric's direction) and each item's slice."""

    name: str
    higher_is_better: bool
    candidate: np.ndarray
    baseline: np.ndarray
    drop: np.ndarray
    slices: np.ndarray | None = None


class Estimate(Record):
    """A point estimate with a two-sided confidence interval."""

    value: float
    low: float
    high: float
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def format_estimate(est: Estimate | None, digits: int = 2, scale: float = 1.0) -> str:
    """``value [low, high]`` for reports, or an em dash when there is no estimate."""
    if est is None:
        return "—"
    v, lo, hi = (x * scale for x in (est.value, est.low, est.high))
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


class OutputFidelity(Record):
    """Fidelity of one output tensor to the baseline's, over the eval items."""

    output: str
    cosine_mean: Estimate
    cosine_low: Estimate | None  # a low quantile (gates.fidelity.low_quantile); None: too few
    rel_l2_mean: Estimate
    max_abs_error: float
    knn_agreement: Estimate | None = None  # embedding tasks only


class LanguageModelScores(Record):
    """A language model's held-out fidelity and llama-bench style speed (task language_model).

    Per-token KL and top-1 agreement are also in ``CandidateSummary.mean_kl`` /
    ``top1_agreement``; the median latency there is milliseconds per generated token.
    """

    n_windows: int
    n_tokens: int  # scored positions (second half of each window)
    kl_p99: float
    kl_max: float
    perplexity: Estimate
    ppl_ratio: Estimate | None  # candidate / baseline; None for the baseline
    pp_tokens_per_s: Estimate
    tg_tokens_per_s: Estimate
    pp_tokens: int
    tg_tokens: int
    bits_per_weight: float
    n_params: int


class OpCoverage(Record):
    """How much of a compiled graph runs on the accelerator (e.g. the Edge TPU compiler's log)."""

    accelerator: str
    share: float | None  # ops on the accelerator / all ops; None when the log gave no count
    ops_accelerator: int | None = None
    ops_total: int | None = None
    first_fallback: str | None = None  # the first op left on the CPU, with the reason
    subgraphs: int | None = None


class MetricSummary(Record):
    """The team's metric: the candidate's mean, its paired drop against the baseline (positive
    = worse), and the worst slice's drop where the eval data has slices."""

    name: str
    higher_is_better: bool
    value: Estimate
    baseline: float
    drop: Estimate
    worst_slice: str | None = None
    worst_slice_drop: Estimate | None = None
    worst_slice_baseline: float | None = None
    slices: int = 0


class CandidateSummary(Record):
    """Everything gated or reported about one candidate, with CIs where sampled.

    Classification fills accuracy, top-1 agreement and KL; the label-free tasks fill
    ``outputs`` (per output tensor); regression also fills the MAE and its increase.
    """

    candidate: str
    precision: str
    is_baseline: bool
    n_eval_items: int
    accuracy: Estimate | None
    accuracy_drop: Estimate | None  # baseline - candidate (positive = worse)
    top1_agreement: Estimate | None
    mean_kl: Estimate | None
    max_abs_logit_error: float
    latency_samples: int
    median_ms: Estimate
    p90_ms: Estimate
    p99_ms: Estimate | None  # None when too few samples for a p99 CI
    speedup: Estimate | None  # baseline median / candidate median; None for the baseline
    throughput_ips: Estimate
    peak_rss_mb: float
    load_rss_mb: float
    load_seconds: float
    size_mb: float
    threads: int
    # mJ per inference over the throughput window; None where the runner has no counter
    energy_mj_per_inference: float | None = None
    outputs: tuple[OutputFidelity, ...] = ()
    mae: Estimate | None = None  # regression: mean |prediction - target|
    mae_increase: Estimate | None = None  # candidate MAE - baseline MAE (positive = worse)
    language: LanguageModelScores | None = None  # task language_model
    op_coverage: OpCoverage | None = None  # accelerator targets that compile the graph
    metric: MetricSummary | None = None  # the team's own metric (model.metric)
    task: str | None = None  # the task kind that summarized it (its metrics and report rows)
    figures: dict[str, Estimate] = {}  # a task kind's own sampled figures, by name


class Check(Record):
    """One gate check: its status, the number, the limit, and why."""

    name: str
    status: Status
    value: float | None = None
    low: float | None = None
    high: float | None = None
    limit: float | None = None
    baseline: float | None = None
    message: str


class Verdict(Record):
    """All checks of a candidate; every failure is listed, not only the first."""

    candidate: str
    status: VerdictStatus
    checks: tuple[Check, ...]
    reasons: tuple[str, ...]


class CandidateOutcome(Record):
    """A candidate with its summary and verdict, or the error that stopped it."""

    candidate: Candidate
    summary: CandidateSummary | None
    verdict: Verdict
    error: str | None = None


class ChampionComparison(Record):
    """The winner re-measured against the current champion, in the same run and machine."""

    registered_model: str
    champion_version: str
    # kept: not worse, but from the champion's own source and not clearly better
    status: Literal["not-worse", "kept", "worse", "identical", "error"]
    checks: tuple[Check, ...] = ()
    summary: CandidateSummary | None = None  # the winner, with the champion as baseline
    reason: str


class ChampionRecheck(Record):
    """The deployed champion re-measured against its recorded evidence (verify-champion)."""

    target: str
    registered_model: str
    version: str | None  # None: no champion to check
    # incomparable: measured now on a device whose fingerprint differs from the evidence's
    status: Literal["healthy", "regressed", "no-champion", "incomparable"]
    reasons: tuple[str, ...] = ()
    recorded_speedup: Estimate | None = None
    speedup_now: Estimate | None = None
    verdict_now: Verdict | None = None
    rolled_back_to: str | None = None
    rollback_refused: str | None = None  # why a wanted rollback did not happen
    mlflow_run_id: str | None = None


class HeadToHeadRecord(Record):
    """Two finalists timed interleaved with each other (not via the baseline): how many
    times faster ``a`` is than ``b`` (``ratio``, from ``blocks`` paired block medians)."""

    a: str
    b: str
    ratio: Estimate
    blocks: int
    stopped: str


class TargetOutcome(Record):
    """One target's candidates, the chosen winner (if any) and why."""

    target: str
    available: bool
    reason: str | None = None  # why unavailable, or why no winner
    baseline: str | None = None
    outcomes: tuple[CandidateOutcome, ...] = ()
    winner: str | None = None
    runner_up: str | None = None
    # noise-aware Pareto front of the measured candidates (accuracy or agreement, latency,
    # peak RSS, size), and for each candidate off it, the candidates that dominate it
    pareto_front: tuple[str, ...] = ()
    dominated_by: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    status: Literal["pass", "blocked", "unavailable", "error"]
    plots: tuple[str, ...] = ()  # PNG file names, in the target's MLflow run and the report
    champion: ChampionComparison | None = None  # None: no champion yet, or comparison off
    # close finalists compared only via the baseline, to be timed against each other
    wanted_head_to_head: tuple[tuple[str, str], ...] = ()
    head_to_head: tuple[HeadToHeadRecord, ...] = ()  # what those head-to-head runs found

    def headline(self) -> str:
        """One line: the status and the winner, or why there is none."""
        if self.winner is not None:
            return f"{self.status}, winner {self.winner}"
        return f"{self.status}: {self.reason}" if self.reason else self.status


class TargetResult(Record):
    """What gating one target gives the pipeline: its outcome and its MLflow runs."""

    outcome: TargetOutcome
    target_run: str | None  # the target's MLflow run (None: nothing was logged)
    candidate_runs: dict[str, str] = Field(default_factory=dict)  # candidate -> MLflow run id

    @classmethod
    def failed(cls, target: str, reason: str) -> TargetResult:
        """A target that gave no verdict (its runner failed): ``error``, nothing to promote."""
        outcome = TargetOutcome(target=target, available=True, reason=reason, status="error")
        return cls(outcome=outcome, target_run=None)


class Lineage(Record):
    """Where the inputs came from: git revision and DVC content hashes."""

    git_sha: str | None
    git_branch: str | None
    git_dirty: bool | None
    params_sha256: str
    dvc_md5: dict[str, str]  # path (as in dvc.lock) -> md5


class RunInfo(Record):
    """One pipeline run: identity, lineage and where its records live."""

    run_name: str  # also the report folder name
    model: str
    mlflow_run_id: str | None
    mlflow_experiment_id: str | None
    tracking_uri: str
    started_at: str  # ISO 8601 UTC
    trigger: str  # "cli", "github-actions", "prefect-deployment", ...
    lineage: Lineage


class Promotion(Record):
    """What happened in the registry for one target: registration and alias moves."""

    target: str
    registered_model: str
    version: str | None = None  # the version registered in this run, if any
    champion_before: str | None = None
    champion_after: str | None = None
    challenger: str | None = None
    moved: bool = False
    refused: bool = False  # a passing winner whose champion move was refused (conflict)
    reason: str


RunStatus = Literal["pass", "blocked", "error"]
EXIT_CODES: dict[str, int] = {"pass": 0, "blocked": 1, "error": 2}


class RunResult(Record):
    """The outcome of one pipeline run, as written to verdict.json."""

    run: RunInfo
    status: RunStatus
    exit_code: int
    targets: tuple[TargetOutcome, ...]
    promotions: tuple[Promotion, ...] = ()
    error: str | None = None
    data_failures: tuple[str, ...] = ()  # failed data-gate expectations, one line each
    warnings: tuple[str, ...] = ()
