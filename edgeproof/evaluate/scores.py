"""Task metrics per eval item: correctness and fidelity to the baseline's outputs.

Accuracy on a few hundred items rarely separates int8 candidates (they often agree 100% on
top-1), so fidelity is scored too: top-1 agreement with the baseline, KL divergence of the
softmax outputs and the largest absolute logit difference, all per item so ``gates`` can
put confidence intervals on them.

Label-free tasks (embedding, regression, raw) are scored per output tensor against the
baseline's: cosine similarity and relative L2 error of each item's flattened output, the
largest absolute difference, and for embeddings whether each item keeps its k nearest
neighbours (int8 can drift a transformer's embeddings far while the speedup looks great).
Regression adds each item's absolute error against its targets, for candidate and baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from scipy.special import log_softmax

from edgeproof.config import FidelityGate
from edgeproof.errors import MeasurementError
from edgeproof.records import ItemScores, OutputScores

# how a tensor task's outputs are scored: a classifier's first output as class scores; the
# others per output tensor (cosine, relative L2; an embedding also its neighbours; a
# regression also its first output's error against the targets)
Scoring = Literal["classification", "regression", "embedding", "raw"]
# what a classifier's class output holds: logits (softmax), probabilities, or class ids
ClassOutput = Literal["logits", "probabilities", "labels"]


def load_outputs(path: Path) -> dict[str, np.ndarray]:
    """A candidate's eval outputs as written by the worker: output name -> array."""
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def score_candidate(
    task: Scoring,
    candidate: str,
    outputs: dict[str, np.ndarray],
    baseline_outputs: dict[str, np.ndarray],
    labels: np.ndarray | None,
    fidelity: FidelityGate,
    kind: ClassOutput = "logits",
) -> ItemScores:
    """Per-item scores of one candidate, scored as ``task`` scores them; ``kind``: what a
    classifier's first output holds (``model.outputs``, or as observed at resolve)."""
    if list(outputs) != list(baseline_outputs):
        raise MeasurementError(
            f"{candidate}: outputs {list(outputs)} differ from the baseline's "
            f"{list(baseline_outputs)}"
        )
    if task == "classification":
        first = next(iter(outputs))
        return score_classifier(
            candidate, outputs[first], baseline_outputs[first], labels, kind=kind
        )
    per_output = tuple(
        _output_scores(candidate, name, outputs[name], baseline_outputs[name], task, fidelity)
        for name in outputs
    )
    worst = np.max(np.stack([o.max_abs_error for o in per_output]), axis=0)
    abs_error = base_abs_error = None
    if task == "regression":
        if labels is None:
            raise MeasurementError(f"{candidate}: a regression needs targets in the eval data")
        first = next(iter(outputs))
        abs_error = _abs_error(candidate, outputs[first], labels)
        base_abs_error = _abs_error(candidate, baseline_outputs[first], labels)
    return ItemScores(
        candidate=candidate,
        correct=None,
        baseline_correct=None,
        agree=None,
        kl=None,
        max_abs_error=worst,
        outputs=per_output,
        abs_error=abs_error,
        baseline_abs_error=base_abs_error,
    )


def _output_scores(
    candidate: str,
    name: str,
    out: np.ndarray,
    base: np.ndarray,
    task: str,
    fidelity: FidelityGate,
) -> OutputScores:
    if out.shape != base.shape:
        raise MeasurementError(
            f"{candidate}: output {name!r} shape {out.shape} differs from the baseline's "
            f"{base.shape}"
        )
    if not np.isfinite(out).all():
        raise MeasurementError(f"{candidate}: output {name!r} contains NaN or inf")
    c = out.reshape(len(out), -1).astype(np.float64)
    b = base.reshape(len(base), -1).astype(np.float64)
    c_norm, b_norm = np.linalg.norm(c, axis=1), np.linalg.norm(b, axis=1)
    dot = (c * b).sum(axis=1)
    both = (c_norm > 0) & (b_norm > 0)
    cosine = np.where(both, dot / np.where(both, c_norm * b_norm, 1.0), 0.0)
    cosine = np.where((c_norm == 0) & (b_norm == 0), 1.0, np.clip(cosine, -1.0, 1.0))
    diff = np.linalg.norm(c - b, axis=1)
    rel_l2 = diff / np.maximum(b_norm, np.finfo(np.float64).tiny)
    rel_l2 = np.where((b_norm == 0) & (diff == 0), 0.0, rel_l2)
    knn = neighbour_agreement(b, c, fidelity.knn_k) if task == "embedding" else None
    return OutputScores(
        name=name,
        cosine=cosine,
        rel_l2=rel_l2,
        max_abs_error=np.abs(c - b).max(axis=1),
        knn_agree=knn,
    )


