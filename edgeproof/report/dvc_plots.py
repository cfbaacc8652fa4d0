"""A run's candidates as DVC plot data (``dvc plots show`` / ``dvc plots diff``).

One row per candidate that has a summary, for the ``plots:`` of the DVC gate stage
(pipelines/quality-gate/dvc.yaml): latency against accuracy (a scatter) and the speedup of
each candidate (bars). ``candidate`` is ``<target>/<name>``, unique across targets; the
baseline's speedup is 1 (the reference bar). Figures missing for a candidate (no labels, so
no accuracy) are null, which DVC's Vega-Lite templates leave out.

Also a command, for a run already on disk: ``python -m edgeproof.report.dvc_plots
reports/<run>/verdict.json metrics/gate-candidates.json``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgeproof.records import Estimate, RunResult


def _figure(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def _ci(prefix: str, est: Estimate | None) -> dict[str, float | None]:
    if est is None:
        return {prefix: None, f"{prefix}_low": None, f"{prefix}_high": None}
    return {
        prefix: _figure(est.value),
        f"{prefix}_low": _figure(est.low),
        f"{prefix}_high": _figure(est.high),
    }


def dvc_plot_rows(result: RunResult) -> list[dict[str, Any]]:
    """One flat row per summarized candidate, targets in run order, candidates in theirs."""
    rows = []
    for outcome in result.targets:
        for o in outcome.outcomes:
            s = o.summary
            if s is None:
                continue
            speedup = s.speedup
            if speedup is None and o.candidate.is_baseline:
                speedup = Estimate(value=1.0, low=1.0, high=1.0, confidence=1.0)
            rows.append(
                {
                    "target": outcome.target,
                    "candidate": f"{outcome.target}/{o.candidate.name}",
                    "baseline": o.candidate.is_baseline,
                    "winner": o.candidate.name == outcome.winner,
                    "verdict": o.verdict.status,
                    **_ci("latency_p50_ms", s.median_ms),
                    **_ci("accuracy", s.accuracy),
                    **_ci("top1_agreement", s.top1_agreement),
                    **_ci("speedup", speedup),
                    "size_mb": _figure(s.size_mb),
                }
            )
    return rows


def write_dvc_plots(result: RunResult, path: Path) -> Path:
    """``dvc_plot_rows`` as a JSON list at ``path``, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(dvc_plot_rows(result), indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m edgeproof.report.dvc_plots VERDICT_JSON OUT_JSON", file=sys.stderr)
        return 2
    verdict, out = map(Path, args)
    result = RunResult.model_validate_json(verdict.read_text(encoding="utf-8"))
    print(write_dvc_plots(result, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
