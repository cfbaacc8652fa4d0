"""The framework matrix rendered: a markdown table and a PNG heat map.

``matrix_markdown`` renders one table (a row per device, a column per target) and
``matrix_heatmap`` a PNG heat map of every non-baseline candidate's p50 relative to its
device's winner (``gates.framework_matrix`` decides who wins;
``edgeproof.tracking.matrix_runs`` reads the runs).
"""

from __future__ import annotations

from pathlib import Path

from edgeproof.gates.framework_matrix import DeviceRow, Matrix
from edgeproof.report.plots import save_figure

_DASH = "—"
_MIN_SPAN = 1.5  # heat map colour scale: 1x .. at least this
_TICKS = (1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def _ms(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} ms"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def margin_text(row: DeviceRow) -> str:
    """``1.18x over openvino-cpu/nncf-int8, CIs apart``, ``… within noise`` or why not."""
    if row.winner is None:
        return _DASH
    if row.runner_up is None or row.margin is None:
        return "no other target passed"
    noise = "CIs apart" if row.clear else "within noise"
    return f"{row.margin:.2f}x over {row.runner_up.label}, {noise}"


def _target_cell(row: DeviceRow, target: str) -> str:
    if not any(c.target == target for c in row.cells):
        return _DASH
    best = row.best(target)
    if best is None:
        return "no pass"
    text = f"{best.candidate} {_ms(best.p50_ms)}"
    return f"**{text}**" if best is row.winner else text


def matrix_markdown(matrix: Matrix) -> str:
    """The matrix as a GitHub-flavoured markdown table, or a one-line note without runs."""
    if not matrix.devices:
        return (
            f"No measured candidate runs with a device fingerprint for model "
            f"`{matrix.model}` in MLflow: nothing to compare yet.\n"
        )
    targets = matrix.targets
    header = ["device", *targets, "winner", "margin"]
    lines = [
        f"### Framework matrix: `{matrix.model}`",
        "",
        "| " + " | ".join(_md(h) for h in header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in matrix.devices:
        cells = [
            f"{row.device_name} `{row.device}`",
            *(_target_cell(row, t) for t in targets),
            row.winner.label if row.winner else "none passed",
            margin_text(row),
        ]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines += [
        "",
        "Each target column: the recipe its gate picked in the newest run (else its passing "
        "recipe with the highest speedup over that target's baseline) and its median batch-1 "
        "latency (p50), from each recipe's latest run on that device. Winner: the target "
        "whose pick has the lowest p50; margin: the best other target's p50 / the winner's, "
        '"CIs apart" when their p50 confidence intervals do not overlap.',
        "",
    ]
    return "\n".join(lines)


def matrix_heatmap(matrix: Matrix, path: Path) -> Path | None:
    """PNG heat map (devices x target/recipe) of p50 relative to each device's winner.

    Colour (passing cells only): p50 / the device winner's p50 on a log scale from 1x
    (green, the winner) to at least 1.5x (red). Failing, erroring or inconclusive cells are
    grey, hatched and marked ✗ (a failing recipe can be faster than the winner); cells not
    measured on a device are blank. Every cell is annotated with its p50; the winner is
    outlined. None when no device has a non-baseline cell.
    """
    columns = sorted(
        {(c.target, c.candidate) for r in matrix.devices for c in r.cells if not c.baseline}
    )
    rows = [r for r in matrix.devices if any(not c.baseline for c in r.cells)]
    if not columns or not rows:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    col_index = {key: j for j, key in enumerate(columns)}
    ratio = np.full((len(rows), len(columns)), np.nan)
    for i, row in enumerate(rows):
        for c in row.cells:
            if c.eligible and row.winner is not None:
                ratio[i, col_index[(c.target, c.candidate)]] = c.p50_ms / row.winner.p50_ms
    finite = ratio[np.isfinite(ratio)]
    high = max(float(finite.max()) if finite.size else 1.0, _MIN_SPAN)
    ticks = [t for t in _TICKS if t <= high]
    cmap = plt.get_cmap("RdYlGn_r")
    norm = LogNorm(vmin=1.0, vmax=high)
    fig, ax = plt.subplots(figsize=(1.5 * len(columns) + 4.0, 0.7 * len(rows) + 2.2))
    try:
        ax.set_facecolor("white")  # cells never measured on a device
        image = ax.imshow(np.ma.masked_invalid(ratio), cmap=cmap, norm=norm, aspect="auto")
        for i, row in enumerate(rows):
            for c in row.cells:
                if c.baseline:
                    continue
                j = col_index[(c.target, c.candidate)]
                text, color = _ms(c.p50_ms), "black"
                if c.eligible:
                    r, g, b, _ = cmap(norm(ratio[i, j]))
                    color = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
                else:
                    ax.add_patch(
                        Rectangle(
                            (j - 0.5, i - 0.5),
                            1,
                            1,
                            facecolor="gainsboro",
                            hatch="//",
                            edgecolor="grey",
                            lw=0,
                        )
                    )
                    text = f"✗ {text}"
                if c is row.winner:
                    ax.add_patch(
                        Rectangle(
                            (j - 0.47, i - 0.47), 0.94, 0.94, fill=False, edgecolor="black", lw=3
                        )
                    )
                weight = "bold" if c is row.winner else "normal"
                ax.text(
                    j, i, text, ha="center", va="center", fontsize=8, color=color, weight=weight
                )
        ax.set_xticks(
            range(len(columns)), [f"{t}/{c}" for t, c in columns], rotation=30, ha="right"
        )
        ax.set_yticks(range(len(rows)), [f"{r.device_name[:40]}\n{r.device}" for r in rows])
        ax.set_title(f"{matrix.model}: p50 latency per device (outlined: winner, ✗: not passing)")
        bar = fig.colorbar(image, ax=ax)
        bar.set_ticks(ticks, labels=[f"{t:g}x" for t in ticks])
        bar.ax.minorticks_off()
        bar.set_label("p50 / device winner's p50")
    except BaseException:
        plt.close(fig)
        raise
    return save_figure(fig, path)
