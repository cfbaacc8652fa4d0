"""Overhead benchmark: a whole ``edgeproof run`` against the work it exists to do.

For one target (default the example's onnxruntime-cpu), the *work* is building the
candidates, measuring them and timing tied finalists head to head (``build_candidates``,
the task's harness and ``head_to_head``, as the flow calls them, without Prefect, MLflow
or the data gate); the *run* is ``edgeproof run --target T`` as a user starts it (imports,
params and data checks, the data gate, Prefect, MLflow tracking, the champion comparison,
the report), twice per round: with Prefect's temporary server (what a run does when no
``PREFECT_API_URL`` is set) and against a running ``prefect server`` on 127.0.0.1 (what a
self-hosted runner with the team's server does). Rounds alternate work and runs; the
medians and the ratios are written to ``benchmarks/results/overhead.{md,json}``.
Goal (issue 21): run <= 1.10x work.

    .venv/bin/python benchmarks/overhead.py [--params params.yaml] [--target onnxruntime-cpu]

Never beside another benchmark: the machine has 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgeproof.measure.environment import machine_state
from edgeproof.pipeline.judge import judge_task
from edgeproof.pipeline.optimize import build_candidates
from edgeproof.pipeline.resolve import resolve_inputs
from edgeproof.runtime.env import apply_quiet_defaults
from edgeproof.targets.registry import make_target

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' server helpers (tests/ is not installed)
from tests.prefect_server import PrefectServer  # noqa: E402

ROUNDS = 5
EPHEMERAL, SERVER = "ephemeral", "server"
LABELS = {
    EPHEMERAL: "Prefect's temporary server",
    SERVER: "against a running `prefect server`",
}


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
        settings = inputs.params.measure
        measured = inputs.task.measure(baseline, candidates, job, settings, lambda _m: None)
        truth = inputs.load_truth()
        outcome = judge_task(
            inputs.task, target, baseline, candidates, [], measured, truth, inputs.params
        )
        by_name = {c.name: c for c in candidates}
        for a, b in outcome.wanted_head_to_head if settings.head_to_head else ():
            inputs.task.head_to_head(by_name[a], by_name[b], job, settings, lambda _m: None)
        return time.perf_counter() - start


def empty_store(folder: Path) -> Path:
    """An MLflow sqlite store with its schema made and nothing in it: a team's store exists
    before a run, so its one-time schema migration (~1.5 s) is not the run's overhead."""
    from mlflow import MlflowClient

    path = folder / "template.db"
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    return path


def run_seconds(
    params: Path, target: str, tracking: Path, prefect_api: str | None = None
) -> tuple[float, int, list[str]]:
    """A whole ``edgeproof run --target`` in a fresh process: (seconds, exit code, its
    progress lines, each stamped with the seconds since the run began). ``prefect_api``:
    a running server's API URL (else Prefect starts its temporary one)."""
    edgeproof = Path(sys.executable).with_name("edgeproof")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tracking}"}
    env.pop("PREFECT_API_URL", None)
    if prefect_api is not None:
        env["PREFECT_API_URL"] = prefect_api
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
    runs: dict[str, list[float]] = {EPHEMERAL: [], SERVER: []}
    codes: list[int] = []
    steps: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="edgeproof-overhead-store-") as store:
        template = empty_store(Path(store))
        server = PrefectServer(Path(store) / "prefect").launch().wait_healthy()
        try:
            for i in range(ROUNDS):
                work.append(work_seconds(params, args.target))
                # a new store each run: no champion, so the run measures what the work does
                for mode, api in ((EPHEMERAL, None), (SERVER, server.api_url)):
                    db = Path(shutil.copyfile(template, Path(store) / f"{mode}-{i}.db"))
                    took, code, steps[mode] = run_seconds(params, args.target, db, api)
                    runs[mode].append(took)
                    codes.append(code)
                print(
                    f"round {i + 1}: work {work[-1]:.1f} s, run {runs[EPHEMERAL][-1]:.1f} s, "
                    f"against a server {runs[SERVER][-1]:.1f} s"
                )
        finally:
            server.stop()
    work_median = statistics.median(work)
    result: dict[str, Any] = {
        "target": args.target,
        "work_s": work,
        "run_s": runs,
        "exit_codes": codes,
        "last_run_steps": steps,
        "work_median_s": work_median,
        "run_median_s": {mode: statistics.median(r) for mode, r in runs.items()},
        "machine": machine_state(),
    }
    result["ratio"] = {mode: m / work_median for mode, m in result["run_median_s"].items()}
    # the work varies from round to round (sampling stops on precision): the run's own
    # cost beyond it is read per round, each run against the work of its own round
    result["overhead_median_s"] = {
        mode: statistics.median(r - w for r, w in zip(runs[mode], work, strict=True))
        for mode in runs
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    lines = [
        "# Overhead: a whole `edgeproof run` vs its optimize + measure work",
        "",
        f"Target `{args.target}` of `{args.params}`, {ROUNDS} rounds alternating; machine "
        f"{result['machine'].get('cpu_model', '?')} x{result['machine'].get('cpu_count', '?')}."
        " Each run starts with an empty MLflow store (no champion to re-measure; its schema "
        "made beforehand, as a team's store is), so both sides build and measure the same "
        "candidates. The data are unchanged between runs, so the data gate's verdict is "
        "Prefect's cached one (as on a runner gating pushes that do not touch the data).",
        "",
        "| | round seconds | median | ratio to the work | beyond the work (median of rounds) |",
        "|---|---|---|---|---|",
        f"| work (build, measure, head to head; in-process) | "
        f"{', '.join(f'{w:.1f}' for w in work)} | {work_median:.1f} s | | |",
        *(
            f"| `edgeproof run --target {args.target}`, {LABELS[mode]} | "
            f"{', '.join(f'{r:.1f}' for r in runs[mode])} | "
            f"{result['run_median_s'][mode]:.1f} s | **{result['ratio'][mode]:.2f}x** | "
            f"{result['overhead_median_s'][mode]:.1f} s |"
            for mode in (EPHEMERAL, SERVER)
        ),
        "",
        "Goal: <= 1.10x. Exit codes: " + ", ".join(str(c) for c in codes) + ".",
        "",
        "Where the last runs' time went (their own progress lines, seconds since each began; "
        "the process started about a second before its first line):",
        "",
        *(
            line
            for mode in (EPHEMERAL, SERVER)
            for line in (f"{LABELS[mode]}:", "", "```", *steps[mode], "```", "")
        ),
    ]
    (args.out / "overhead.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
