"""Fidelity of a quantized GGUF to its baseline, as ``llama-perplexity --kl-divergence`` scores it.

Inputs are the per-token logits that ``runner.compute_logits`` wrote for the baseline and
the candidate on the same held-out byte windows (second half of each window only, where
every position sees at least ctx/2 tokens of context), and the true next bytes.

- KL(base || cand) per token, from log-softmax in float64 (float32 cancels badly at the
  ~1e-5 KLs of a Q8_0 model). Mean KL with a CI, p99 and max KL.
- Top-1 agreement ("same top p"): share of tokens where both argmaxes agree; Wilson CI.
- Perplexity of each model on the true next bytes, and candidate / baseline ratio.

Tokens within one window share their context, so they are correlated: a CI that treats
2,048 tokens as independent is too narrow. The mean KL and the perplexities therefore get
bootstrap CIs over windows (each window's mean is one observation; windows have equal
length, so the mean of window means is the token mean), and the perplexity ratio a paired
bootstrap over windows (per-window NLL difference, exponentiated). The Wilson interval of
the agreement counts tokens, as llama.cpp does: read it as a lower bound on the true
uncertainty. Quantization moves KL far more than perplexity (which can even improve by
chance), so gate on KL and agreement, report perplexity.

Tokens/s CIs come from the timed repetitions: tokens / median seconds per repetition, with
the median's order-statistic interval (``gates.stats.throughput_ci``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

from edgeproof.gates.stats import mean_ci, proportion_ci, throughput_ci
from edgeproof.records import Estimate


@dataclass(frozen=True)
class Fidelity:
    """Candidate vs baseline on the same held-out tokens."""

    n_windows: int
    n_tokens: int
    mean_kl: Estimate  # bootstrap over windows
    kl_p99: float
    kl_max: float
    top1_agreement: Estimate  # Wilson over tokens
    baseline_ppl: Estimate  # bootstrap over windows
    candidate_ppl: Estimate
    ppl_ratio: Estimate  # candidate / baseline, paired bootstrap over windows


def scored_targets(windows: np.ndarray) -> np.ndarray:
    """True next token ids of the scored positions of (n, ctx + 1) windows: (n, ctx - ctx // 2)."""
    ctx = windows.shape[1] - 1
    return windows[:, ctx // 2 + 1 :]


def token_kl(base_logits: np.ndarray, cand_logits: np.ndarray) -> np.ndarray:
    """KL(base || cand) per token (float64), over the last axis."""
    log_p = log_softmax(np.asarray(base_logits, dtype=np.float64), axis=-1)
    log_q = log_softmax(np.asarray(cand_logits, dtype=np.float64), axis=-1)
    kl = np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)
    return np.maximum(kl, 0.0)  # rounding can leave -1e-17 where the two are identical


def token_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Negative log-likelihood (nats) of ``targets`` under ``logits``, per token."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64), axis=-1)
    return -np.take_along_axis(log_p, targets[..., None].astype(np.int64), axis=-1)[..., 0]


def _exp(estimate: Estimate) -> Estimate:
    return Estimate(
        value=math.exp(estimate.value),
        low=math.exp(estimate.low),
        high=math.exp(estimate.high),
        confidence=estimate.confidence,
    )


def fidelity(
    base_logits: np.ndarray,
    cand_logits: np.ndarray,
    targets: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Fidelity:
    """Compare logits of shape (windows, positions, vocab); ``targets`` (windows, positions)."""
    if base_logits.shape != cand_logits.shape or base_logits.ndim != 3:
        raise ValueError(
            f"logits must be (windows, positions, vocab) of equal shape, got "
            f"{base_logits.shape} and {cand_logits.shape}"
        )
    if targets.shape != base_logits.shape[:2]:
        raise ValueError(f"targets {targets.shape} do not match logits {base_logits.shape[:2]}")
    n_windows = base_logits.shape[0]
    kl = np.stack([token_kl(b, c) for b, c in zip(base_logits, cand_logits, strict=True)])
    nll_b = np.stack([token_nll(b, t) for b, t in zip(base_logits, targets, strict=True)])
    nll_c = np.stack([token_nll(c, t) for c, t in zip(cand_logits, targets, strict=True)])
    same_top = base_logits.argmax(-1) == cand_logits.argmax(-1)
    boot = {"confidence": confidence, "resamples": resamples, "seed": seed}
    return Fidelity(
        n_windows=n_windows,
        n_tokens=int(kl.size),
        mean_kl=mean_ci(kl.mean(axis=1), **boot),
        kl_p99=float(np.quantile(kl, 0.99)),
        kl_max=float(kl.max()),
        top1_agreement=proportion_ci(same_top, confidence),
        baseline_ppl=_exp(mean_ci(nll_b.mean(axis=1), **boot)),
        candidate_ppl=_exp(mean_ci(nll_c.mean(axis=1), **boot)),
        ppl_ratio=_exp(mean_ci((nll_c - nll_b).mean(axis=1), **boot)),
    )


@dataclass(frozen=True)
class SpeedEstimates:
    """Tokens/s of prompt processing (pp) and generation (tg) with CIs."""

    pp_tokens_per_s: Estimate
    tg_tokens_per_s: Estimate


def tokens_per_s_ci(seconds_per_rep: np.ndarray, tokens: int, confidence: float) -> Estimate:
    """``tokens`` / median seconds per repetition, with the median's interval inverted."""
    return throughput_ci(np.asarray(seconds_per_rep, dtype=np.float64), tokens, confidence)


def speed_estimates(
    pp_seconds: np.ndarray,
    pp_tokens: int,
    tg_seconds: np.ndarray,
    tg_tokens: int,
    confidence: float = 0.95,
) -> SpeedEstimates:
    """pp and tg tokens/s CIs from the repetitions of a ``runner.SpeedRun``."""
    return SpeedEstimates(
        pp_tokens_per_s=tokens_per_s_ci(pp_seconds, pp_tokens, confidence),
        tg_tokens_per_s=tokens_per_s_ci(tg_seconds, tg_tokens, confidence),
    )
