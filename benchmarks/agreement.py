"""Agreement benchmark: edgeproof's paired speedups beside the runtimes' own tools.

On the same model files, the speedup (baseline latency / candidate latency) that edgeproof's
harness measures (fresh worker processes, warm-up, interleaved blocks, the idle worker
paused, runtime defaults) is set beside what each runtime's own tool measures:

- onnxruntime-cpu: a plain ``InferenceSession`` loop with ONNX Runtime's defaults (spinning
  on), both sessions in one process, blocks of 50 runs alternating; the median of the
  block pairs' ratios;
- openvino-cpu: OpenVINO's Python API at its leanest (inputs set once, a bare ``infer()``
  per run, blocks alternating as above), and OpenVINO's ``benchmark_app`` (sync API, one
  stream, the target's threads,
  hint none, batch 1; precision as the target compiles: f32 for the baseline, OpenVINO's
  default for int8), 5-second runs in
  A B B A order, the median of the adjacent pairs' ratios;
- tflite-cpu: LiteRT's Python API at its leanest (inputs set once, a bare ``invoke()``),
  and ``litert-benchmark`` (the LiteRT wheel's tool, CPU, the target's threads), runs
  paired likewise, when the tool can run here.

Where a target has both a C++ tool and a Python loop, the per-call medians of the C++
loop, the bare Python loop and the harness are set side by side (``per_call_costs``).

Goal: the tool's ratio inside edgeproof's CI or within 5% of its point. Run it in the
repository (the example's params.yaml, after ``make data`` / ``dvc repro``):

    .venv/bin/python benchmarks/agreement.py [--params params.yaml] [--out benchmarks/results]

Never beside another benchmark: the machine has 2 cores.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.gates.stats import speedup_ci
from edgeproof.measure.environment import machine_state
from edgeproof.measure.harness import measure_target
from edgeproof.pipeline.resolve import ResolvedInputs, resolve_inputs
from edgeproof.records import Candidate
from edgeproof.runtime.env import apply_quiet_defaults
from edgeproof.targets.registry import make_target

RECIPES = {  # the recipe each target is checked on: its int8 recipe of the example
    "onnxruntime-cpu": "static-qdq-minmax",
    "openvino-cpu": "nncf-int8",
    "tflite-cpu": "full-int8",
}
TOOL_ROUNDS = 8  # rounds of the runtime's tool, each one run per model


def build(inputs: ResolvedInputs, target: str, work: Path) -> tuple[Candidate, Candidate]:
    """The target's baseline and its int8 candidate, built as the pipeline builds them."""
    built = make_target(target, inputs.targets[target])
    calibration = inputs.load_calibration()
    base = built.baseline(inputs.model, work, calibration)
    return base, built.optimize(RECIPES[target], base, calibration, work)


def edgeproof_speedup(
    inputs: ResolvedInputs, target: str, base: Candidate, cand: Candidate, work: Path
) -> dict[str, Any]:
    """The harness's paired speedup with its CI (the gate's numbers)."""
    measure = inputs.params.measure
    got = measure_target(base, [cand], inputs.measure_job(target, work / "outputs"), measure)
    raw = got.raw[cand.name]
    est = speedup_ci(
        raw.paired_baseline_ms, raw.latency_ms, raw.block_size, measure.confidence, 2000, 0
    )
    return {
        "speedup": est.value,
        "low": est.low,
        "high": est.high,
        "base_ms": float(np.median(raw.paired_baseline_ms)),
        "cand_ms": float(np.median(raw.latency_ms)),
        "samples": len(raw.latency_ms),
        "stopped": raw.environment["stopped"],
    }


