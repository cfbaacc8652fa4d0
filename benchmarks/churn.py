"""Champion churn: the example gated N times with nothing changed; how often `champion` moves.

Runs ``edgeproof run --target T --json`` ``--runs`` times against one fresh MLflow store
(sqlite, in a temporary folder), one after the other, then reads the registered model's
alias history. Goal (issue 21): no alias move after the first run's promotion. Writes
``benchmarks/results/churn.{md,json}`` with each run's winner, its comparison with the
champion and the history's actions.

    .venv/bin/python benchmarks/churn.py [--runs 10] [--target onnxruntime-cpu]

Never beside another benchmark: the machine has 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeproof.config import TrackingConfig
from edgeproof.measure.environment import machine_state
from edgeproof.params import load_params
from edgeproof.tracking.audit import MOVES, read_history
from edgeproof.tracking.mlflow_store import MlflowStore


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
    return {
        "exit": done.returncode,
        "seconds": took,
        "winner": outcome.get("winner"),
        "vs_champion": versus.get("status", "no champion yet"),
        "moved": any(p["moved"] for p in verdict.get("promotions", [])),
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
    moves = [e for e in history if e.action in MOVES]
    result = {
        "target": args.target,
        "runs": runs,
        "history": events,
        "alias_moves": len(moves),
        "moves_after_first": max(len(moves) - 1, 0),
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
        "| run | exit | seconds | winner | against the champion | champion moved |",
        "|---|---|---|---|---|---|",
        *(
            f"| {i + 1} | {r['exit']} | {r['seconds']:.0f} | {r.get('winner') or '-'} "
            f"| {r.get('vs_champion', r.get('error', ''))} | {r.get('moved', '-')} |"
            for i, r in enumerate(runs)
        ),
        "",
        f"Alias history of `{registered}`: "
        + ", ".join(f"{a} {f or '-'}->{t or '-'}" for a, f, t in events),
        "",
        f"**Alias moves after the first promotion: {result['moves_after_first']}** (goal 0).",
        "",
    ]
    (args.out / "churn.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
