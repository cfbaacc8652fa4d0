"""The optimization progression of one target: what each step bought and what it cost.

The baseline row is the conversion step (the user's model made into this target's FP32
format, e.g. ONNX -> OpenVINO IR); every recipe row is one optimization applied to that
baseline, with its cumulative effect against it: accuracy change, speedup (with CI), p50,
peak RSS and size change. Rows are ordered by speedup, slowest first, so the table reads
as the ladder from the reference up to the fastest candidate; failing candidates stay in
(what a step cost is the point) and are marked.
"""

from __future__ import annotations

from typing import Any

from edgeproof.records import CandidateOutcome, TargetOutcome

_HEADER = (
    "| step | recipe | accuracy Δ pt | speedup | p50 ms | peak RSS MB | size MB | verdict |\n"
    "|---|---|---|---|---|---|---|---|"
)
_HIDDEN = {"olive_resolved", "olive_pass_seconds", "mlflow_run"}  # long: kept in MLflow


def recipe_text(recipe: dict[str, Any]) -> str:
    """A recipe in one short line: ``method`` first, then its settings."""
    items = {k: v for k, v in recipe.items() if k not in _HIDDEN}
    method = items.pop("method", "?")
    if "passes" in items:  # Olive: the pass chain says what was done
        items["passes"] = " → ".join(p.get("type", "?") for p in items["passes"])
    rest = ", ".join(f"{k}={v}" for k, v in items.items())
    return f"{method}" + (f" ({rest})" if rest else "")


def progression_table(outcome: TargetOutcome) -> list[str]:
    """Markdown lines of the progression table; empty when the baseline was not measured."""
    measured = [o for o in outcome.outcomes if o.summary is not None]
    base = next((o for o in measured if o.candidate.is_baseline), None)
    if base is None:
        return []
    steps = sorted(
        (o for o in measured if not o.candidate.is_baseline),
        key=lambda o: o.summary.speedup.value if o.summary.speedup else 0.0,
    )
    rows = [_row(f"conversion → `{base.candidate.name}`", base, base)]
    rows += [_row(f"+ `{o.candidate.name}`", o, base) for o in steps]
    return [_HEADER, *rows]


def _row(step: str, o: CandidateOutcome, base: CandidateOutcome) -> str:
    s, b = o.summary, base.summary
    assert s is not None and b is not None
    if o is base:
        drop, speed = "—", "1.00x"
        rss, size = f"{s.peak_rss_mb:.0f}", f"{s.size_mb:.2f}"
    else:
        drop = "—" if s.accuracy_drop is None else f"{-s.accuracy_drop.value * 100:+.1f}"
        speed = (
            "—"
            if s.speedup is None
            else (f"{s.speedup.value:.2f}x [{s.speedup.low:.2f}, {s.speedup.high:.2f}]")
        )
        rss = f"{s.peak_rss_mb:.0f} ({s.peak_rss_mb - b.peak_rss_mb:+.0f})"
        size = (
            f"{s.size_mb:.2f} ({s.size_mb / b.size_mb:.2f}x)" if b.size_mb else f"{s.size_mb:.2f}"
        )
    cells = [step, recipe_text(o.candidate.recipe), drop, speed, f"{s.median_ms.value:.3f}"]
    return "| " + " | ".join([*cells, rss, size, o.verdict.status]) + " |"
