"""The report's lines on a search recipe: what it kept in float, why, and what it cost."""

from __future__ import annotations

from typing import Any

from edgeproof.records import TargetOutcome

MAX_ROWS = 12  # sensitivity rows shown per search (the rest are in the recipe record)


def search_lines(outcome: TargetOutcome) -> list[str]:
    """Per searched candidate: units kept in float, sensitivities, steps, budget used."""
    lines: list[str] = []
    for o in outcome.outcomes:
        search: dict[str, Any] | None = o.candidate.recipe.get("search")
        if not search:
            continue
        kept = search.get("kept_in_float") or []
        spent = f"; budget spent: {search['budget_spent']}" if search.get("budget_spent") else ""
        units = ", ".join(f"`{u}`" for u in kept) or "none: the fully quantized mix passed"
        cost = f"{search['probes']} probes in {search['seconds']:g} s on the calibration items"
        lines += [
            f"Search `{o.candidate.name}`: {len(kept)} of {search['units']} units kept in float "
            f"({units}); {cost}{spent}.",
            "",
        ]
        rows = search.get("sensitivity") or []
        if rows:
            lines += [
                "| unit | loss when quantized alone | kept in float |",
                "|---|---|---|",
                *(
                    f"| `{r['unit']}` | {r['loss']:.3g} | {'yes' if r['unit'] in kept else ''} |"
                    for r in rows[:MAX_ROWS]
                ),
                "",
            ]
        steps = search.get("steps") or []
        if steps:
            lines += [
                "Steps (units kept in float: probe result): "
                + "; ".join(
                    f"{s['kept_in_float']}: {'pass' if s['passes'] else 'fail'} ({s['detail']})"
                    for s in steps
                ),
                "",
            ]
    return lines
