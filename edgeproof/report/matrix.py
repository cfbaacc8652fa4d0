"""Framework matrix: which target / recipe wins on which device, read from MLflow history.

"Which framework for which hardware" is usually answered by folklore; edgeproof already
logs every measured candidate to MLflow with the fingerprint digest of the device that
measured it (``edgeproof.device``), its verdict and its latency with a confidence interval.
This module turns that history into a measured answer for one model:

* ``collect_matrix`` reads the model's experiment (experiment name = model name), keeps the
  candidate runs that carry a device tag and a ``latency_p50_ms`` metric and, for each
  (device, target, candidate), only the most recent run (by start time), so a re-measured
  recipe replaces its old numbers;
* per device, the **winner** is the passing, non-baseline candidate with the lowest p50 over
  all targets; the **runner-up** is the best passing non-baseline candidate of *another*
  target (the matrix compares frameworks, not recipes of one framework); the **margin** is
  runner-up p50 / winner p50, and it is **clear** when the CIs are apart (winner's upper
  bound below the runner-up's lower bound), otherwise "within noise";
* ``matrix_markdown`` renders one table (a row per device, a column per target) and
  ``matrix_heatmap`` a PNG heat map of every non-baseline candidate's p50 relative to its
  device's winner.

Failing, erroring and inconclusive candidates are shown but never win; baselines are the
unoptimized reference, never a recommendation, so they neither win nor appear in the map.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeproof.report.plots import save_figure
from edgeproof.tracking.mlflow_store import mlflow_errors

if TYPE_CHECKING:
    from mlflow import MlflowClient

LEVEL_TAG = "edgeproof.level"
TARGET_TAG = "edgeproof.target"
CANDIDATE_TAG = "edgeproof.candidate"
VERDICT_TAG = "edgeproof.verdict"
BASELINE_TAG = "edgeproof.baseline"
DEVICE_TAG = "edgeproof.device"
DEVICE_NAME_TAG = "edgeproof.device_name"
P50 = "latency_p50_ms"
PAGE_SIZE = 1000
_DASH = "—"
_MIN_SPAN = 1.5  # heat map colour scale: 1x .. at least this
_TICKS = (1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)


@dataclass(frozen=True)
class Cell:
    """One candidate's latest measurement on one device."""

    target: str
    candidate: str
    p50_ms: float
    p50_low: float | None
    p50_high: float | None
    verdict: str
    speedup: float | None
    accuracy: float | None
    when: datetime
    baseline: bool = False
    run_id: str = ""

    @property
    def label(self) -> str:
        """``target/candidate``."""
        return f"{self.target}/{self.candidate}"

    @property
    def eligible(self) -> bool:
        """Can win: passed its gates and is not the baseline."""
        return self.verdict == "pass" and not self.baseline


@dataclass(frozen=True)
class DeviceRow:
    """One device's cells (sorted by target, candidate) and who wins there."""

    device: str
    device_name: str
    cells: tuple[Cell, ...]
    winner: Cell | None
    runner_up: Cell | None
    margin: float | None
    clear: bool
    runs: int  # candidate runs read for this device, older re-measurements included

    def best(self, target: str) -> Cell | None:
        """The fastest passing non-baseline cell of ``target`` on this device."""
        return _fastest(c for c in self.cells if c.target == target and c.eligible)


@dataclass(frozen=True)
class Matrix:
    """The framework matrix of one model: a row per device, sorted by device name."""

    model: str
    devices: tuple[DeviceRow, ...]

    @property
    def targets(self) -> tuple[str, ...]:
        """Every target measured on any device, sorted."""
        return tuple(sorted({c.target for row in self.devices for c in row.cells}))


