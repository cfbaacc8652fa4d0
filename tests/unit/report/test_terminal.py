"""The end-of-run summary on a terminal: the verdict whole at any width, the full report named."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    Check,
    Promotion,
    RunResult,
    TargetOutcome,
    Verdict,
)
from edgeproof.report.terminal import VERDICTS, first_clause, terminal_summary, winner_why
from tests.helpers import run_info, summary

TARGET = "onnxruntime-cpu"
SPEED_FAIL = "speedup 0.20x [0.19, 0.21] < min 1.20x"
ACCURACY = "accuracy drop 0.1 pt [-0.2, 0.4] <= max 1.0 pt"
AGREEMENT_FAIL = "top-1 agreement 91.0% [89.5, 92.4] < min 99.0%"


def _outcome(name: str, status: str, checks: tuple[Check, ...] = (), **kw) -> CandidateOutcome:
    candidate = Candidate(
        target=TARGET,
        name=name,
        files=(Path(f"/tmp/{name}.onnx"),),
        recipe={"method": "static", "calibrate_method": "percentile", "per_channel": True},
        precision="fp32" if kw.get("baseline") else "int8",
        is_baseline=kw.get("baseline", False),
    )
    reasons = tuple(c.message for c in checks if c.status == "fail")
    return CandidateOutcome(
        candidate=candidate,
        summary=summary(name, **kw),
        verdict=Verdict(candidate=name, status=status, checks=checks, reasons=reasons),
    )


def _result() -> RunResult:
    accuracy = Check(name="accuracy.max_drop_abs", status="pass", message=ACCURACY)
    outcomes = (
        _outcome("fp32", "pass", baseline=True, median=2.7),
        _outcome(
            "dynamic-int8-per-channel",
            "fail",
            (Check(name="latency.min_speedup", status="fail", message=SPEED_FAIL), accuracy),
            speedup=0.2,
        ),
        _outcome(
            "static-qdq-percentile",
            "inconclusive",
            (Check(name="fidelity.min_top1_agreement", status="inconclusive", message="x"),),
            speedup=2.9,
        ),
        _outcome(
            "static-qoperator",
            "fail",
            (Check(name="fidelity.min_top1_agreement", status="fail", message=AGREEMENT_FAIL),),
            speedup=3.1,
        ),
        _outcome("static-qdq-minmax", "pass", (accuracy,), speedup=3.6),
    )
    target = TargetOutcome(
        target=TARGET,
        available=True,
        reason="static-qdq-minmax (speedup 3.60x [3.50, 3.70]) among 1 passing candidate; more",
        baseline="fp32",
        outcomes=outcomes,
        winner="static-qdq-minmax",
        status="pass",
    )
    blocked = TargetOutcome(
        target="openvino-cpu",
        available=True,
        reason="no candidate passed every gate",
        baseline="fp32",
        outcomes=(_outcome("fp32", "pass", baseline=True), outcomes[1]),
        status="blocked",
    )
    promotion = Promotion(
        target=TARGET,
        registered_model=f"digits-cnn.{TARGET}",
        version="3",
        champion_before="2",
        champion_after="3",
        moved=True,
        reason="passed",
    )
    return RunResult(
        run=run_info(),
        status="blocked",
        exit_code=1,
        targets=(target, blocked),
        promotions=(promotion,),
    )


def _screen(width: int) -> str:
    stream = io.StringIO()
    console = Console(file=stream, width=width, force_terminal=False, color_system=None)
    for part in terminal_summary(_result(), "reports/run-1", width, "reports/run-1/run.log"):
        console.print(part)
    return stream.getvalue()


@pytest.mark.parametrize("width", [100, 160])
def test_every_cell_whole_at_100_columns_and_more(width: int) -> None:
    screen = _screen(width)
    assert "…" not in screen
    assert max(len(line) for line in screen.splitlines()) <= width
    for text in (
        "dynamic-int8-per-channel",
        "0.20x [0.10, 0.30]",  # the speedup with its CI
        "top-1 91.0% [89.5, 92.4]",  # the failing quality number, whole
        "acc. drop 0.1 pt [-0.2, 0.4]",  # the first one checked, when none failed
        "size MB",
        "static-qdq-minmax 🏆",
        "❔ inconclusive",
        "Winner: static-qdq-minmax — static-qdq-minmax (speedup 3.60x [3.50, 3.70])",
        "Registry digits-cnn.onnxruntime-cpu: registered v3; champion → v3 (was v2)",
        f"Failed: dynamic-int8-per-channel: {SPEED_FAIL}; static-qoperator",
        "No winner: no candidate passed every gate",
        "Full report: reports/run-1/summary.md",
        "edgeproof report digits-cnn-20261125T000000Z",
        "MLflow run: abc123",
        "Console log (runtimes, optimizers, Prefect): reports/run-1/run.log",
    ):
        assert text in screen, text
    assert "per_channel" not in screen  # recipes stay in the full report
    assert len(screen.splitlines()) < 30  # two targets on one screen


@pytest.mark.parametrize("width", [40, 60, 79, 99])
def test_narrower_drops_columns_never_a_verdict(width: int) -> None:
    screen = _screen(width)
    table = screen.split("Winner:")[0]
    assert "…" not in screen
    assert "size MB" not in table
    for verdict in (VERDICTS["pass"], VERDICTS["fail"], VERDICTS["inconclusive"]):
        assert verdict in table
    assert ("quality (deciding)" in table) == (width >= 80)
    assert ("[CI]" in table) == (width >= 60)


def test_the_winner_line_keeps_the_first_clause_whole() -> None:
    assert first_clause("a (speedup 2x [1, 3]) among 2; 1.03x faster") == (
        "a (speedup 2x [1, 3]) among 2"
    )
    tie = "a tie goes to the champion (b (speedup 7.15x [6.86, 7.46]) among 2; more) x"
    assert first_clause(tie) == "a tie goes to the champion"


def test_a_tie_shows_the_rule_that_picked_the_winner() -> None:
    reason = (
        "b (speedup 3.47x [3.41, 3.56]) among 3 passing candidates; 0.99x [0.97, 1.01] "
        "faster than runner-up c (speedup 3.53x [3.47, 3.62]; head-to-head blocks), within "
        "noise (CI contains 1); the tie within noise goes to the order of the recipes"
    )
    assert winner_why(reason) == (
        "b (speedup 3.47x [3.41, 3.56]) among 3 passing candidates; "
        "the tie within noise goes to the order of the recipes"
    )
    assert winner_why("a (speedup 2x [1, 3]) among 2") == "a (speedup 2x [1, 3]) among 2"
