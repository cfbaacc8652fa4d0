"""Raw observations of one candidate -> ``CandidateSummary`` with confidence intervals."""

from __future__ import annotations

from edgeproof.config import MeasureConfig
from edgeproof.records import CandidateSummary, ItemScores, RawMeasurement
from gates.stats import (
    mean_ci,
    min_samples_for_quantile,
    paired_difference_ci,
    proportion_ci,
    quantile_ci,
    speedup_ci,
    throughput_ci,
)


def summarize(
    candidate: str,
    precision: str,
    is_baseline: bool,
    raw: RawMeasurement,
    scores: ItemScores,
    measure: MeasureConfig,
) -> CandidateSummary:
    """Estimates for every gated quantity; p99 only when there are enough samples."""
    conf = measure.confidence
    latency = raw.latency_ms
    labelled = scores.correct is not None and scores.baseline_correct is not None
    p99 = None
    if len(latency) >= min_samples_for_quantile(0.99, conf):
        p99 = quantile_ci(latency, 0.99, conf)
    speedup = None
    if not is_baseline and len(raw.paired_baseline_ms):
        speedup = speedup_ci(
            raw.paired_baseline_ms,
            latency,
            raw.block_size,
            conf,
            measure.bootstrap_resamples,
            measure.seed,
        )
    return CandidateSummary(
        candidate=candidate,
        precision=precision,
        is_baseline=is_baseline,
        n_eval_items=len(scores.agree),
        accuracy=proportion_ci(scores.correct, conf) if labelled else None,
        accuracy_drop=(
            paired_difference_ci(scores.baseline_correct, scores.correct, conf)
            if labelled
            else None
        ),
        top1_agreement=proportion_ci(scores.agree, conf),
        mean_kl=mean_ci(scores.kl, conf, measure.bootstrap_resamples, measure.seed),
        max_abs_logit_error=float(scores.max_abs_error.max()),
        latency_samples=len(latency),
        median_ms=quantile_ci(latency, 0.5, conf),
        p90_ms=quantile_ci(latency, 0.9, conf),
        p99_ms=p99,
        speedup=speedup,
        throughput_ips=throughput_ci(raw.throughput_s, raw.throughput_batch, conf),
        peak_rss_mb=raw.peak_rss_mb,
        load_rss_mb=raw.load_rss_mb,
        load_seconds=raw.load_seconds,
        size_mb=raw.size_mb,
        threads=raw.threads,
    )
