"""Selecting again with finalists timed head to head keeps what was judged and changes only
the choice: the pair's blocks replace the ratio of their speedups."""

from __future__ import annotations

import numpy as np

from edgeproof.params.model import load_params
from edgeproof.pipeline.judge import reselect
from edgeproof.records import Candidate, CandidateOutcome, TargetOutcome, Verdict
from edgeproof.records.measurement import HeadToHeadRun
from tests.helpers import ROOT, est, make_summary


def _outcome(name: str, speedup: tuple[float, float, float]) -> CandidateOutcome:
    candidate = Candidate(target="t", name=name, files=(), recipe={}, precision="int8")
    verdict = Verdict(candidate=name, status="pass", checks=(), reasons=())
    summary = make_summary(name, speedup=est(*speedup))
    return CandidateOutcome(candidate=candidate, summary=summary, verdict=verdict)


def _run(a_ms: float, b_ms: float, blocks: int = 12, block_size: int = 5) -> HeadToHeadRun:
    """Blocks of two candidates, ``b`` at ``b_ms / a_ms`` of ``a``'s latency, with noise."""
    rng = np.random.default_rng(3)
    noise = rng.normal(1.0, 0.01, (2, blocks * block_size))
    return HeadToHeadRun("first", "second", a_ms * noise[0], b_ms * noise[1], block_size, "done")


def test_head_to_head_blocks_decide_a_tie_via_the_baseline() -> None:
    params = load_params(ROOT / "params.yaml")
    # tied via the baseline (the ratio of the speedups' CIs contains 1); first listed wins
    tied = TargetOutcome(
        target="t",
        available=True,
        baseline="fp32",
        outcomes=(_outcome("first", (2.50, 2.40, 2.60)), _outcome("second", (2.55, 2.45, 2.65))),
        status="blocked",
    )
    before = reselect(tied, (), params)
    assert before.winner == "first" and before.wanted_head_to_head == (("first", "second"),)
    assert "within noise" in (before.reason or "")
    # timed against each other, second is clearly 10% faster: it wins, and says so
    after = reselect(before, [_run(1.0, 0.9)], params)
    assert after.winner == "second" and after.runner_up == "first"
    assert after.wanted_head_to_head == ()
    assert "head-to-head blocks" in (after.reason or "")
    assert "clearly ahead" in (after.reason or "")
    (record,) = after.head_to_head
    assert (record.a, record.b, record.blocks) == ("first", "second", 12)
    assert record.ratio.high < 1.0  # first is slower: a/b ratio below 1
    assert after.outcomes == before.outcomes  # nothing judged again


def test_the_choice_and_the_recorded_ratio_use_the_same_confidence() -> None:
    """b is 1.4% faster head to head: beyond the 1% tolerance at 99% confidence, not at
    99.9%. The winner follows the measurement's confidence, as the recorded CI does."""
    rng = np.random.default_rng(3)
    a = np.exp(rng.normal(0, 0.01, 12))
    b = a / 1.014 * np.exp(rng.normal(0, 0.005, 12))
    run = HeadToHeadRun("first", "second", a, b, 1, "done")
    base = load_params(ROOT / "params.yaml")
    tied = TargetOutcome(
        target="t",
        available=True,
        baseline="fp32",
        outcomes=(_outcome("first", (2.50, 2.40, 2.60)), _outcome("second", (2.55, 2.45, 2.65))),
        status="blocked",
    )
    for confidence, winner in ((0.99, "second"), (0.999, "first")):
        measure = base.measure.model_copy(update={"confidence": confidence})
        params = base.model_copy(update={"measure": measure})
        after = reselect(tied, [run], params)
        (record,) = after.head_to_head
        beyond = record.ratio.high < 1 / (1 + params.gates.speed_tie_tolerance)
        assert after.winner == winner and beyond == (winner == "second")
