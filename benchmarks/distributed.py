"""Distributed benchmark: wall time of one gate over two targets, serial vs two workers.

    .venv/bin/python benchmarks/distributed.py [--project .] [--params params.yaml]
        [--targets onnxruntime-cpu openvino-cpu] [--repeats 1] [--out benchmarks/results]
    .venv/bin/python benchmarks/distributed.py --example --quick   # smoke: tiny, minutes

A real ``prefect server``, three process workers (the control pool and one pool per
target, as on two devices) and a real ``mlflow server`` (sqlite) are started here and
stopped at the end. Modes, each run on the same project and params:

- ``cli``: ``edgeproof run`` (Prefect's temporary server, targets in-process, one after
  the other): what a CI job does today;
- ``serial``: ``prefect deployment run 'quality-gate/default' --param dispatch=local``:
  the same server and workers, targets in-process on the control worker, one after the other;
- ``distributed``: the same deployment with ``dispatch=deployments``: each target on its
  own pool, at the same time.

Wall time is from the command's start to its exit (``--watch``), server and workers already
up. Every run logs under its own model name (a fresh experiment and registered model), so
no run re-measures a champion that an earlier run promoted. On one machine the two
distributed targets share the CPU: their latency figures are not gate-quality numbers,
only the wall time is the result. Writes ``<name>.json`` and ``<name>.md`` (``--name``,
default ``distributed``); ``--threads 1`` gives each target one of two cores, as if each
pool were its own one-core device.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' server helpers (tests/ is not installed)

from edgeproof.measure.environment import machine_state  # noqa: E402
from tests.helpers import build_example_project, tool_env  # noqa: E402
from tests.mlflow_server import MlflowServer  # noqa: E402
from tests.prefect_server import PrefectServer, stop_all  # noqa: E402

CONTROL = "edgeproof-control"
MODES = ("cli", "serial", "distributed")
QUICK_RECIPES = {"onnxruntime-cpu": "static-qdq-minmax", "openvino-cpu": "bf16"}
QUICK_MEASURE = {"warmup_runs": 5, "min_samples": 64, "max_samples": 128, "max_seconds": 4}


def pool_of(target: str) -> str:
    return f"bench-{target}"


def bench_params(
    project: Path, params: Path, targets: list[str], quick: bool, threads: int | None = None
) -> dict:
    """The project's params with each target on its own benchmark pool (others dropped);
    ``threads`` per target when given (1 on a 2-core machine: a core per "device")."""
    raw = yaml.safe_load((project / params).read_text())
    raw["targets"] = {t: raw["targets"][t] for t in targets}
    for target, section in raw["targets"].items():
        section["work_pool"] = pool_of(target)
        if threads is not None:
            section["threads"] = threads
        if quick and target in QUICK_RECIPES:
            section["recipes"] = [
                r for r in section["recipes"] if r["name"] == QUICK_RECIPES[target]
            ]
    if quick:
        raw["measure"].update(QUICK_MEASURE)
        raw["gates"]["on_inconclusive"] = "warn"
    return raw


def write_run_params(project: Path, base: dict, mode: str, rep: int) -> Path:
    """A params file for one run: its own model name, so its own experiment and registry."""
    raw = json.loads(json.dumps(base))
    raw["model"]["name"] = f"{base['model']['name']}-bench-{mode}-{rep}"
    path = project / f"params-bench-{mode}-{rep}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def prefect_file(dest: Path, targets: list[str]) -> Path:
    """prefect.yaml with the quality gate and one gate-target deployment per target."""
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    kept = []
    for d in spec["deployments"]:
        entry = d["entrypoint"]
        if entry.endswith(":quality_gate"):
            kept.append(d)
        elif entry.endswith(":gate_target") and d["parameters"]["target"] in targets:
            d["work_pool"]["name"] = pool_of(d["parameters"]["target"])
            kept.append(d)
    spec["deployments"] = kept
    dest.write_text(yaml.safe_dump(spec, sort_keys=False))
    return dest


def start_cluster(folder: Path, targets: list[str], mlflow_uri: str) -> PrefectServer:
    """Server, pools, device limits, deployments and one worker per pool, all up."""
    prefect = PrefectServer(folder / "prefect").launch().wait_healthy()
    pools = [pool_of(t) for t in targets]
    for pool in (CONTROL, *pools):
        prefect.cli("work-pool", "create", pool, "--type", "process", cwd=folder)
    for pool in pools:
        prefect.cli("concurrency-limit", "create", f"edgeproof-device:{pool}", "1", cwd=folder)
    spec = prefect_file(folder / "prefect.yaml", targets)
    prefect.cli("deploy", "--all", "--no-prompt", "--prefect-file", str(spec), cwd=ROOT)
    env = {"EDGEPROOF_CHECKOUT": str(ROOT), "MLFLOW_TRACKING_URI": mlflow_uri}
    for pool in (CONTROL, *pools):
        prefect.start_worker(pool, cwd=folder, **env)
    prefect.wait_online(prefect.workers)
    return prefect


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    """(wall seconds, exit code, output) of one command."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=7200)
    return time.perf_counter() - start, done.returncode, done.stdout + done.stderr


