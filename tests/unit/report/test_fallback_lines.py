"""The fallback line (a target whose baseline became champion because no optimized
candidate passed) in summary.md, on the terminal and in the JUnit XML."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from rich.console import Console

from edgeproof.gates.champion import identical_to_champion
from edgeproof.gates.outcome import FALLBACK_REASON
from edgeproof.records import Promotion, RunResult, TargetOutcome
from edgeproof.report.fallback import fallback_line
from edgeproof.report.junit import junit_xml
from edgeproof.report.markdown import render_summary
from edgeproof.report.terminal import terminal_summary
from tests.helpers import run_info
from tests.unit.gates.test_fallback import _nothing_passed


def _result(outcome: TargetOutcome, promotion: Promotion) -> RunResult:
    return RunResult(
        run=run_info(),
        status="blocked",
        exit_code=1,
        targets=(outcome,),
        promotions=(promotion,),
    )


def test_every_report_says_the_baseline_is_champion_by_fallback() -> None:
    outcome = _nothing_passed()
    promotion = Promotion(
        target="t",
        registered_model="m.t",
        version="1",
        champion_after="1",
        challenger="1",
        moved=True,
        reason=f"{FALLBACK_REASON} (no candidate passed every gate); the baseline fp32 ...",
    )
    line = "Fallback: no optimized candidate passed; the baseline fp32 is champion (v1)"
    assert fallback_line(outcome, promotion) == line
    assert line in render_summary(_result(outcome, promotion))
    stream = io.StringIO()
    console = Console(file=stream, width=160, force_terminal=False, color_system=None)
    for part in terminal_summary(_result(outcome, promotion), "reports/run-1", 160):
        console.print(part)
    assert line in stream.getvalue()
    root = ET.fromstring(junit_xml(_result(outcome, promotion)).split("\n", 1)[1])
    (failure,) = [
        case.find("failure")
        for case in root.iter("testcase")
        if case.get("classname") == "t.target" and case.get("name") == "winner"
    ]
    assert failure is not None and line in (failure.get("message") or "")  # still red


def test_the_fallback_line_when_nothing_moved() -> None:
    same = identical_to_champion(_nothing_passed(), "m.t", "1", "fp32")
    held = Promotion(
        target="t",
        registered_model="m.t",
        champion_before="1",
        champion_after="1",
        reason=f"{FALLBACK_REASON}; fp32 is byte-identical to champion v1; nothing registered",
    )
    assert fallback_line(same, held) == (
        "Fallback: no optimized candidate passed; the baseline fp32 is champion already "
        "(v1, the same bytes): nothing moved"
    )
    plain = held.model_copy(update={"reason": "no candidate passed every gate; champion ..."})
    assert fallback_line(same, plain) is None
    assert fallback_line(same, None) is None


def test_a_baseline_named_baseline_is_not_named_twice() -> None:
    outcome = _nothing_passed().model_copy(update={"baseline": "baseline"})
    moved = Promotion(
        target="t", registered_model="m.t", version="2", moved=True, reason=FALLBACK_REASON
    )
    assert fallback_line(outcome, moved) == (
        "Fallback: no optimized candidate passed; the baseline is champion (v2)"
    )
