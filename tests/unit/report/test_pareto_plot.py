"""The accuracy / latency Pareto plot: a real PNG, or None when nothing was summarized."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproof.records import Candidate, CandidateOutcome, TargetOutcome, Verdict
from edgeproof.report.pareto_plot import pareto_plot
from tests.helpers import est, make_summary

PNG = b"\x89PNG\r\n\x1a\n"


def outcome(name: str, status: str, *, summarized: bool = True, **kw) -> CandidateOutcome:
    baseline = kw.pop("baseline", False)
    cand = Candidate(
        target="onnxruntime-cpu",
        name=name,
        files=(Path(f"/tmp/{name}.onnx"),),
        recipe={},
        precision="fp32" if baseline else "int8",
        is_baseline=baseline,
    )
    return CandidateOutcome(
        candidate=cand,
        summary=make_summary(name, baseline=baseline, **kw) if summarized else None,
        verdict=Verdict(candidate=name, status=status, checks=(), reasons=()),
        error=None if summarized else "crashed",
    )


def target(*outcomes: CandidateOutcome, winner: str | None = None) -> TargetOutcome:
    return TargetOutcome(
        target="onnxruntime-cpu",
        available=True,
        baseline="fp32",
        outcomes=outcomes,
        winner=winner,
        status="pass" if winner else "blocked",
    )


@pytest.mark.parametrize("labelled", [True, False])
def test_writes_a_png_with_every_kind_of_marker(tmp_path: Path, labelled: bool) -> None:
    import matplotlib.pyplot as plt

    extra = {} if labelled else {"accuracy": None}
    t = target(
        outcome("fp32", "pass", baseline=True, **extra),
        outcome("fast", "pass", median_ms=est(0.4, 0.39, 0.41), accuracy=est(0.9, 0.88, 0.92)),
        outcome("int8", "pass", **extra),
        outcome("broken", "fail", median_ms=est(0.3, 0.2, 0.35), **extra),
        outcome("shaky", "inconclusive", median_ms=est(0.6, 0.5, 0.7), **extra),
        outcome("crashed", "error", summarized=False),
        winner="int8",
    )
    path = tmp_path / "plots" / "pareto.png"
    assert pareto_plot(t, path) == path
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 1000
    assert plt.get_fignums() == []  # the figure was closed


def test_none_when_no_candidate_has_a_summary(tmp_path: Path) -> None:
    t = target(outcome("fp32", "error", summarized=False, baseline=True))
    path = tmp_path / "pareto.png"
    assert pareto_plot(t, path) is None
    assert not path.exists()
