"""A run's key figures as a small flat JSON for ``dvc metrics diff`` (``edgeproof run
--metrics``, the DVC gate stage): its status, and per target its status, winner and the
winner's main figures (without a winner, the fastest measured candidate's, named in
``figures_of``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeproof.records import RunResult


def _figure(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def gate_metrics(result: RunResult) -> dict[str, Any]:
    """A run's key figures, small and flat enough for ``dvc metrics diff``: its status,
    and per target the status, the winner and the main figures of the winner (without
    one, of the fastest measured candidate, named in ``figures_of``)."""
    targets: dict[str, dict[str, Any]] = {}
    for outcome in result.targets:
        entry: dict[str, Any] = {
            "status": outcome.status,
            "passed": int(outcome.status == "pass"),
            "winner": outcome.winner or "none",
            "candidates": len(outcome.outcomes),
        }
        measured = [c for c in outcome.outcomes if c.summary is not None and c.summary.speedup]
        won = next((c for c in measured if c.candidate.name == outcome.winner), None)
        if won is None and measured:
            won = max(measured, key=lambda c: c.summary.speedup.value)  # type: ignore[union-attr]
        if won is not None and won.summary is not None:
            summary = won.summary
            entry["figures_of"] = won.candidate.name
            entry.update(
                speedup=_figure(summary.speedup.value if summary.speedup else None),
                latency_p50_ms=_figure(summary.median_ms.value),
                accuracy=_figure(summary.accuracy.value if summary.accuracy else None),
                accuracy_drop=_figure(
                    summary.accuracy_drop.value if summary.accuracy_drop else None
                ),
                top1_agreement=_figure(
                    summary.top1_agreement.value if summary.top1_agreement else None
                ),
                size_mb=_figure(summary.size_mb),
            )
        targets[outcome.target] = entry
    return {
        "status": result.status,
        "exit_code": result.exit_code,
        "passed": int(result.status == "pass"),
        "targets": targets,
    }


def write_gate_metrics(result: RunResult, path: Path) -> Path:
    """``gate_metrics`` as JSON at ``path`` (``edgeproof run --metrics``, the DVC stage)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(gate_metrics(result), indent=2, sort_keys=True) + "\n"
    path.write_text(text, encoding="utf-8")
    return path
