"""A run's gate results as JUnit XML, so any CI shows each check as a test.

CI systems (GitHub Actions test reporters, GitLab, Jenkins) understand JUnit XML, not
``verdict.json``. Each target becomes a ``<testsuite name="edgeproof.<target>">`` and each
(candidate, check) a ``<testcase classname="<target>.<candidate>" name="<check>">``. Nothing
that blocks or stops the run may look green: a failed check is a ``<failure type="gate">``,
an inconclusive one a ``<failure type="inconclusive">``, a candidate that could not be
measured an ``<error>`` in a ``measure`` testcase, and each available target gets a
``winner`` testcase that fails when the target is blocked (errors when it errored; a
target that fell back to its baseline still fails it, the fallback named in the message). An
unavailable target is one skipped ``available`` testcase; a champion comparison is a
``champion`` testcase; data-gate failures form the ``edgeproof.data.dataset`` suite; a run-level
error the ``edgeproof.run`` suite. ``RunResult`` records no durations, so every ``time``
attribute is ``0.000`` (present because some readers require it).
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from edgeproof.records import CandidateOutcome, Check, RunResult, TargetOutcome
from edgeproof.report.fallback import fallback_line

_COUNTS = ("tests", "failures", "errors", "skipped")
# characters XML 1.0 cannot carry at all (control characters such as ANSI escapes)
_INVALID_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def junit_xml(result: RunResult) -> str:
    """The JUnit XML document (with declaration) for ``result``."""
    root = ET.Element("testsuites", name="edgeproof")
    suites = [_target_suite(result, t) for t in result.targets]
    if result.data_failures:
        suites.append(_data_suite(result))
    if result.error:
        suites.append(_run_error_suite(result))
    for suite in suites:
        root.append(suite)
    _set_counts(root, suites)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(result: RunResult, path: Path) -> Path:
    """Write ``junit_xml(result)`` to ``path`` atomically (temp file + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(junit_xml(result))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_message(check: Check) -> str:
    """One line with the check's numbers and message: value [low-high], limit, baseline."""
    parts = []
    if check.value is not None:
        ci = f" [CI {_n(check.low)}-{_n(check.high)}]" if check.low is not None else ""
        parts.append(f"value {_n(check.value)}{ci}")
    if check.limit is not None:
        parts.append(f"limit {_n(check.limit)}")
    if check.baseline is not None:
        parts.append(f"baseline {_n(check.baseline)}")
    numbers = ", ".join(parts)
    return f"{check.name}: {check.message}" + (f" ({numbers})" if numbers else "")


def _target_suite(result: RunResult, target: TargetOutcome) -> ET.Element:
    suite = _suite(result, f"edgeproof.{target.target}", winner=target.winner or "")
    name = target.target
    if not target.available:
        case = _case(suite, f"{name}.target", "available")
        _child(case, "skipped", target.reason or "target unavailable")
        return _finish(suite)
    for outcome in target.outcomes:
        _candidate_cases(suite, name, outcome)
    winner = _case(suite, f"{name}.target", "winner")
    why = target.reason or f"target status {target.status}"
    promotion = next((p for p in result.promotions if p.target == target.target), None)
    fallback = fallback_line(target, promotion)
    if fallback is not None:
        why += f"; {fallback}"
    if target.status == "blocked":
        _child(winner, "failure", f"blocked: {why}", kind="gate")
    elif target.status == "error":
        _child(winner, "error", why, kind="error")
    if target.champion is not None:
        champ = target.champion
        who = target.winner or (target.baseline if fallback is not None else None)
        case = _case(suite, f"{name}.{who or 'winner'}", "champion")
        text = "\n".join(check_message(c) for c in champ.checks)
        message = f"vs {champ.registered_model} v{champ.champion_version}: {champ.reason}"
        if champ.status == "worse":
            _child(case, "failure", message, kind="champion", text=text)
        elif champ.status == "error":
            _child(case, "error", message, kind="error", text=text)
    return _finish(suite)


def _candidate_cases(suite: ET.Element, target: str, outcome: CandidateOutcome) -> None:
    verdict = outcome.verdict
    classname = f"{target}.{outcome.candidate.name}"
    if verdict.status == "error":
        reason = outcome.error or "; ".join(verdict.reasons) or "measurement failed"
        _child(_case(suite, classname, "measure"), "error", reason, kind="error")
    for check in verdict.checks:
        case = _case(suite, classname, check.name)
        if check.status == "fail":
            _child(case, "failure", check_message(check), kind="gate")
        elif check.status == "inconclusive":
            _child(case, "failure", check_message(check), kind="inconclusive")
        elif check.status == "skipped":
            _child(case, "skipped", check.message)
    blocking = any(c.status in ("fail", "inconclusive") for c in verdict.checks)
    if verdict.status in ("fail", "inconclusive") and not blocking:
        # a failing verdict whose checks do not show it must still fail in CI
        why = "; ".join(verdict.reasons) or f"verdict {verdict.status}"
        _child(_case(suite, classname, "verdict"), "failure", why, kind="gate")


def _data_suite(result: RunResult) -> ET.Element:
    suite = _suite(result, "edgeproof.data.dataset")
    for i, line in enumerate(result.data_failures, start=1):
        _child(_case(suite, "data", f"expectation-{i}"), "failure", line, kind="data")
    return _finish(suite)


def _run_error_suite(result: RunResult) -> ET.Element:
    suite = _suite(result, "edgeproof.run")
    _child(_case(suite, "run", "run"), "error", result.error or "", kind="error")
    return _finish(suite)


def _suite(result: RunResult, name: str, **extra: str) -> ET.Element:
    suite = ET.Element("testsuite", name=name, timestamp=result.run.started_at)
    props = ET.SubElement(suite, "properties")
    values = {
        "run_name": result.run.run_name,
        "model": result.run.model,
        "git_sha": result.run.lineage.git_sha or "",
        **extra,
    }
    for key, value in values.items():
        ET.SubElement(props, "property", name=key, value=_clean(value))
    return suite


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time="0.000")


def _child(case: ET.Element, tag: str, message: str, kind: str = "", text: str = "") -> None:
    element = ET.SubElement(case, tag, message=_clean(message))
    if kind:
        element.set("type", kind)
    if text:
        element.text = _clean(text)


def _finish(suite: ET.Element) -> ET.Element:
    _set_counts(suite, [suite])
    return suite


def _set_counts(element: ET.Element, suites: list[ET.Element]) -> None:
    totals = dict.fromkeys(_COUNTS, 0)
    for suite in suites:
        for case in suite.iter("testcase"):
            totals["tests"] += 1
            totals["failures"] += case.find("failure") is not None
            totals["errors"] += case.find("error") is not None
            totals["skipped"] += case.find("skipped") is not None
    for key in _COUNTS:
        element.set(key, str(totals[key]))
    element.set("time", "0.000")


def _n(x: float | None) -> str:
    return "?" if x is None else f"{x:.6g}"


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)
