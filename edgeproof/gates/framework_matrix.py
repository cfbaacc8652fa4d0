"""The framework matrix: which target / recipe wins on which device, from measured cells.

"Which framework for which hardware" is usually answered by folklore; edgeproof logs every
measured candidate with the fingerprint digest of the device that measured it, its verdict
and its latency with a confidence interval (``edgeproof.tracking.matrix_runs`` reads them
back as ``Cell``s). Per device:

* each target's **best** is the candidate its gate picked as winner in the newest run that
  picked one of these cells; else its passing, non-baseline candidate with the highest
  speedup over that target's baseline (timed interleaved with it; the lowest p50 when a
  speedup is missing);
* the **winner** is the target best with the lowest p50; the **runner-up** is the best of
  *another* target (the matrix compares frameworks, not recipes of one framework);
* the **margin** is runner-up p50 / winner p50, and it is **clear** when the CIs are apart
  (winner's upper bound below the runner-up's lower bound), otherwise "within noise".

Failing, erroring and inconclusive candidates are shown but never win; baselines are the
unoptimized reference, never a recommendation, so they never win.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


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
    won: bool = False  # its run's gate picked it as the target's winner

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
        """The passing non-baseline cell of ``target`` its gate would pick on this device."""
        return _target_best(c for c in self.cells if c.target == target and c.eligible)


@dataclass(frozen=True)
class Matrix:
    """The framework matrix of one model: a row per device, sorted by device name."""

    model: str
    devices: tuple[DeviceRow, ...]

    @property
    def targets(self) -> tuple[str, ...]:
        """Every target measured on any device, sorted."""
        return tuple(sorted({c.target for row in self.devices for c in row.cells}))


def build_matrix(
    model: str, latest: dict[str, list[tuple[Cell, str]]], runs: dict[str, int]
) -> Matrix:
    """The matrix from each device's latest cells (with the device name each run gave) and
    the number of candidate runs read per device; rows sorted by device name."""
    rows = [_device_row(device, entries, runs[device]) for device, entries in latest.items()]
    rows.sort(key=lambda r: (r.device_name.lower(), r.device))
    return Matrix(model=model, devices=tuple(rows))


def _fastest(cells: Iterable[Cell]) -> Cell | None:
    return min(cells, key=lambda c: (c.p50_ms, c.target, c.candidate), default=None)


def _target_best(cells: Iterable[Cell]) -> Cell | None:
    """The newest gate winner among ``cells``; else the highest paired speedup (drift
    between windows cancels), else the lowest p50."""
    pool = list(cells)
    won = [c for c in pool if c.won]
    if won:
        return max(won, key=lambda c: (c.when, c.candidate))
    if pool and all(c.speedup is not None for c in pool):
        return min(pool, key=lambda c: (-(c.speedup or 0.0), c.p50_ms, c.candidate))
    return _fastest(pool)


def _device_row(device: str, entries: list[tuple[Cell, str]], runs: int) -> DeviceRow:
    cells = sorted((c for c, _ in entries), key=lambda c: (c.target, c.candidate))
    device_name = max(entries, key=lambda e: e[0].when)[1]  # as the newest run names it
    targets = sorted({c.target for c in cells})
    bests = [
        b for t in targets if (b := _target_best(c for c in cells if c.target == t and c.eligible))
    ]
    winner = _fastest(bests)
    runner_up = margin = None
    clear = False
    if winner is not None:
        runner_up = _fastest(c for c in bests if c.target != winner.target)
    if winner is not None and runner_up is not None:
        margin = runner_up.p50_ms / winner.p50_ms
        clear = (
            winner.p50_high is not None
            and runner_up.p50_low is not None
            and winner.p50_high < runner_up.p50_low
        )
    return DeviceRow(device, device_name, tuple(cells), winner, runner_up, margin, clear, runs)
