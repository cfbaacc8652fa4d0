"""What ``edgeproof run`` leaves on a terminal at the end: the verdict, sized to the screen.

Per target one compact table (candidate, verdict, speedup with its CI, the quality number
that decided, size) and one line each for the winner (or why none), the registry move and
the failures' first reasons; then where the whole report is (summary.md, MLflow,
``edgeproof report RUN``) and where the run's console output went. The full report
(every check, the progression, the Pareto front) stays in ``summary.md``
(:mod:`edgeproof.report.markdown`).

Pure: a :class:`RunResult` in, rich renderables out; the caller prints them. At 100
columns or more no cell is cut; below, columns are dropped (size, then the quality
number, then the speedup's CI), never the verdict.
"""

from __future__ import annotations

import re

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from edgeproof.records import Check, Estimate, Promotion, RunResult, TargetOutcome
from edgeproof.report.fallback import fallback_line

VERDICTS = {
    "pass": "✅ pass",
    "blocked": "❌ blocked",
    "fail": "❌ fail",
    "error": "💥 error",
    "inconclusive": "❔ inconclusive",
    "unavailable": "➖ unavailable",
    "skipped": "➖ skipped",
}
_STYLES = {"pass": "green", "fail": "red", "blocked": "red", "error": "red"}
_NOT_QUALITY = ("latency.", "memory.", "size.", "optimizer", "op_coverage.")
FULL_WIDTH = 100  # from here on every column is shown, no cell cut


def terminal_summary(
    result: RunResult,
    report_folder: str,
    width: int,
    run_log: str | None = None,
) -> list[RenderableType]:
    """The end-of-run summary for a terminal ``width`` columns wide (see the module doc).

    ``report_folder``: where the run's report went (reports/<run>); ``run_log``: the file
    that holds the runtimes' and optimizers' console output of the run, if any."""
    run = result.run
    parts: list[RenderableType] = [
        Text.assemble(
            ("edgeproof quality gate: ", "bold"),
            (_verdict(result.status), f"bold {_STYLES.get(result.status, 'yellow')}"),
            f" · run {run.run_name}",
        )
    ]
    if result.error:
        parts.append(Text(f"Error: {result.error}", "red"))
    if result.data_failures:
        more = len(result.data_failures) - 1
        extra = f" (and {more} more)" if more else ""
        parts.append(Text(f"Data gate failed: {result.data_failures[0]}{extra}", "red"))
    parts += [Text(f"⚠ {warning}", "yellow") for warning in result.warnings]
    promotions = {p.target: p for p in result.promotions}
    for outcome in result.targets:
        parts += ["", *_target(outcome, promotions.get(outcome.target), width)]
    parts += ["", *_where(result, report_folder, run_log)]
    return parts


def _verdict(status: str) -> str:
    return VERDICTS.get(status, status)


def _target(outcome: TargetOutcome, promotion: Promotion | None, width: int) -> list:
    head = Text.assemble(
        (outcome.target, "bold"),
        " — ",
        (_verdict(outcome.status), _STYLES.get(outcome.status, "yellow")),
    )
    if not outcome.outcomes:
        return [head, Text(f"  {outcome.reason or 'no candidates'}")]
    lines: list[RenderableType] = [head, candidate_table(outcome, width)]
    if outcome.winner:
        why = winner_why(outcome.reason or "")
        lines.append(Text(f"  Winner: {outcome.winner}" + (f" — {why}" if why else "")))
    else:
        lines.append(Text(f"  No winner: {outcome.reason or outcome.status}"))
    if promotion is not None:
        lines.append(Text(f"  Registry {promotion.registered_model}: {_promotion(promotion)}"))
    fallback = fallback_line(outcome, promotion)
    if fallback is not None:
        lines.append(Text(f"  {fallback}", "yellow"))
    failures = _failures(outcome)
    if failures:
        lines.append(Text(f"  Failed: {'; '.join(failures)}"))
    return lines


