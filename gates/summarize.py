"""Raw observations of one candidate -> ``CandidateSummary`` with confidence intervals."""

from __future__ import annotations

import numpy as np

from edgeproof.config import MeasureConfig
from edgeproof.records import CandidateSummary, Estimate, ItemScores, RawMeasurement
from gates.stats import (
    mean_ci,
    min_samples_for_quantile,
    paired_difference_ci,
    proportion_ci,
    quantile_ci,
    speedup_ci,
    throughput_ci,
)


def _p99(latency_ms: np.ndarray, confidence: float) -> Estimate | None:
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
) -> CandidateSummary:
    """Estimates for every gated or reported quantity of one candidate.

    Accuracy and accuracy drop are None without labels; the baseline's own accuracy drop
    is still computed (0 with a CI). Speedup is None for the baseline or without paired
    baseline samples; p99 is None when there are too few latency samples for its CI.
    Raises ValueError (from ``gates.stats``) when a required estimate has too little data.
    """
    conf, resamples, seed = measure.confidence, measure.bootstrap_resamples, measure.seed
    latency = np.asarray(raw.latency_ms, dtype=np.float64)
    labelled = scores.correct is not None and scores.baseline_correct is not None
    accuracy = drop = speedup = None
    if labelled:
        accuracy = proportion_ci(scores.correct, conf)
        drop = paired_difference_ci(scores.baseline_correct, scores.correct, conf)
    if not is_baseline and len(raw.paired_baseline_ms) > 0:
        speedup = speedup_ci(raw.paired_baseline_ms, latency, raw.block_size, conf, resamples, seed)
    return CandidateSummary(
        candidate=candidate,
        precision=precision,
        is_baseline=is_baseline,
        n_eval_items=len(scores.agree),
        accuracy=accuracy,
        accuracy_drop=drop,
        top1_agreement=proportion_ci(scores.agree, conf),
        mean_kl=mean_ci(scores.kl, conf, resamples, seed),
        max_abs_logit_error=float(np.max(scores.max_abs_error)),
        latency_samples=len(latency),
        median_ms=quantile_ci(latency, 0.5, conf),
        p90_ms=quantile_ci(latency, 0.9, conf),
        p99_ms=_p99(latency, conf),
        speedup=speedup,
        throughput_ips=throughput_ci(raw.throughput_s, raw.throughput_batch, conf, resamples, seed),
        peak_rss_mb=raw.peak_rss_mb,
        load_rss_mb=raw.load_rss_mb,
        load_seconds=raw.load_seconds,
        size_mb=raw.size_mb,
        threads=raw.threads,
        energy_mj_per_inference=raw.environment.get("energy", {}).get("mj_per_inference"),
    )
