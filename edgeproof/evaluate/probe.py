"""A tensor task's verdict on a search's probe: its fidelity to the baseline, call by call.

The probe's outputs are one flattened row per call (``edgeproof.measure.probe``), scored as
the task scores eval outputs (``edgeproof.evaluate.scores``) and judged on the fidelity
limits of the gates (``edgeproof.gates.search.probe_result``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeproof.config import FidelityGate
from edgeproof.evaluate.scores import Scoring, score_candidate
from edgeproof.gates.search import ProbeResult, probe_result


def tensor_probe_judge(
    scoring: Scoring, fidelity: FidelityGate
) -> Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], ProbeResult]:
    """The judge of probes for a tensor task scored as ``scoring``."""

    def judge(base: dict[str, np.ndarray], probe: dict[str, np.ndarray]) -> ProbeResult:
        # a regression's targets are not in the calibration set: its outputs are fidelity
        as_scored: Scoring = "raw" if scoring == "regression" else scoring
        return probe_result(
            score_candidate(as_scored, "probe", probe, base, None, fidelity), fidelity
        )

    return judge