def clauses(reason: str) -> list[str]:
    """The reason's clauses: split at each ';' outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(reason):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == ";" and depth == 0:
            parts.append(reason[start:i].strip())
            start = i + 1
    parts.append(reason[start:].strip())
    return [part for part in parts if part]


def winner_why(reason: str) -> str:
    """Why the winner won, short: the first clause (how it was picked) and, when the reason
    goes on, its last (the runner-up's margin or the tie rule), so a winner whose point
    estimate is not the highest is never shown without the rule that picked it."""
    parts = clauses(reason)
    if len(parts) <= 1:
        return first_clause(reason)
    return f"{first_clause(reason)}; {parts[-1]}"


def first_clause(reason: str) -> str:
    """The reason up to its first ';', without a parenthesis that clause leaves open."""
    clause = reason.split(";")[0]
    depth, cut = 0, len(clause)
    for i, char in enumerate(clause):
        if char == "(":
            if depth == 0:
                cut = i
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                cut = len(clause)
    return clause[:cut].strip() if depth > 0 else clause.strip()


def candidate_table(outcome: TargetOutcome, width: int) -> Table:
    """One row per candidate; which columns fit ``width`` (the verdict always does)."""
    show_size = width >= FULL_WIDTH
    show_quality = width >= 80
    show_ci = width >= 60
    table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 2, 0, 0))
    table.add_column("candidate", overflow="fold")
    verdicts = [_verdict(o.verdict.status) for o in outcome.outcomes]
    table.add_column("verdict", no_wrap=True, min_width=max(len(v) + 1 for v in verdicts))
    table.add_column("speedup [CI]" if show_ci else "speedup", no_wrap=True)
    if show_quality:
        table.add_column("quality (deciding)", overflow="fold")
    if show_size:
        table.add_column("size MB", justify="right", no_wrap=True)
    for o, verdict in zip(outcome.outcomes, verdicts, strict=True):
        name = o.candidate.name
        if o.candidate.is_baseline:
            name += " (baseline)"
        elif name == outcome.winner:
            name += " 🏆"
        s = o.summary
        speedup = "—" if s is None or s.speedup is None else _speedup(s.speedup, show_ci)
        cells = [name, Text(verdict, _STYLES.get(o.verdict.status, "yellow")), speedup]
        if show_quality:
            cells.append(_quality(o.verdict.status, o.verdict.checks, s))
        if show_size:
            cells.append("—" if s is None else f"{s.size_mb:.2f}")
        table.add_row(*cells)
    return table


def _speedup(est: Estimate, ci: bool) -> str:
    if not ci:
        return f"{est.value:.2f}x"
    return f"{est.value:.2f}x [{est.low:.2f}, {est.high:.2f}]"


def _quality(status: str, checks: tuple[Check, ...], summary: object) -> str:
    """The quality check that decided: the first failing (or inconclusive, for an
    inconclusive verdict) quality check, else the first one checked; the baseline: its
    accuracy."""
    quality = [c for c in checks if c.status != "skipped" and not c.name.startswith(_NOT_QUALITY)]
    for wanted in (status, "fail", "inconclusive"):
        for check in quality:
            if check.status == wanted:
                return _check_text(check)
    if quality:
        return _check_text(quality[0])
    accuracy = getattr(summary, "accuracy", None)
    if accuracy is not None:
        return f"accuracy {accuracy.value * 100:.1f}%"
    return "—"


_LIMIT = re.compile(r" (<=|>=|<|>|straddles) (min|max) .*$")
_SHORTER = (
    ("relative accuracy drop ", "rel. acc. drop "),
    ("accuracy drop ", "acc. drop "),
    ("top-1 agreement ", "top-1 "),
)


def _check_text(check: Check) -> str:
    """The check's number with its CI, shortened and without the limit (the verdict and
    the 'Failed:' line say which side of it), e.g. 'top-1 91.0% [89.5, 92.4]'."""
    text = _LIMIT.sub("", check.message)
    for long, short in _SHORTER:
        text = text.replace(long, short)
    return text


def _failures(outcome: TargetOutcome) -> list[str]:
    """Each candidate's first reason not to pass (a failed check before an inconclusive
    one), or its error."""
    found = []
    for o in outcome.outcomes:
        reasons = o.verdict.reasons
        if o.error:
            found.append(f"{o.candidate.name}: {o.error.splitlines()[0]}")
        elif o.verdict.status != "pass" and reasons:
            failed = [r for r in reasons if ": inconclusive: " not in r]
            found.append(f"{o.candidate.name}: {(failed or list(reasons))[0]}")
    return found


def _promotion(p: Promotion) -> str:
    if p.moved:
        was = f" (was v{p.champion_before})" if p.champion_before else " (first champion)"
        return f"registered v{p.version}; champion → v{p.version}{was}"
    if p.refused:
        return f"registered v{p.version} (challenger); champion not moved: {p.reason}"
    return p.reason


def _where(result: RunResult, report_folder: str, run_log: str | None) -> list[Text]:
    run = result.run
    lines = [
        Text(f"Full report: {report_folder}/summary.md"),
        Text(f"  print it: edgeproof report {run.run_name}"),
    ]
    uri = run.tracking_uri
    if run.mlflow_run_id:
        lines.append(Text(f"MLflow run: {run.mlflow_run_id}"))
    if uri.startswith("sqlite"):
        lines.append(
            Text(
                f"MLflow UI: mlflow ui --backend-store-uri {uri}  (then open http://127.0.0.1:5000)"
            )
        )
    else:
        lines.append(Text(f"MLflow: {uri}"))
    if run_log:
        lines.append(Text(f"Console log (runtimes, optimizers, Prefect): {run_log}"))
    return lines