def neighbour_agreement(base: np.ndarray, cand: np.ndarray, k: int) -> np.ndarray | None:
    """Per item: the share of its ``k`` nearest neighbours (cosine, among the eval items)
    in the baseline's space that are also among its ``k`` nearest in the candidate's.

    None with fewer than two items; ``k`` is capped at items - 1.
    """
    n = len(base)
    if n < 2:
        return None
    k = min(k, n - 1)
    neighbours = [_nearest(_unit(x), k) for x in (base, cand)]
    return np.array(
        [len(set(a) & set(b)) / k for a, b in zip(*neighbours, strict=True)], dtype=np.float64
    )


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _nearest(x: np.ndarray, k: int) -> np.ndarray:
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return np.argpartition(-sims, k - 1, axis=1)[:, :k]


def _abs_error(candidate: str, predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Mean absolute error per item over the target's dimensions."""
    pred = predictions.reshape(len(predictions), -1).astype(np.float64)
    want = targets.reshape(len(targets), -1).astype(np.float64)
    if pred.shape != want.shape:
        raise MeasurementError(
            f"{candidate}: predictions {predictions.shape} do not match targets {targets.shape}"
        )
    return np.abs(pred - want).mean(axis=1)


def score_classifier(
    candidate: str,
    logits: np.ndarray,
    baseline_logits: np.ndarray,
    labels: np.ndarray | None,
    kind: ClassOutput = "logits",
) -> ItemScores:
    """Per-item scores of a classifier's class output against the baseline's and the labels.

    ``kind``: ``logits`` (KL of their softmax), ``probabilities`` (KL of the rows as they
    are, renormalized, zeros floored at the smallest float; top-1 their argmax) or
    ``labels`` (class ids per item: accuracy and top-1 agreement, no KL).
    """
    if logits.shape != baseline_logits.shape:
        raise MeasurementError(
            f"{candidate}: output shape {logits.shape} differs from the baseline's "
            f"{baseline_logits.shape}"
        )
    want = 1 if kind == "labels" else 2
    if logits.ndim != want:
        shape = "(items,) class ids" if kind == "labels" else f"(items, classes) {kind}"
        raise MeasurementError(f"{candidate}: expected {shape}, got {logits.shape}")
    if not np.isfinite(logits).all():
        raise MeasurementError(f"{candidate}: outputs contain NaN or inf")
    cand = logits.astype(np.float64)
    base = baseline_logits.astype(np.float64)
    kl = None
    if kind == "labels":
        top1, base_top1 = np.rint(cand).astype(np.int64), np.rint(base).astype(np.int64)
        max_abs = (top1 != base_top1).astype(np.float64)
    else:
        top1, base_top1 = cand.argmax(axis=1), base.argmax(axis=1)
        if kind == "probabilities":
            log_p, log_q = _log_probabilities(base), _log_probabilities(cand)
        else:
            log_p, log_q = log_softmax(base, axis=1), log_softmax(cand, axis=1)
        kl = np.maximum((np.exp(log_p) * (log_p - log_q)).sum(axis=1), 0.0)
        max_abs = np.abs(cand - base).max(axis=1)
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
        max_abs_error=max_abs,
    )


def _log_probabilities(p: np.ndarray) -> np.ndarray:
    """The log of each row of probabilities (negative values clipped to 0, the row
    renormalized: an int8 model's rows rarely sum to 1 exactly; a 0 floored at the
    smallest float so a class the candidate rules out costs a finite, large KL)."""
    rows = np.clip(p, 0.0, None)
    total = rows.sum(axis=1, keepdims=True)
    rows = np.where(total > 0, rows / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])
    return np.log(np.maximum(rows, np.finfo(np.float64).tiny))
