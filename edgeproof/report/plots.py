"""PNG plots of one target: latency distributions and speedups with their CIs.

Drawn with matplotlib's Agg backend (no display needed on a runner). Left: batch-1
latency samples of every measured candidate (box plots, log scale), the baseline first.
Right: each candidate's speedup with its confidence interval and the gate's minimum.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeproof.records import TargetOutcome
from edgeproof.records.measurement import TargetMeasurements


def latency_plot(
    outcome: TargetOutcome, measured: TargetMeasurements, min_speedup: float | None, path: Path
) -> Path | None:
    """Write the target's latency / speedup figure to ``path``; None if nothing measured."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = [
        o for o in outcome.outcomes if o.summary is not None and o.candidate.name in measured.raw
    ]
    if not rows:
        return None
    names = [o.candidate.name for o in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.6 * len(rows) + 2.2))
    left.boxplot(
        [measured.raw[n].latency_ms for n in names],
        vert=False,
        tick_labels=names,
        showfliers=False,
        whis=(5, 95),
    )
    left.set_xscale("log")
    left.set_xlabel("batch-1 latency, ms (box: quartiles, whiskers: p5-p95)")
    left.invert_yaxis()
    sped = [o for o in rows if o.summary.speedup is not None]
    for i, o in enumerate(sped):
        s = o.summary.speedup
        color = {"pass": "tab:green", "fail": "tab:red"}.get(o.verdict.status, "tab:orange")
        right.errorbar(
            s.value,
            i,
            xerr=[[s.value - s.low], [s.high - s.value]],
            fmt="o",
            color=color,
            capsize=4,
        )
    right.set_yticks(range(len(sped)), [o.candidate.name for o in sped])
    right.set_ylim(len(sped) - 0.5, -0.5)  # first candidate on top, no point on the edge
    right.axvline(1.0, color="grey", lw=1, ls=":")
    if min_speedup is not None:
        right.axvline(min_speedup, color="tab:red", lw=1, ls="--", label=f"min {min_speedup}x")
        right.legend(loc="best")
    conf = sped[0].summary.speedup.confidence if sped else 0.95
    right.set_xlabel(f"speedup vs baseline ({conf:.0%} CI; green pass, red fail)")
    fig.suptitle(f"{outcome.target}: latency and speedup")
    return save_figure(fig, path)


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out, write (folders made) and close a matplotlib figure; returns ``path``."""
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
