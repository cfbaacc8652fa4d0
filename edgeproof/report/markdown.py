"""The run's summary as GitHub-flavoured markdown: job summary, PR comment, artifacts.

One table per target (candidate, accuracy, fidelity, latency with CIs, speedup, memory,
size, verdict), why the winner won (and by how much over the runner-up), the Pareto front,
the progression table, every failing reason, and what happened in the registry. The
hidden marker on the first line lets the PR-comment job update its one comment.
"""

from __future__ import annotations

from edgeproof.records import (
    CandidateOutcome,
    Promotion,
    RunResult,
    TargetOutcome,
    format_estimate,
)
from edgeproof.report.fallback import fallback_line
from edgeproof.report.progression import progression_table
from edgeproof.report.search import search_lines
from edgeproof.tasks.registry import find_task_kind

MARKER = "<!-- edgeproof-summary -->"
_ICONS = {
    "pass": "✅ pass",
    "blocked": "❌ blocked",
    "fail": "❌ fail",
    "error": "⚠️ error",
    "inconclusive": "❔ inconclusive",
    "unavailable": "➖ unavailable",
    "skipped": "➖ skipped",
}


def _row(outcome: CandidateOutcome, winner: str | None) -> str:
    name = outcome.candidate.name
    label = f"**{name}** 🏆" if name == winner else name
    if outcome.candidate.is_baseline:
        label += " (baseline)"
    s = outcome.summary
    verdict = _ICONS.get(outcome.verdict.status, outcome.verdict.status)
    if s is None:
        return f"| {label} | {outcome.candidate.precision} |" + " — |" * 10 + f" {verdict} |"
    speed = "—" if s.speedup is None else format_estimate(s.speedup) + "x"
    cells = [
        label,
        s.precision,
        format_estimate(s.accuracy, 1, 100.0),
        format_estimate(s.accuracy_drop, 1, 100.0),
        format_estimate(s.top1_agreement, 1, 100.0),
        "—" if s.mean_kl is None else f"{s.mean_kl.value:.2e}",
        f"{s.max_abs_logit_error:.2f}",
        format_estimate(s.median_ms, 3),
        format_estimate(s.p90_ms, 3),
        speed,
        f"{s.peak_rss_mb:.0f}",
        f"{s.size_mb:.2f}",
        verdict,
    ]
    return "| " + " | ".join(cells) + " |"


