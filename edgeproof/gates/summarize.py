"""Raw observations of one candidate -> ``CandidateSummary`` with confidence intervals."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeproof.config import FidelityGate, MeasureConfig
from edgeproof.gates.stats import (
    mean_ci,
    min_samples_for_quantile,
    paired_difference_ci,
    proportion_ci,
    quantile_ci,
    speedup_ci,
    throughput_ci,
)
from edgeproof.records import (
    CandidateSummary,
    CustomMetricScores,
    Estimate,
    ItemScores,
    MetricSummary,
    OutputFidelity,
    OutputScores,
    RawMeasurement,
)

DEFAULT_LOW_QUANTILE = FidelityGate.model_fields["low_quantile"].default


def p99_estimate(latency_ms: np.ndarray, confidence: float) -> Estimate | None:
    """p99 with its CI, or None when there are too few samples for one."""
    if len(latency_ms) < min_samples_for_quantile(0.99, confidence):
        return None
    return quantile_ci(latency_ms, 0.99, confidence)


def summarize(
    candidate: str,
    precision: str,
    is_baseline: bool,
    raw: RawMeasurement,
    scores: ItemScores,
    measure: MeasureConfig,
    low_quantile: float = DEFAULT_LOW_QUANTILE,
) -> CandidateSummary:
    """Estimates for every gated or reported quantity of one candidate.

    Accuracy and accuracy drop are None without labels; the baseline's own accuracy drop
    is still computed (0 with a CI). Speedup is None for the baseline or without paired
    baseline samples; p99 is None when there are too few latency samples for its CI.
    Per output tensor (label-free tasks): cosine mean, its ``low_quantile`` (None when too
    few items for that quantile's CI), relative L2 mean, kNN agreement for embeddings.
    Raises ValueError (from ``gates.stats``) when a required estimate has too little data.
    """
    conf, resamples, seed = measure.confidence, measure.bootstrap_resamples, measure.seed
    labelled = scores.correct is not None and scores.baseline_correct is not None
    accuracy = drop = None
    if labelled:
        accuracy = proportion_ci(scores.correct, conf)
        drop = paired_difference_ci(scores.baseline_correct, scores.correct, conf)
    return CandidateSummary(
        candidate=candidate,
        precision=precision,
        is_baseline=is_baseline,
        n_eval_items=len(scores.max_abs_error),
        accuracy=accuracy,
        accuracy_drop=drop,
        top1_agreement=None if scores.agree is None else proportion_ci(scores.agree, conf),
        mean_kl=None if scores.kl is None else mean_ci(scores.kl, conf, resamples, seed),
        max_abs_logit_error=float(np.max(scores.max_abs_error)),
        energy_mj_per_inference=raw.environment.get("energy", {}).get("mj_per_inference"),
        outputs=tuple(_fidelity(o, low_quantile, measure) for o in scores.outputs),
        mae=None if scores.abs_error is None else mean_ci(scores.abs_error, conf, resamples, seed),
        mae_increase=_mae_increase(scores, measure),
        metric=None if scores.metric is None else metric_summary(scores.metric, measure),
        **speed_fields(raw, is_baseline, measure),
    )


def metric_summary(scores: CustomMetricScores, measure: MeasureConfig) -> MetricSummary:
    """The team's metric: mean with CI, paired mean drop with CI, and the worst slice (the
    one whose mean drop is largest) with its drop's CI and its baseline mean."""
    conf, resamples, seed = measure.confidence, measure.bootstrap_resamples, measure.seed
    worst = worst_drop = worst_base = None
    groups = [] if scores.slices is None else list(np.unique(scores.slices))
    if len(groups) > 1:
        assert scores.slices is not None
        members = {g: scores.slices == g for g in groups}
        worst = max(groups, key=lambda g: (float(scores.drop[members[g]].mean()), str(g)))
        chosen = members[worst]
        worst_drop = mean_ci(scores.drop[chosen], conf, resamples, seed)
        worst_base = float(scores.baseline[chosen].mean())
    return MetricSummary(
        name=scores.name,
        higher_is_better=scores.higher_is_better,
        value=mean_ci(scores.candidate, conf, resamples, seed),
        baseline=float(scores.baseline.mean()),
        drop=mean_ci(scores.drop, conf, resamples, seed),
        worst_slice=None if worst is None else str(worst),
        worst_slice_drop=worst_drop,
        worst_slice_baseline=worst_base,
        slices=len(groups),
    )


def speed_fields(raw: RawMeasurement, is_baseline: bool, measure: MeasureConfig) -> dict[str, Any]:
    """The latency (median, p90, p99, speedup), throughput, memory and size fields of a
    ``CandidateSummary``. Speedup is None for the baseline or without paired baseline
    samples; p99 is None when there are too few latency samples for its CI."""
    conf, resamples, seed = measure.confidence, measure.bootstrap_resamples, measure.seed
    latency = np.asarray(raw.latency_ms, dtype=np.float64)
    speedup = None
    if not is_baseline and len(raw.paired_baseline_ms) > 0:
        speedup = speedup_ci(raw.paired_baseline_ms, latency, raw.block_size, conf, resamples, seed)
    return {
        "latency_samples": len(latency),
        "median_ms": quantile_ci(latency, 0.5, conf),
        "p90_ms": quantile_ci(latency, 0.9, conf),
        "p99_ms": p99_estimate(latency, conf),
        "speedup": speedup,
        "throughput_ips": throughput_ci(
            raw.throughput_s, raw.throughput_batch, conf, resamples, seed
        ),
        "peak_rss_mb": raw.peak_rss_mb,
        "load_rss_mb": raw.load_rss_mb,
        "load_seconds": raw.load_seconds,
        "size_mb": raw.size_mb,
        "threads": raw.threads,
    }


def _fidelity(scores: OutputScores, low_quantile: float, measure: MeasureConfig) -> OutputFidelity:
    conf, resamples, seed = measure.confidence, measure.bootstrap_resamples, measure.seed
    enough = len(scores.cosine) >= min_samples_for_quantile(low_quantile, conf)
    return OutputFidelity(
        output=scores.name,
        cosine_mean=mean_ci(scores.cosine, conf, resamples, seed),
        cosine_low=quantile_ci(scores.cosine, low_quantile, conf) if enough else None,
        rel_l2_mean=mean_ci(scores.rel_l2, conf, resamples, seed),
        max_abs_error=float(np.max(scores.max_abs_error)),
        knn_agreement=None
        if scores.knn_agree is None
        else mean_ci(scores.knn_agree, conf, resamples, seed),
    )


def _mae_increase(scores: ItemScores, measure: MeasureConfig) -> Estimate | None:
    """Candidate MAE - baseline MAE, a paired mean over the same items (positive = worse)."""
    if scores.abs_error is None or scores.baseline_abs_error is None:
        return None
    diff = scores.abs_error - scores.baseline_abs_error
    return mean_ci(diff, measure.confidence, measure.bootstrap_resamples, measure.seed)