def one_run(
    mode: str, params: Path, project: Path, targets: list[str], prefect: PrefectServer, mlflow: str
) -> dict[str, Any]:
    if mode == "cli":
        command = ["edgeproof", "run", "--params", str(params)]
        command += [arg for t in targets for arg in ("--target", t)]
        env = {**tool_env(project), "MLFLOW_TRACKING_URI": mlflow}
    else:
        parameters = {
            "params_file": str(params),
            "targets": targets,
            "dispatch": "local" if mode == "serial" else "deployments",
        }
        command = ["prefect", "deployment", "run", "quality-gate/default", "--watch"]
        command += ["--watch-interval", "1", "--params", json.dumps(parameters)]
        env = prefect.env()
    seconds, rc, output = timed(command, project, env)
    model = yaml.safe_load(params.read_text())["model"]["name"]
    result = {"mode": mode, "wall_s": round(seconds, 2), "exit_code": rc, "status": None}
    for path in (project / "reports").glob("*/verdict.json"):
        verdict = json.loads(path.read_text())
        if verdict["run"]["model"] == model:
            result["status"] = verdict["status"]
    if mode != "cli":
        result["flow_runs"] = flow_runs(prefect, output)
    if rc not in (0, 1):
        result["output_tail"] = output[-2000:]
    return result


def flow_runs(prefect: PrefectServer, output: str) -> list[dict[str, Any]]:
    """Name, pool and seconds of the deployment run (from its printed UUID) and of the
    gate-target runs it started."""
    found = re.search(r"UUID:\s*([0-9a-f-]{36})", output)
    if found is None:
        return []
    with prefect.client() as client:
        parent = client.read_flow_run(found.group(1))
        runs = [parent]
        for child in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                start_time=FlowRunFilterStartTime(after_=parent.start_time)
            )
        ):
            task_run = (
                client.read_task_run(child.parent_task_run_id) if child.parent_task_run_id else None
            )
            if task_run is not None and task_run.flow_run_id == parent.id:
                runs.append(child)
    return [
        {
            "name": run.name,
            "target": run.parameters.get("target"),
            "pool": run.work_pool_name,
            "state": run.state_name,
            "seconds": round(run.total_run_time.total_seconds(), 2),
        }
        for run in runs
    ]


def markdown(result: dict[str, Any]) -> str:
    rows = [
        "| mode | runs | wall s (median) | wall s (each) | exit codes |",
        "|---|---|---|---|---|",
    ]
    for mode, s in result["summary"].items():
        each = ", ".join(f"{w:.1f}" for w in s["wall_s"])
        rows.append(
            f"| {mode} | {len(s['wall_s'])} | {s['median_s']:.1f} | {each} | {s['exit_codes']} |"
        )
    ratio = result.get("distributed_over_serial")
    machine = result["machine"]
    lines = [
        "# Distributed gate: serial vs two workers",
        "",
        f"Targets: {', '.join(result['targets'])}; quick settings: {result['quick']}; "
        f"threads per target: {result.get('threads') or 'as in params'}; "
        f"machine: {machine.get('cpu_count', '?')} CPUs, load {machine.get('loadavg_1m', '?')}.",
        "",
        *rows,
        "",
    ]
    if ratio is not None:
        lines.append(f"distributed / serial wall time (medians): **{ratio:.2f}x** (goal <= 0.6x).")
        lines.append("")
    for run in result["runs"]:
        parts = [
            f"{r['target'] or 'quality-gate'} on {r['pool']} {r['seconds']:.1f} s ({r['state']})"
            for r in run.get("flow_runs", [])
        ]
        if parts:
            lines.append(f"- {run['mode']}: " + "; ".join(parts))
    lines.append("")
    lines.append(
        "Both distributed targets ran on this one machine at once: only wall time is a "
        "result here, their latency figures are not (a real setup has a device per pool)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--example", action="store_true", help="Build a small example here.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--targets", nargs="+", default=["onnxruntime-cpu", "openvino-cpu"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="One recipe, tiny measurement.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--threads", type=int, default=None, help="Threads per target (1: a core per device)."
    )
    parser.add_argument("--name", default="distributed", help="Result file name (no suffix).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="edgeproof-bench-dist-") as tmp:
        folder = Path(tmp)
        project = build_example_project(folder / "project") if args.example else args.project
        project = project.resolve()
        base = bench_params(project, args.params, args.targets, args.quick, args.threads)
        mlflow = MlflowServer(folder / "mlflow")
        prefect: PrefectServer | None = None
        runs: list[dict[str, Any]] = []
        written: list[Path] = []
        try:
            mlflow.start()
            prefect = start_cluster(folder, args.targets, mlflow.uri)
            for rep in range(args.repeats):
                for mode in args.modes:
                    params = write_run_params(project, base, mode, rep)
                    written.append(params)
                    runs.append(one_run(mode, params, project, args.targets, prefect, mlflow.uri))
                    print(json.dumps(runs[-1]), flush=True)
        finally:
            mlflow.stop()
            left = stop_all(prefect.processes()) if prefect else []
            for path in written:
                path.unlink(missing_ok=True)
        if left:
            raise SystemExit(f"processes still running: {left}")

    summary = {}
    for mode in args.modes:
        mine = [r for r in runs if r["mode"] == mode]
        walls = [r["wall_s"] for r in mine]
        summary[mode] = {
            "wall_s": walls,
            "median_s": statistics.median(walls),
            "exit_codes": sorted({r["exit_code"] for r in mine}),
        }
    result: dict[str, Any] = {
        "targets": args.targets,
        "quick": args.quick,
        "threads": args.threads,
        "repeats": args.repeats,
        "machine": machine_state(),
        "runs": runs,
        "summary": summary,
    }
    if "serial" in summary and "distributed" in summary:
        ratio = summary["distributed"]["median_s"] / summary["serial"]["median_s"]
        result["distributed_over_serial"] = round(ratio, 3)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(result))
    sys.stdout.write(markdown(result))


if __name__ == "__main__":
    main()