_CHAMPION_ICONS = {
    "not-worse": "✅",
    "kept": "🟰",
    "identical": "🟰",
    "worse": "❌",
    "error": "💥",
}
_HEADER = (
    "| candidate | precision | accuracy % | drop (pt) | top-1 agree % | mean KL | max logit err "
    "| p50 ms | p90 ms | speedup | peak RSS MB | size MB | verdict |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _target_section(outcome: TargetOutcome, promotion: Promotion | None) -> list[str]:
    head = f"### {outcome.target} — {_ICONS.get(outcome.status, outcome.status)}"
    lines = [head, ""]
    if not outcome.outcomes:
        lines.append(f"{outcome.reason or 'no candidates'}")
        return [*lines, ""]
    lines += [_HEADER, *(_row(o, outcome.winner) for o in outcome.outcomes), ""]
    lines += _fidelity_table(outcome)
    lines += _metric_table(outcome)
    lines += _task_lines(outcome)
    lines += search_lines(outcome)
    if outcome.winner:
        lines.append(f"Winner: **{outcome.winner}** — {outcome.reason}")
    else:
        lines.append(f"No winner: {outcome.reason}")
    lines += _head_to_head_lines(outcome)
    lines += _pareto_lines(outcome)
    progression = progression_table(outcome)
    if progression:
        lines += ["", "Progression (each step against the baseline, fastest last):", ""]
        lines += progression
    if outcome.champion is not None:
        icon = _CHAMPION_ICONS.get(outcome.champion.status, "")
        lines += [
            "",
            f"Against the current champion (re-measured here): {icon} {outcome.champion.reason}",
        ]
    checks = [
        f"| `{o.candidate.name}` | {c.name} | {_ICONS.get(c.status, c.status)} | {c.message} |"
        for o in outcome.outcomes
        for c in o.verdict.checks
        if c.status != "skipped"
    ]
    errors = [f"- `{o.candidate.name}`: {o.error}" for o in outcome.outcomes if o.error]
    if checks or errors:
        lines += ["", "<details><summary>Every check: value [CI] vs limit</summary>", ""]
        if checks:
            lines += [
                "| candidate | check | result | value [CI] vs limit |",
                "|---|---|---|---|",
                *checks,
            ]
        lines += ["", *errors, "</details>"] if errors else ["", "</details>"]
    failing = [
        f"- `{o.candidate.name}`: {reason}"
        for o in outcome.outcomes
        if not o.error
        for reason in o.verdict.reasons
    ]
    if failing:
        lines += ["", "Why candidates failed:", "", *failing]
    lines += _shortened(outcome)
    skipped = [
        f"- `{o.candidate.name}`: skipped {step}"
        for o in outcome.outcomes
        for step in o.candidate.recipe.get("preprocess_skipped") or ()
    ]
    if skipped:
        lines += ["", "Preparation steps the model could not take (a safer one was used):", ""]
        lines += skipped
    warned = [
        f"- `{o.candidate.name}`: {warning}"
        for o in outcome.outcomes
        for warning in o.candidate.recipe.get("warnings") or ()
    ]
    if warned:
        lines += ["", "What the optimizers warned about:", "", *warned]
    if promotion is not None:
        lines += ["", f"Registry `{promotion.registered_model}`: {_promotion_text(promotion)}"]
    fallback = fallback_line(outcome, promotion)
    if fallback is not None:
        lines += ["", fallback]
    for name in outcome.plots:
        what = "Pareto front" if name.endswith("-pareto.png") else "latency and speedup"
        lines += ["", f"![{outcome.target} {what}]({name})"]
    return [*lines, ""]


_FIDELITY_HEADER = (
    "| candidate | output | cosine mean | cosine low-q | rel. L2 % | max abs err | k-NN agree % "
    "| MAE | MAE increase |\n|---|---|---|---|---|---|---|---|---|"
)


def _fidelity_table(outcome: TargetOutcome) -> list[str]:
    """Per output tensor fidelity to the baseline (label-free tasks), with CIs."""
    rows = []
    for o in outcome.outcomes:
        s = o.summary
        for f in s.outputs if s is not None else ():
            rows.append(
                "| "
                + " | ".join(
                    [
                        o.candidate.name,
                        f"`{f.output}`",
                        format_estimate(f.cosine_mean, 6),
                        format_estimate(f.cosine_low, 6),
                        format_estimate(f.rel_l2_mean, 2, 100.0),
                        f"{f.max_abs_error:.3g}",
                        format_estimate(f.knn_agreement, 1, 100.0),
                        format_estimate(s.mae, 4),
                        format_estimate(s.mae_increase, 4),
                    ]
                )
                + " |"
            )
    if not rows:
        return []
    return [
        "Fidelity to the baseline per output (label-free task):",
        "",
        _FIDELITY_HEADER,
        *rows,
        "",
    ]


def _metric_table(outcome: TargetOutcome) -> list[str]:
    """The team's own metric (``model.metric``): mean, drop against the baseline, worst slice."""
    rows, name = [], ""
    for o in outcome.outcomes:
        m = o.summary.metric if o.summary is not None else None
        if m is None:
            continue
        name = f"{m.name} ({'higher' if m.higher_is_better else 'lower'} is better)"
        worst = "-"
        if m.worst_slice is not None:
            worst = f"`{m.worst_slice}`: {format_estimate(m.worst_slice_drop, 4)}"
        cells = [o.candidate.name, format_estimate(m.value, 4), format_estimate(m.drop, 4), worst]
        rows.append("| " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [
        f"The team's metric, {name}; drop = worse than the baseline by (paired, per item):",
        "",
        "| candidate | mean [CI] | drop [CI] | worst slice: drop [CI] |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def _task_lines(outcome: TargetOutcome) -> list[str]:
    """The lines of the task kind's own figures (a language model's table, say)."""
    names = {o.summary.task for o in outcome.outcomes if o.summary and o.summary.task}
    kinds = [kind for kind in map(find_task_kind, sorted(names)) if kind is not None]
    return [line for kind in kinds for line in kind.report_lines(outcome)]


def _pareto_lines(outcome: TargetOutcome) -> list[str]:
    """The Pareto front and who dominates each candidate off it (beyond noise)."""
    if not outcome.pareto_front:
        return []
    front = ", ".join(f"`{n}`" for n in outcome.pareto_front)
    lines = [
        "",
        f"Pareto front (accuracy, p50, peak RSS, size; better only beyond the CIs): {front}",
    ]
    off = [
        f"`{name}` (by {', '.join(f'`{d}`' for d in by)})"
        for name, by in outcome.dominated_by.items()
    ]
    if off:
        lines.append(f"Dominated: {'; '.join(off)}")
    return lines


def _head_to_head_lines(outcome: TargetOutcome) -> list[str]:
    """Close finalists compared via the baseline, then timed against each other."""
    rows = [
        f"- `{h.a}` vs `{h.b}`: `{h.a}` {h.ratio.value:.3f}x as fast "
        f"[{h.ratio.low:.3f}, {h.ratio.high:.3f}] over {h.blocks} interleaved block pairs "
        f"({h.stopped})"
        for h in outcome.head_to_head
    ]
    return (
        ["", "Timed head to head (close finalists, compared directly):", "", *rows] if rows else []
    )


def _shortened(outcome: TargetOutcome) -> list[str]:
    """Candidates scored on fewer eval items than the baseline (failed early on speed or
    top-1 agreement)."""
    full = max((o.summary.n_eval_items for o in outcome.outcomes if o.summary), default=0)
    notes = [
        f"- `{o.candidate.name}`: timing stopped as soon as a gate (speed or top-1 "
        "agreement) clearly failed it; "
        f"scored on its first {o.summary.n_eval_items} of {full} eval items"
        for o in outcome.outcomes
        if o.summary and o.summary.n_eval_items < full
    ]
    return ["", "Stopped early:", "", *notes] if notes else []


def _promotion_text(p: Promotion) -> str:
    if p.moved:
        was = f" (was v{p.champion_before})" if p.champion_before else " (first champion)"
        return f"registered v{p.version}; `champion` → v{p.version}{was}"
    if p.refused:
        return f"registered v{p.version} (`challenger`); ⚠️ `champion` not moved: {p.reason}"
    return p.reason


def render_summary(result: RunResult) -> str:
    """The whole summary.md of a run."""
    run = result.run
    git = run.lineage.git_sha[:10] if run.lineage.git_sha else "no git"
    if run.lineage.git_dirty:
        git += " (dirty)"
    lines = [
        MARKER,
        f"## edgeproof quality gate: {_ICONS[result.status]}",
        "",
        f"Run `{run.run_name}` · model `{run.model}` · git `{git}` · "
        f"MLflow run `{run.mlflow_run_id or '—'}` · trigger {run.trigger}",
        "",
    ]
    if result.error:
        lines += [f"**Error:** {result.error}", ""]
    if result.data_failures:
        lines += ["Failed data expectations (Great Expectations):", ""]
        lines += [f"- {failure}" for failure in result.data_failures] + [""]
    lines += [f"> ⚠️ {warning}" for warning in result.warnings]
    if result.warnings:
        lines.append("")
    promotions = {p.target: p for p in result.promotions}
    for outcome in result.targets:
        lines += _target_section(outcome, promotions.get(outcome.target))
    lines.append(
        "Latencies are batch-1 medians / p90 in ms with confidence intervals (language models: "
        "ms per generated token); speedup is the baseline's median over the candidate's, from "
        "interleaved blocks."
    )
    return "\n".join(lines) + "\n"
