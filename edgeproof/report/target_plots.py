"""A target's figures, named in its outcome so the report and MLflow link them."""

from __future__ import annotations

from pathlib import Path

from edgeproof.records import TargetOutcome
from edgeproof.records.measurement import TargetMeasurements
from edgeproof.report.pareto_plot import pareto_plot
from edgeproof.report.plots import latency_plot


def draw_target_plots(
    outcome: TargetOutcome,
    measured: TargetMeasurements,
    min_speedup: float | None,
    plot_dir: Path,
) -> TargetOutcome:
    """Draw the latency and Pareto figures into ``plot_dir``; the outcome names those drawn."""
    latency, pareto = f"{outcome.target}-latency.png", f"{outcome.target}-pareto.png"
    drawn = [
        latency if latency_plot(outcome, measured, min_speedup, plot_dir / latency) else None,
        pareto if pareto_plot(outcome, plot_dir / pareto) else None,
    ]
    return outcome.model_copy(update={"plots": tuple(n for n in drawn if n)})
