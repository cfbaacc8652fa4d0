"""A tensor task's verdict on a search's probe: its fidelity to the baseline, call by call.

The probe's outputs are one flattened row per call (``edgeproof.measure.probe``), scored as
the task scores eval outputs (``edgeproof.evaluate.scores``) and judged on the fidelity
limits of the gates (``edgeproof.gates.search.probe_result``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeproof.config import FidelityGate
from edgeproof.data.feed import FeedLayout
from edgeproof.evaluate.scores import ClassOutput, Scoring, score_candidate
from edgeproof.gates.search import ProbeResult, probe_result


def tensor_probe_judge(
    scoring: Scoring, fidelity: FidelityGate, layout: FeedLayout | None = None
) -> Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], ProbeResult]:
    """The judge of probes for a tensor task scored as ``scoring``, on the outputs the
    ``layout`` gates (``model.outputs``; a classifier's first as its kind says)."""
    layout = layout or FeedLayout()
    # a regression's targets are not in the calibration set: its outputs are fidelity
    as_scored: Scoring = "raw" if scoring == "regression" else scoring

    def judge(base: dict[str, np.ndarray], probe: dict[str, np.ndarray]) -> ProbeResult:
        base, probe = layout.gated(base), layout.gated(probe)
        kind: ClassOutput = layout.output_kind(next(iter(base)))  # type: ignore[assignment]
        scores = score_candidate(as_scored, "probe", probe, base, None, fidelity, kind)
        return probe_result(scores, fidelity)

    return judge
