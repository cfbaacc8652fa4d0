"""A language model's logits and speed runs -> ``CandidateSummary`` with confidence intervals.

Fidelity is ``llama-perplexity --kl-divergence``'s (``gates.lm_fidelity``): mean
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
from edgeproof.gates.lm_fidelity import fidelity, scored_targets, speed_estimates
from edgeproof.gates.summarize import speed_fields
from edgeproof.records import CandidateSummary, LanguageModelScores, RawMeasurement


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
    rates = speed_estimates(
        np.asarray(speed["pp_seconds"]),
        speed["pp_tokens"],
        np.asarray(speed["tg_seconds"]),
        speed["tg_tokens"],
        conf,
    )
    language = LanguageModelScores(
        n_windows=fid.n_windows,
        n_tokens=fid.n_tokens,
        kl_p99=fid.kl_p99,
        kl_max=fid.kl_max,
        perplexity=fid.candidate_ppl,
        ppl_ratio=None if is_baseline else fid.ppl_ratio,
        pp_tokens_per_s=rates.pp_tokens_per_s,
        tg_tokens_per_s=rates.tg_tokens_per_s,
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
        language=language,
        **speed_fields(raw, is_baseline, measure),
    )
