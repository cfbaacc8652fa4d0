"""Task metrics per eval item: correctness and fidelity to the baseline's outputs.

Accuracy on a few hundred items rarely separates int8 candidates (they often agree 100% on
top-1), so fidelity is scored too: top-1 agreement with the baseline, KL divergence of the
softmax outputs and the largest absolute logit difference, all per item so ``gates`` can
put confidence intervals on them.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from edgeproof.errors import MeasurementError
from edgeproof.records import ItemScores


def score_classifier(
    candidate: str,
    logits: np.ndarray,
    baseline_logits: np.ndarray,
    labels: np.ndarray | None,
) -> ItemScores:
    """Per-item scores of a classifier's logits against the baseline's and the labels."""
    if logits.shape != baseline_logits.shape:
        raise MeasurementError(
            f"{candidate}: output shape {logits.shape} differs from the baseline's "
            f"{baseline_logits.shape}"
        )
    if logits.ndim != 2:
        raise MeasurementError(f"{candidate}: expected (items, classes) logits, got {logits.shape}")
    if not np.isfinite(logits).all():
        raise MeasurementError(f"{candidate}: outputs contain NaN or inf")
    cand = logits.astype(np.float64)
    base = baseline_logits.astype(np.float64)
    top1, base_top1 = cand.argmax(axis=1), base.argmax(axis=1)
    log_p, log_q = log_softmax(base, axis=1), log_softmax(cand, axis=1)
    kl = np.maximum((np.exp(log_p) * (log_p - log_q)).sum(axis=1), 0.0)
    correct = base_correct = None
    if labels is not None:
        if len(labels) != len(cand):
            raise MeasurementError(f"{candidate}: {len(cand)} outputs for {len(labels)} labels")
        correct, base_correct = top1 == labels, base_top1 == labels
    return ItemScores(
        candidate=candidate,
        correct=correct,
        baseline_correct=base_correct,
        agree=top1 == base_top1,
        kl=kl,
        max_abs_error=np.abs(cand - base).max(axis=1),
    )