def _alternating_loop(calls: tuple[Any, Any], tool: str) -> dict[str, Any]:
    """Two zero-argument calls (baseline, candidate) in one process: 200 warm-up runs each,
    then 40 blocks of 50 runs alternating; the median of the block pairs' ratios."""
    times: list[list[float]] = [[], []]
    for call in calls:
        for _ in range(200):
            call()
    for block in range(40):
        for i in (0, 1) if block % 2 == 0 else (1, 0):
            for _ in range(50):
                t0 = time.perf_counter()
                calls[i]()
                times[i].append((time.perf_counter() - t0) * 1e3)
    b, c = (float(np.median(t)) for t in times)
    pairs = [
        float(np.median(times[0][i : i + 50]) / np.median(times[1][i : i + 50]))
        for i in range(0, len(times[0]), 50)
    ]
    return {"tool": tool, "base_ms": b, "cand_ms": c, "speedup": float(np.median(pairs))}


def ort_loop(inputs: ResolvedInputs, base: Candidate, cand: Candidate) -> dict[str, Any]:
    """A plain onnxruntime loop with the runtime's defaults; blocks alternate."""
    import onnxruntime as ort

    threads = inputs.targets["onnxruntime-cpu"].threads
    feed = inputs.load_eval().batch(0, 1)
    calls = []
    for c in (base, cand):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(c.model_file), options)
        calls.append(lambda s=session: s.run(None, feed))
    return _alternating_loop((calls[0], calls[1]), "onnxruntime InferenceSession loop (defaults)")


def bare_loop(inputs: ResolvedInputs, target: str, pair: tuple[Candidate, Candidate]) -> Any:
    """The runtime's Python API at its leanest, for each of ``pair``: the target's session
    runs once (setting, for LiteRT quantizing, the inputs), then each call is the runtime's
    bare inference (OpenVINO ``infer()``, LiteRT ``invoke()``) on those inputs: what the C++
    tools do, plus the binding's per-call cost."""
    built = make_target(target, inputs.targets[target])
    threads = inputs.targets[target].threads
    feed = inputs.load_eval().batch(0, 1)
    calls = []
    for c in pair:
        session = built.open_session(c, threads)
        session.run(feed)
        runtime = getattr(session, "_request", None) or session._interpreter
        calls.append(runtime.infer if target == "openvino-cpu" else runtime.invoke)
    return calls[0], calls[1]


def openvino_loop(inputs: ResolvedInputs, base: Candidate, cand: Candidate) -> dict[str, Any]:
    """OpenVINO's bare ``infer()`` from Python, compiled as the target compiles."""
    calls = bare_loop(inputs, "openvino-cpu", (base, cand))
    return _alternating_loop(calls, "openvino Python loop, bare infer()")


def _alternate(run_one: Any, base: Path, cand: Path) -> dict[str, float]:
    """Tool runs in A B B A order per round; the ratio of each round's adjacent pair (drift
    between rounds cancels, as in edgeproof's blocks), the median over rounds."""
    got: dict[str, list[float]] = {"base": [], "cand": []}
    for i in range(TOOL_ROUNDS):
        order = (("base", base), ("cand", cand))
        for key, model in order if i % 2 == 0 else order[::-1]:
            got[key].append(run_one(model))
    ratios = [b / c for b, c in zip(got["base"], got["cand"], strict=True)]
    return {
        "base_ms": statistics.median(got["base"]),
        "cand_ms": statistics.median(got["cand"]),
        "speedup": statistics.median(ratios),
        "round_speedups": ratios,
        "rounds": TOOL_ROUNDS,
    }


def benchmark_app(inputs: ResolvedInputs, base: Candidate, cand: Candidate) -> dict[str, Any]:
    """OpenVINO's benchmark_app, sync, one stream, the target's threads, batch 1."""
    threads = inputs.targets["openvino-cpu"].threads
    tool = Path(sys.executable).with_name("benchmark_app")

    def once(model: Path) -> float:
        command = [str(tool), "-m", str(model), "-d", "CPU", "-api", "sync", "-nstreams", "1"]
        command += ["-nthreads", str(threads), "-hint", "none", "-b", "1", "-t", "5"]
        if model == base.model_file:  # as the target compiles: the fp32 baseline with an
            command += ["-infer_precision", "f32"]  # f32 hint, int8 with OpenVINO's default
        out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
        found = re.search(r"Median:\s+([0-9.]+)\s*(ms|us)", out.stdout)
        if found is None:
            raise RuntimeError(f"no median latency in benchmark_app output: {out.stdout[-500:]}")
        return float(found.group(1)) / (1000.0 if found.group(2) == "us" else 1.0)

    row = _alternate(once, base.model_file, cand.model_file)
    return {"tool": "benchmark_app -api sync -nstreams 1 -hint none", **row}


