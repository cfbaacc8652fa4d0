"""Overhead benchmark: a whole ``edgeproof run`` against the work it exists to do.

For one target (default the example's onnxruntime-cpu), the *work* is building the
candidates and measuring them (``build_candidates`` + the task's harness, as the flow calls
them, without Prefect, MLflow or the data gate); the *run* is ``edgeproof run --target T``
as a user starts it (imports, params and data checks, the data gate, an ephemeral Prefect
server, MLflow tracking, the champion comparison, the report). Rounds alternate work and
run; the medians and their ratio are written to ``benchmarks/results/overhead.{md,json}``.
Goal (issue 21): run <= 1.10x work.

    .venv/bin/python benchmarks/overhead.py [--params params.yaml] [--target onnxruntime-cpu]

Never beside another benchmark: the machine has 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgeproof.measure.environment import machine_state
from edgeproof.optimize import build_candidates
from edgeproof.resolve import resolve_inputs
from edgeproof.runtime_env import apply_quiet_defaults
from edgeproof.targets.registry import make_target

ROUNDS = 3


def work_seconds(params: Path, target: str) -> float:
    """Build and measure the target's candidates in this process, as the flow does."""
    inputs = resolve_inputs(params, [target])
    with tempfile.TemporaryDirectory(prefix="edgeproof-overhead-") as scratch:
        workdir = Path(scratch)
        start = time.perf_counter()
        built = make_target(target, inputs.targets[target])
        baseline, candidates, _ = build_candidates(
            built, inputs.model, inputs.load_calibration(), workdir, lambda _m: None
        )
        job = replace(
            inputs.measure_job(target, workdir / "outputs"),
            stop_below_speedup=inputs.params.gates.latency.min_speedup,
        )
        inputs.task.measure(baseline, candidates, job, inputs.params.measure, lambda _m: None)
        return time.perf_counter() - start


def run_seconds(params: Path, target: str, tracking: Path) -> tuple[float, int, list[str]]:
    """A whole ``edgeproof run --target`` in a fresh process: (seconds, exit code, its
    progress lines, each stamped with the seconds since the run began)."""
    edgeproof = Path(sys.executable).with_name("edgeproof")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tracking}"}
    command = [str(edgeproof), "run", "--params", str(params), "--target", target, "--json"]
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=params.parent, env=env, capture_output=True, text=True, timeout=1800
    )
    took = time.perf_counter() - start
    return took, done.returncode, [x for x in done.stderr.splitlines() if _STAMP.match(x)]


_STAMP = re.compile(r"^\[ *\d+\.\d+s\] ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--target", default="onnxruntime-cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    apply_quiet_defaults()
    params = args.params.resolve()
    work: list[float] = []
    runs: list[float] = []
    codes: list[int] = []
    steps: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgeproof-overhead-store-") as store:
        for i in range(ROUNDS):
            work.append(work_seconds(params, args.target))
            # a new store each round: no champion, so the run measures what the work does
            took, code, steps = run_seconds(params, args.target, Path(store) / f"{i}.db")
            runs.append(took)
            codes.append(code)
            print(f"round {i + 1}: work {work[-1]:.1f} s, run {took:.1f} s (exit {code})")
    result: dict[str, Any] = {
        "target": args.target,
        "work_s": work,
        "run_s": runs,
        "exit_codes": codes,
        "last_run_steps": steps,
        "work_median_s": statistics.median(work),
        "run_median_s": statistics.median(runs),
        "machine": machine_state(),
    }
    result["ratio"] = result["run_median_s"] / result["work_median_s"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    lines = [
        "# Overhead: a whole `edgeproof run` vs its optimize + measure work",
        "",
        f"Target `{args.target}` of `{args.params}`, {ROUNDS} rounds alternating; machine "
        f"{result['machine'].get('cpu_model', '?')} x{result['machine'].get('cpu_count', '?')}."
        " Each run starts with an empty MLflow store (no champion to re-measure), so both "
        "sides build and measure the same candidates.",
        "",
        "| | round seconds | median |",
        "|---|---|---|",
        f"| work (build + measure, in-process) | {', '.join(f'{w:.1f}' for w in work)} "
        f"| {result['work_median_s']:.1f} s |",
        f"| `edgeproof run --target {args.target}` | {', '.join(f'{r:.1f}' for r in runs)} "
        f"| {result['run_median_s']:.1f} s |",
        "",
        f"Ratio run / work: **{result['ratio']:.2f}x** (goal <= 1.10x).",
        "",
        "Where the last run's time went (its own progress lines, seconds since it began; "
        "the process started about a second before the first line):",
        "",
        "```",
        *steps,
        "```",
        "",
    ]
    (args.out / "overhead.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
