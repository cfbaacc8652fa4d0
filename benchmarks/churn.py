"""Champion churn: the example gated N times with nothing changed; how often `champion` moves.

Runs ``edgeproof run --target T --json`` ``--runs`` times against one fresh MLflow store
(sqlite, in a temporary folder), one after the other, then reads the registered model's
alias history. Goal (issue 21): no alias move after the first run's promotion. Writes
``benchmarks/results/churn.{md,json}`` with each run's winner, its comparison with the
champion, the history's actions, and the measurement seconds per verdict (from the run's
own progress lines: a candidate's "measuring X against ..." line to the next line).

    .venv/bin/python benchmarks/churn.py [--runs 10] [--target onnxruntime-cpu]

Never beside another benchmark: the machine has 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeproof.config import TrackingConfig
from edgeproof.measure.environment import machine_state
from edgeproof.params.model import load_params
from edgeproof.tracking.audit import MOVES, read_history
from edgeproof.tracking.mlflow_store import MlflowStore

_STEP = re.compile(r"^\[ *(?P<at>\d+\.\d+)s\] [\w.-]+: (?P<text>.+)$")
_MEASURING = re.compile(r"^measuring (?P<name>\S+) against (?!champion)")


def verdict_seconds(stderr: str) -> dict[str, float]:
    """Seconds from each candidate's "measuring X against <baseline>" line to the next
    progress line of the run (its verdict's measurement time, worker start included)."""
    steps = [m for m in map(_STEP.match, stderr.splitlines()) if m]
    out = {}
    for here, after in itertools.pairwise(steps):
        measuring = _MEASURING.match(here["text"])
        if measuring:
            out[measuring["name"]] = float(after["at"]) - float(here["at"])
    return out


def one_run(params: Path, target: str, env: dict[str, str]) -> dict[str, Any]:
    """One whole run; its exit code, seconds, winner and champion comparison."""
    command = [str(Path(sys.executable).with_name("edgeproof")), "run", "--params",
               str(params), "--target", target, "--json"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, cwd=params.parent, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode == 2 or not done.stdout.strip():
        return {"exit": done.returncode, "seconds": took, "error": done.stderr[-500:]}
    verdict = json.loads(done.stdout)
    outcome = verdict["targets"][0]
    versus = outcome.get("champion") or {}
    status = {o["candidate"]["name"]: o["verdict"]["status"] for o in outcome["outcomes"]}
    return {
        "exit": done.returncode,
        "seconds": took,
        "winner": outcome.get("winner"),
        "vs_champion": versus.get("status", "no champion yet"),
        "moved": any(p["moved"] for p in verdict.get("promotions", [])),
        "head_to_head": [(h["a"], h["b"]) for h in outcome.get("head_to_head", [])],
        "verdicts": {
            name: {"status": status.get(name), "seconds": round(sec, 2)}
            for name, sec in verdict_seconds(done.stderr).items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--target", default="onnxruntime-cpu")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    params = args.params.resolve()
    config = load_params(params)
    registered = config.registry.registered_name(config.model.name, args.target)
    with tempfile.TemporaryDirectory(prefix="edgeproof-churn-") as scratch:
        uri = f"sqlite:///{Path(scratch) / 'mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        runs = []
        for i in range(args.runs):
            runs.append(one_run(params, args.target, env))
            print(f"run {i + 1}: {runs[-1]}", flush=True)
        os.environ["MLFLOW_TRACKING_URI"] = uri
        history = read_history(MlflowStore(TrackingConfig()), registered)
    events = [(e.action, e.from_version, e.to_version) for e in history]
    timed = [v for r in runs for v in r.get("verdicts", {}).values()]
    by_status = {
        status: sorted(v["seconds"] for v in timed if v["status"] == status)
        for status in sorted({v["status"] for v in timed})
    }
    moves = [e for e in history if e.action in MOVES]
    result = {
        "target": args.target,
        "runs": runs,
        "history": events,
        "alias_moves": len(moves),
        "moves_after_first": max(len(moves) - 1, 0),
        "verdict_seconds": by_status,
        "machine": machine_state(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "churn.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    lines = [
        "# Champion churn: the example gated again and again, nothing changed",
        "",
        f"`edgeproof run --target {args.target}` {args.runs} times in a row against one "
        f"fresh MLflow store (`benchmarks/churn.py`), machine "
        f"{result['machine'].get('cpu_model', '?')} x{result['machine'].get('cpu_count', '?')}.",
        "",
        "| run | exit | seconds | winner | timed head to head | against the champion "
        "| champion moved |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {i + 1} | {r['exit']} | {r['seconds']:.0f} | {r.get('winner') or '-'} "
            f"| {', '.join(f'{a} vs {b}' for a, b in r.get('head_to_head', [])) or '-'} "
            f"| {r.get('vs_champion', r.get('error', ''))} | {r.get('moved', '-')} |"
            for i, r in enumerate(runs)
        ),
        "",
        f"Alias history of `{registered}`: "
        + ", ".join(f"{a} {f or '-'}->{t or '-'}" for a, f, t in events),
        "",
        f"**Alias moves after the first promotion: {result['moves_after_first']}** (goal 0).",
        "",
        "Measurement seconds per verdict, over every run (worker start to verdict; goal: "
        "median <= 5 s, a clear failure <= 3 s):",
        "",
        "| verdict | n | median | max |",
        "|---|---|---|---|",
        *(
            f"| {status} | {len(secs)} | {statistics.median(secs):.1f} s | {max(secs):.1f} s |"
            for status, secs in by_status.items()
        ),
        f"| all | {len(timed)} | "
        + (f"{statistics.median(v['seconds'] for v in timed):.1f} s |" if timed else "- |")
        + (f" {max(v['seconds'] for v in timed):.1f} s |" if timed else " - |"),
        "",
    ]
    (args.out / "churn.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