def litert_benchmark(inputs: ResolvedInputs, base: Candidate, cand: Candidate) -> dict[str, Any]:
    """The LiteRT wheel's ``litert-benchmark`` on the CPU, the target's threads."""
    threads = inputs.targets["tflite-cpu"].threads
    tool = Path(sys.executable).with_name("litert-benchmark")

    def once(model: Path) -> float:
        with tempfile.TemporaryDirectory() as scratch:
            result = Path(scratch) / "result.json"
            command = [str(tool), "--model", str(model), "--num_runs", "2000"]
            command += ["--warmup_runs", "200", "--num_threads", str(threads)]
            command += ["--result_json", str(result)]
            subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
            found = json.loads(result.read_text())
        return _latency_ms(found)

    row = _alternate(once, base.model_file, cand.model_file)
    return {"tool": "litert-benchmark --use_cpu", **row}


def _latency_ms(found: dict[str, Any]) -> float:
    """The median (else average) per-run latency in a litert-benchmark result, in ms."""
    flat = json.dumps(found)
    for key in ("median_ms", "latency_median_ms", "avg_ms", "latency_avg_ms", "mean_ms"):
        hit = re.search(rf'"{key}":\s*([0-9.eE+-]+)', flat)
        if hit:
            return float(hit.group(1))
    raise RuntimeError(f"no latency in litert-benchmark result: {flat[:500]}")


def litert_loop(inputs: ResolvedInputs, base: Candidate, cand: Candidate) -> dict[str, Any]:
    """LiteRT's bare ``invoke()`` from Python, on the inputs the session set."""
    calls = bare_loop(inputs, "tflite-cpu", (base, cand))
    return _alternating_loop(calls, "litert Python loop, bare invoke()")


TOOLS = {
    "onnxruntime-cpu": (ort_loop,),
    "openvino-cpu": (benchmark_app, openvino_loop),
    "tflite-cpu": (litert_benchmark, litert_loop),
}


def compare(inputs: ResolvedInputs, target: str, scratch: Path) -> list[dict[str, Any]]:
    """One row per tool of ``target``, each beside the same harness measurement."""
    work = scratch / target
    base, cand = build(inputs, target, work)
    ours = edgeproof_speedup(inputs, target, base, cand, work)
    rows = []
    for run_tool in TOOLS[target]:
        row: dict[str, Any] = {"target": target, "candidate": cand.name, "edgeproof": ours}
        rows.append(row)
        try:
            tool = run_tool(inputs, base, cand)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or ""
            row["tool_error"] = f"{type(exc).__name__}: {exc} {detail[-300:]}".strip()
            continue
        ratio = tool["speedup"]
        row["tool"] = tool
        row["difference"] = ratio / ours["speedup"] - 1.0
        row["inside_ci"] = ours["low"] <= ratio <= ours["high"]
        row["agrees"] = row["inside_ci"] or abs(row["difference"]) <= 0.05
    return rows


