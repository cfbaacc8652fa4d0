"""The search's decisions, as pure functions: is a probe good enough, which units are most
sensitive, and how many of them to keep in float next.

A search (``method: search``) starts from an aggressive recipe and leaves the graph's most
sensitive *units* (a transformer block's projections, a conv stage, the head) in float until
the quality gates pass. A *probe* is one quantized mix run on a subset of the calibration
items, compared with the baseline's outputs (no timing, no eval data): its *loss* is the
gated fidelity quantity (1 - top-1 agreement or mean KL for a classifier, 1 - mean cosine of
the worst output otherwise) and it *passes* when every enabled fidelity limit holds on the
subset. The sensitivity of a unit is the loss of the mix that quantizes that unit alone.
The number ``k`` of most sensitive units kept in float is then found by bisection: the
smallest ``k`` whose probe passes (quality grows with ``k``, nearly monotonically).
Only the mix found is measured and gated like any other candidate: a probe decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeproof.config import FidelityGate
from edgeproof.records import ItemScores


@dataclass(frozen=True)
class ProbeResult:
    """One probe: its loss (lower is better), whether it passes, and why in a few words."""

    loss: float
    passes: bool
    detail: str


def probe_result(scores: ItemScores, fidelity: FidelityGate) -> ProbeResult:
    """The probe's verdict on the fidelity limits of ``fidelity``, from point estimates on
    the probe's items (the full gate later decides with confidence intervals)."""
    misses: list[str] = []
    if scores.agree is not None:  # a classifier: top-1 agreement and KL
        agree = float(np.mean(scores.agree))
        kl = float(np.mean(scores.kl)) if scores.kl is not None else 0.0
        if fidelity.min_top1_agreement is not None and agree < fidelity.min_top1_agreement:
            misses.append(f"top-1 agreement {agree:.4f} < {fidelity.min_top1_agreement}")
        if fidelity.max_kl is not None and kl > fidelity.max_kl:
            misses.append(f"mean KL {kl:.3g} > {fidelity.max_kl}")
        loss = kl if fidelity.max_kl is not None else 1.0 - agree
        detail = f"agreement {agree:.4f}, mean KL {kl:.3g}"
    else:  # tensor outputs: the worst output's cosine
        worst, low = 1.0, 1.0
        for out in scores.outputs:
            worst = min(worst, float(np.mean(out.cosine)))
            low = min(low, float(np.quantile(out.cosine, fidelity.low_quantile)))
        if fidelity.min_cosine_mean is not None and worst < fidelity.min_cosine_mean:
            misses.append(f"mean cosine {worst:.5f} < {fidelity.min_cosine_mean}")
        if fidelity.min_cosine_low is not None and low < fidelity.min_cosine_low:
            misses.append(f"low cosine {low:.5f} < {fidelity.min_cosine_low}")
        loss = 1.0 - worst
        detail = f"mean cosine {worst:.5f}, p{fidelity.low_quantile * 100:g} cosine {low:.5f}"
    return ProbeResult(loss=loss, passes=not misses, detail="; ".join(misses) or detail)


def rank_by_sensitivity(sensitivity: dict[str, float]) -> list[str]:
    """Units from the most sensitive (largest loss when quantized alone) to the least;
    ties keep the graph's order."""
    order = {name: i for i, name in enumerate(sensitivity)}
    return sorted(sensitivity, key=lambda name: (-sensitivity[name], order[name]))


@dataclass(frozen=True)
class Bisection:
    """The search for the smallest ``k`` (units kept in float) whose probe passes, within
    ``low`` (known to fail, or -1: untried) and ``high`` (known to pass, or ``n``: untried)."""

    low: int
    high: int

    @classmethod
    def start(cls, units: int) -> Bisection:
        return cls(low=0, high=units)  # k = 0 (all quantized) is probed first, apart

    def next_k(self) -> int | None:
        """The next ``k`` to probe; None when the bounds meet (``high`` is the answer)."""
        return None if self.high - self.low <= 1 else (self.low + self.high) // 2

    def after(self, k: int, passes: bool) -> Bisection:
        return Bisection(self.low, k) if passes else Bisection(k, self.high)