def collect_matrix(client: MlflowClient, model: str, page_size: int = PAGE_SIZE) -> Matrix:
    """Read the candidate runs of experiment ``model`` and build its matrix.

    No experiment, or no run with a device tag and a positive p50, gives a matrix without
    devices. MLflow failures are raised as one-line ``TrackingError``.
    """
    with mlflow_errors(f"read the runs of experiment {model!r}"):
        experiment = client.get_experiment_by_name(model)
        runs = [] if experiment is None else list(_candidate_runs(client, experiment, page_size))
    latest: dict[tuple[str, str, str], tuple[Cell, str]] = {}
    counts: dict[str, int] = {}
    for run in runs:
        parsed = _cell(run)
        if parsed is None:
            continue
        cell, device, name = parsed
        counts[device] = counts.get(device, 0) + 1
        key = (device, cell.target, cell.candidate)
        kept = latest.get(key)
        if kept is None or (cell.when, cell.run_id) > (kept[0].when, kept[0].run_id):
            latest[key] = (cell, name)
    by_device: dict[str, list[tuple[Cell, str]]] = {}
    for (device, _, _), entry in latest.items():
        by_device.setdefault(device, []).append(entry)
    rows = [_device_row(device, entries, counts[device]) for device, entries in by_device.items()]
    rows.sort(key=lambda r: (r.device_name.lower(), r.device))
    return Matrix(model=model, devices=tuple(rows))


def _candidate_runs(client: MlflowClient, experiment: Any, page_size: int) -> Iterator[Any]:
    token: str | None = None
    while True:
        page = client.search_runs(
            [experiment.experiment_id],
            f"tags.`{LEVEL_TAG}` = 'candidate'",
            max_results=page_size,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def _cell(run: Any) -> tuple[Cell, str, str] | None:
    """(cell, device digest, device name) of a candidate run; None if it lacks either."""
    tags, metrics = run.data.tags, run.data.metrics
    device = tags.get(DEVICE_TAG)
    p50 = metrics.get(P50)
    if not device or p50 is None or not math.isfinite(p50) or p50 <= 0:
        return None
    cell = Cell(
        target=tags.get(TARGET_TAG, "unknown"),
        candidate=tags.get(CANDIDATE_TAG, run.info.run_name or run.info.run_id),
        p50_ms=float(p50),
        p50_low=metrics.get(f"{P50}_low"),
        p50_high=metrics.get(f"{P50}_high"),
        verdict=tags.get(VERDICT_TAG, "unknown"),
        speedup=metrics.get("speedup"),
        accuracy=metrics.get("accuracy"),
        when=datetime.fromtimestamp((run.info.start_time or 0) / 1000, tz=UTC),
        baseline=tags.get(BASELINE_TAG, "false").lower() == "true",
        run_id=run.info.run_id,
    )
    return cell, device, tags.get(DEVICE_NAME_TAG) or "unknown device"


def _fastest(cells: Iterable[Cell]) -> Cell | None:
    return min(cells, key=lambda c: (c.p50_ms, c.target, c.candidate), default=None)


def _device_row(device: str, entries: list[tuple[Cell, str]], runs: int) -> DeviceRow:
    cells = sorted((c for c, _ in entries), key=lambda c: (c.target, c.candidate))
    device_name = max(entries, key=lambda e: e[0].when)[1]  # as the newest run names it
    winner = _fastest(c for c in cells if c.eligible)
    runner_up = margin = None
    clear = False
    if winner is not None:
        runner_up = _fastest(c for c in cells if c.eligible and c.target != winner.target)
    if winner is not None and runner_up is not None:
        margin = runner_up.p50_ms / winner.p50_ms
        clear = (
            winner.p50_high is not None
            and runner_up.p50_low is not None
            and winner.p50_high < runner_up.p50_low
        )
    return DeviceRow(device, device_name, tuple(cells), winner, runner_up, margin, clear, runs)


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
        "Each target column: its fastest passing recipe and median batch-1 latency (p50), from "
        "each recipe's latest run on that device. Winner: fastest passing non-baseline recipe; "
        "margin: the best other target's p50 / the winner's, \"CIs apart\" when their p50 "
        "confidence intervals do not overlap.",
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
