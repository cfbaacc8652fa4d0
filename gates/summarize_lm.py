"""A language model's logits and speed runs -> ``CandidateSummary`` with confidence intervals.

Fidelity is ``llama-perplexity --kl-divergence``'s (``edgeproof.llama.fidelity``): mean
per-token KL(baseline || candidate) with a bootstrap CI over windows, its p99 and max,
top-1 agreement (Wilson), perplexity and the paired perplexity ratio. The classification
fields ``top1_agreement`` and ``mean_kl`` carry the token-level values (so selection and
Pareto fronts treat them like any fidelity); accuracy stays None (a language model's
"accuracy" is its perplexity, reported in ``language``). Latency is ms per generated token,
speedup its paired ratio to the baseline's, throughput prompt tokens/s.
"""

from __future__ import annotations

import numpy as np

from edgeproof.config import MeasureConfig
from edgeproof.llama.fidelity import fidelity, scored_targets, tokens_per_s_ci
from edgeproof.records import CandidateSummary, LanguageModelScores, RawMeasurement
from gates.stats import quantile_ci, speedup_ci, throughput_ci
from gates.summarize import p99_estimate


def summarize_language_model(
    candidate: str,
    precision: str,
    is_baseline: bool,
    raw: RawMeasurement,
    base_logits: np.ndarray,
    cand_logits: np.ndarray,
    windows: np.ndarray,
    bits_per_weight: float,
    n_params: int,
    measure: MeasureConfig,
) -> CandidateSummary:
    """Estimates for every gated or reported quantity of one language-model candidate."""
    conf, resamples, seed = measure.confidence, measure.bootstrap_resamples, measure.seed
    fid = fidelity(base_logits, cand_logits, scored_targets(windows), conf, resamples, seed)
    speed = raw.environment["language"]
    latency = np.asarray(raw.latency_ms, dtype=np.float64)
    speedup = None
    if not is_baseline and len(raw.paired_baseline_ms) > 0:
        speedup = speedup_ci(raw.paired_baseline_ms, latency, raw.block_size, conf, resamples, seed)
    language = LanguageModelScores(
        n_windows=fid.n_windows,
        n_tokens=fid.n_tokens,
        kl_p99=fid.kl_p99,
        kl_max=fid.kl_max,
        perplexity=fid.candidate_ppl,
        ppl_ratio=None if is_baseline else fid.ppl_ratio,
        pp_tokens_per_s=tokens_per_s_ci(np.asarray(speed["pp_seconds"]), speed["pp_tokens"], conf),
        tg_tokens_per_s=tokens_per_s_ci(np.asarray(speed["tg_seconds"]), speed["tg_tokens"], conf),
        pp_tokens=int(speed["pp_tokens"]),
        tg_tokens=int(speed["tg_tokens"]),
        bits_per_weight=bits_per_weight,
        n_params=n_params,
    )
    return CandidateSummary(
        candidate=candidate,
        precision=precision,
        is_baseline=is_baseline,
        n_eval_items=fid.n_tokens,
        accuracy=None,
        accuracy_drop=None,
        top1_agreement=fid.top1_agreement,
        mean_kl=fid.mean_kl,
        max_abs_logit_error=float(np.max(np.abs(cand_logits - base_logits))),
        latency_samples=len(latency),
        median_ms=quantile_ci(latency, 0.5, conf),
        p90_ms=quantile_ci(latency, 0.9, conf),
        p99_ms=p99_estimate(latency, conf),
        speedup=speedup,
        throughput_ips=throughput_ci(raw.throughput_s, raw.throughput_batch, conf, resamples, seed),
        peak_rss_mb=raw.peak_rss_mb,
        load_rss_mb=raw.load_rss_mb,
        load_seconds=raw.load_seconds,
        size_mb=raw.size_mb,
        threads=raw.threads,
        language=language,
    )
