"""Assemble ``benchmarks/results/trust.md``: every figure of the trust benchmark on one page.

- The speed gate's error rates measured on this machine (A/A and calibrated slowdowns):
  ``edgeproof trust --out benchmarks/results`` writes ``trust.json``.
- Selection error (two passing candidates 0/5/15% apart: how often the slower one wins) and
  early verdicts (A/A false-fail, a 10% slowdown caught, when a clear failure stops),
  simulated: ``benchmarks/trust_sim.py`` writes ``trust_sim.json``.
- Champion churn and the measurement seconds per verdict, from the example gated again and
  again with nothing changed: ``benchmarks/churn.py`` writes ``churn.json``.

This script only reads those JSON files (run the three first) and writes ``trust.md``.

    .venv/bin/python benchmarks/trust_report.py [--results benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from trust_sim import summary as simulated_goals

from edgeproof.pipeline.trust import trust_markdown


def _load(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    if not path.is_file():
        raise SystemExit(f"trust_report: {path} is missing: run its benchmark first")
    return json.loads(path.read_text(encoding="utf-8"))


def _demoted(markdown: str) -> list[str]:
    """``markdown`` with every heading one level lower (it becomes a section)."""
    return [f"#{line}" if line.startswith("#") else line for line in markdown.splitlines()]


def selection_table(simulated: dict[str, Any]) -> list[str]:
    """How often the slower of two passing candidates wins, by gap and noise."""
    rows = [
        f"| {r['noise']} | {r['gap']:.0%} | {r['old']:.2%} | {r['paired']:.2%} "
        f"| {r['head_to_head']:.2%} |"
        for r in simulated["selection"]
    ]
    return [
        "The slower of two passing candidates wins (the slower one is listed first and "
        "smaller, so every tie goes to it: at 0% apart a high rate means a stable winner):",
        "",
        "| noise | apart | old rule (absolute medians) | paired via the baseline "
        "| paired + head to head (what a run does) |",
        "|---|---|---|---|---|",
        *rows,
    ]


def churn_section(churn: dict[str, Any]) -> list[str]:
    """Alias moves over the unchanged runs, the winners, and seconds per verdict."""
    runs = churn["runs"]
    winners = sorted({r.get("winner") or "-" for r in runs})
    timed = churn.get("verdict_seconds", {})
    every = [s for secs in timed.values() for s in secs]
    lines = [
        "## Champion churn and seconds per verdict (the example, nothing changed)",
        "",
        f"`benchmarks/churn.py`: `edgeproof run --target {churn['target']}` {len(runs)} times "
        "against one MLflow store ([churn.md](churn.md) has every run).",
        "",
        f"- Alias moves after the first promotion: **{churn['moves_after_first']}** (goal 0).",
        f"- Winners: {', '.join(f'`{w}`' for w in winners)} "
        f"({sum(r.get('winner') == runs[0].get('winner') for r in runs)} of {len(runs)} "
        "runs picked the first run's winner).",
    ]
    if every:
        lines += [
            "",
            "| verdict | n | median s | max s | goal |",
            "|---|---|---|---|---|",
            *(
                f"| {status} | {len(secs)} | {statistics.median(secs):.1f} | {max(secs):.1f} "
                f"| {'<= 3 s (a clear failure)' if status == 'fail' else ''} |"
                for status, secs in timed.items()
            ),
            f"| all | {len(every)} | {statistics.median(every):.1f} | {max(every):.1f} "
            "| median <= 5 s |",
            "",
            'Seconds from a candidate\'s "measuring X against fp32" progress line to the next '
            "line: its worker's start, load and warm-up, the interleaved blocks, throughput and "
            "eval outputs.",
        ]
    return lines


def render(folder: Path) -> str:
    """The whole page from the three JSON results in ``folder``."""
    measured = _load(folder, "trust.json")
    simulated = _load(folder, "trust_sim.json")
    churn = _load(folder, "churn.json")
    goals = simulated_goals(simulated)
    lines = [
        "# Trust benchmark: decisions that hold under noise",
        "",
        "Assembled by `benchmarks/trust_report.py` from `trust.json` (`edgeproof trust`, "
        "measured here), `trust_sim.json` (`benchmarks/trust_sim.py`, simulated; "
        "[trust_sim.md](trust_sim.md) has every table) and `churn.json` "
        "(`benchmarks/churn.py`, measured here).",
        "",
        *_demoted(trust_markdown(measured, measured.get("machine", {}))),
        "",
        "## Selection error and early verdicts (simulated)",
        *goals[1:],
        "",
        *selection_table(simulated),
        "",
        *churn_section(churn),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    page = render(args.results)
    (args.results / "trust.md").write_text(page, encoding="utf-8")
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