def per_call_costs(rows: list[dict[str, Any]]) -> list[str]:
    """Where a target has a C++ tool and a bare Python loop of the same runtime: the
    medians of the three ways of timing (C++ loop, Python loop with inputs set once, the
    harness's ``timed_run``: the runtime's own call on inputs prepared once), so the
    per-call costs that compress a sub-millisecond ratio toward 1 can be read off."""
    lines = []
    for target in dict.fromkeys(r["target"] for r in rows):
        timed = [r for r in rows if r["target"] == target and "tool" in r]
        python = [r["tool"] for r in timed if "Python loop" in r["tool"]["tool"]]
        native = [r["tool"] for r in timed if "Python loop" not in r["tool"]["tool"]]
        if not (python and native):
            continue
        ours = timed[0]["edgeproof"]
        lines += [
            f"| {target} | {w['tool']} | {w['base_ms']:.3f} | {w['cand_ms']:.3f} "
            f"| {w['base_ms'] / w['cand_ms']:.2f}x |"
            for w in (native[0], python[0])
        ]
        lines.append(
            f"| {target} | edgeproof's harness (`timed_run`) | {ours['base_ms']:.3f} "
            f"| {ours['cand_ms']:.3f} | {ours['speedup']:.2f}x |"
        )
    if not lines:
        return []
    return [
        "Per call, medians in ms (each side in its own window: drift between them is not "
        "cancelled here, only in the ratios above):",
        "",
        "| target | how | baseline | candidate | ratio of medians |",
        "|---|---|---|---|---|",
        *lines,
        "",
        "A cost added to every call, whatever the model, compresses a sub-millisecond "
        "speedup toward 1. The harness times each runtime's own inference call as its tool "
        "does (`TimedSession.timed_run`): OpenVINO's `InferRequest.latency` (the C++ "
        "`infer`), LiteRT's `invoke()` on inputs converted once (a full-int8 model's "
        "quantization is the caller's), ONNX Runtime's `run` (its plain loop is the tool). "
        "The bare Python loops time the whole Python call, the binding's own cost included: "
        "they show where the per-call cost sits; the runtimes' tools are the C++ loops and, "
        "for ONNX Runtime, its plain Python loop.",
    ]


def markdown(rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    lines = [
        "# Agreement: edgeproof's paired speedups vs the runtimes' own tools",
        "",
        f"Machine: {machine.get('cpu_model', '?')} x{machine.get('cpu_count', '?')}; "
        "same model files, runtime defaults, one benchmark at a time.",
        "",
        "| target | candidate | edgeproof speedup [99% CI] | tool | tool speedup "
        "| difference | agrees |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        e = r["edgeproof"]
        ours = f"{e['speedup']:.3f}x [{e['low']:.3f}, {e['high']:.3f}]"
        if "tool" not in r:
            lines.append(
                f"| {r['target']} | {r['candidate']} | {ours} | not run: "
                f"{r['tool_error'][:120]} | | | |"
            )
            continue
        t = r["tool"]
        lines.append(
            f"| {r['target']} | {r['candidate']} | {ours} | {t['tool']} "
            f"({t['base_ms']:.3f} / {t['cand_ms']:.3f} ms) | {t['speedup']:.3f}x "
            f"| {r['difference']:+.1%} | {'yes' if r['agrees'] else '**no**'} |"
        )
    lines += [
        "",
        "Agrees: the tool's ratio lies inside edgeproof's CI, or within 5% of its point.",
        "",
        *per_call_costs(rows),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--targets", nargs="*", default=list(RECIPES))
    parser.add_argument(
        "--render", action="store_true", help="rewrite agreement.md from agreement.json only"
    )
    args = parser.parse_args()
    if args.render:
        saved = json.loads((args.out / "agreement.json").read_text())
        (args.out / "agreement.md").write_text(markdown(saved["rows"], saved["machine"]))
        return 0
    apply_quiet_defaults()
    inputs = resolve_inputs(args.params, args.targets)
    scratch = Path(tempfile.mkdtemp(prefix="edgeproof-agreement-"))
    try:
        rows = [row for target in args.targets for row in compare(inputs, target, scratch)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    machine = machine_state()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "agreement.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2, default=str) + "\n"
    )
    text = markdown(rows, machine)
    (args.out / "agreement.md").write_text(text)
    print(text)
    return 0 if all(r.get("agrees", False) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
