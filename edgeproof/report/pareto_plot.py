"""PNG of one target's accuracy / latency trade-off with CIs and the Pareto front.

Every candidate with a summary is one point: median batch-1 latency (x, log scale) against
accuracy, or top-1 agreement with the baseline when the eval set has no labels, or the
mean cosine to the baseline's first output for label-free tasks (y), each
with its confidence interval as error bars. Markers show the verdict (green circle pass,
red x fail or error, orange inconclusive, grey square baseline, large star the winner),
and a step line joins the noise-aware 2-D Pareto front of the passing non-baseline
candidates (``gates.pareto``), the set the winner is chosen from. Drawn with matplotlib's
Agg backend (no display needed on a runner).
"""

from __future__ import annotations

from pathlib import Path

from edgeproof.gates.objectives import METRICS, quality, quality_name, uses_labels
from edgeproof.gates.pareto import pareto_front
from edgeproof.records import CandidateOutcome, CandidateSummary, Estimate, TargetOutcome
from edgeproof.report.plots import save_figure

_STYLE = {  # verdict status -> (marker, color, legend label)
    "pass": ("o", "tab:green", "pass"),
    "fail": ("x", "tab:red", "fail"),
    "error": ("x", "tab:red", "fail"),
    "inconclusive": ("o", "tab:orange", "inconclusive"),
}


def _err(e: Estimate) -> list[list[float]]:
    return [[max(e.value - e.low, 0.0)], [max(e.high - e.value, 0.0)]]


def _style(o: CandidateOutcome, winner: str | None) -> tuple[str, str, str, float]:
    """(marker, color, legend label, marker area) of one candidate's point."""
    if o.candidate.is_baseline:
        return "s", "grey", "baseline", 60.0
    if o.candidate.name == winner:
        return "*", "gold", "winner", 320.0
    marker, color, label = _STYLE.get(o.verdict.status, _STYLE["inconclusive"])
    return marker, color, label, 50.0


def pareto_plot(outcome: TargetOutcome, path: Path) -> Path | None:
    """Write the target's accuracy-vs-latency figure to ``path``; None if nothing summarized."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    rows = [o for o in outcome.outcomes if o.summary is not None]
    if not rows:
        return None
    labelled = uses_labels(o.summary for o in rows)

    def y_of(s: CandidateSummary) -> Estimate:
        return quality(s, labelled)

    fig, ax = plt.subplots(figsize=(8, 5.5))
    seen: set[str] = set()
    for o in rows:
        s = o.summary
        x, y = s.median_ms, y_of(s)
        marker, color, label, area = _style(o, outcome.winner)
        ax.errorbar(
            x.value, y.value, xerr=_err(x), yerr=_err(y), fmt="none", ecolor=color, alpha=0.6
        )
        edge = {"edgecolors": "black", "linewidths": 0.6} if marker in "o*s" else {}
        ax.scatter(
            [x.value],
            [y.value],
            marker=marker,
            s=area,
            color=color,
            zorder=3,
            label=None if label in seen else label,
            **edge,
        )
        seen.add(label)
        ax.annotate(
            o.candidate.name,
            (x.value, y.value),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=8,
        )
        if o.candidate.name == outcome.winner:
            ax.annotate(
                "winner",
                (x.value, y.value),
                xytext=(18, -22),
                textcoords="offset points",
                fontsize=9,
                fontweight="bold",
                arrowprops={"arrowstyle": "->", "color": "black"},
            )
    passing = {
        o.candidate.name: o.summary
        for o in rows
        if not o.candidate.is_baseline and o.verdict.status == "pass"
    }
    front = pareto_front(passing, (METRICS["latency"], METRICS["accuracy"])).front
    if front:
        pts = sorted((passing[n].median_ms.value, y_of(passing[n]).value) for n in front)
        ax.step(
            [p[0] for p in pts],
            [p[1] for p in pts],
            where="post",
            color="tab:blue",
            lw=1.2,
            ls="--",
            zorder=2,
            label="Pareto front (passing)",
        )
    conf = rows[0].summary.median_ms.confidence
    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.4, not 4 x 10^-1
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.set_xlabel(f"median batch-1 latency, ms (log scale, {conf:.0%} CI)")
    what = quality_name(rows[0].summary, labelled)
    ax.set_ylabel(f"{what} ({y_of(rows[0].summary).confidence:.0%} CI)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"{outcome.target}: {what} vs latency")
    return save_figure(fig, path)
