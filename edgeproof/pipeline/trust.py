"""The trust benchmark: the speed gate's own error rates, measured on this machine.

A/A: the baseline measured against an identical copy of itself; slowdowns: the same model
with an extra, input-dependent convolution branch whose cost is calibrated to make it
genuinely ~5%, ~10% and ~20% slower (real extra work inside ``session.run``, not a sleep
around the timer). Each repetition runs the gate's own protocol (fresh worker processes,
warm-up, interleaved blocks, early stopping at the target CI half-width) and decides a
regression gate ``speedup >= min_speedup``. Reported: pass / fail / inconclusive rates per
variant with Wilson CIs, the reference slowdown of each variant, and seconds per verdict.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import MeasureConfig, TargetCommon
from edgeproof.data.dataset import load_dataset
from edgeproof.gates.stats import proportion_ci, speedup_ci
from edgeproof.measure.harness import measure_target
from edgeproof.records import Candidate
from edgeproof.records.measurement import MeasureJob
from edgeproof.targets.registry import measure_job


def add_slow_branch(src: Path, dst: Path, channels: int, layers: int = 2) -> Path:
    """Copy of ``src`` plus Conv(1->channels) and ``layers-1`` Conv(channels->channels) on the
    input, reduced and added to the logits times zero: same outputs, real extra compute."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inp, out = graph.input[0].name, graph.output[0].name
    rng = np.random.default_rng(0)
    prev, cin = inp, graph.input[0].type.tensor_type.shape.dim[1].dim_value or 1
    for i in range(layers):
        w = rng.normal(0, 0.1, (channels, cin, 3, 3)).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(w, f"slow_w{i}"))
        graph.node.append(
            helper.make_node("Conv", [prev, f"slow_w{i}"], [f"slow_c{i}"], pads=[1, 1, 1, 1])
        )
        prev, cin = f"slow_c{i}", channels
    graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), "slow_zero"))
    renamed = out + "_before_slow"
    for node in graph.node:
        node.output[:] = [renamed if o == out else o for o in node.output]
    graph.node.extend([
        helper.make_node("ReduceSum", [prev, "slow_raxes"], ["slow_sum"], keepdims=0),
        helper.make_node("Mul", ["slow_sum", "slow_zero"], ["slow_zeroed"]),
        helper.make_node("Unsqueeze", ["slow_zeroed", "slow_axes"], ["slow_col"]),
        helper.make_node("Add", [renamed, "slow_col"], [out]),
    ])  # fmt: skip
    graph.initializer.append(helper.make_tensor("slow_axes", TensorProto.INT64, [1], [1]))
    graph.initializer.append(helper.make_tensor("slow_raxes", TensorProto.INT64, [3], [1, 2, 3]))
    onnx.checker.check_model(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst


def _candidate(baseline: Candidate, name: str, path: Path) -> Candidate:
    return baseline.model_copy(
        update={"name": name, "files": (path,), "is_baseline": False, "recipe": {"trust": name}}
    )


def measure_pair(
    baseline: Candidate, candidate: Candidate, job: MeasureJob, measure: MeasureConfig
) -> tuple[Any, float]:
    """(speedup estimate, wall seconds) of one candidate against the baseline."""
    start = time.perf_counter()
    got = measure_target(baseline, [candidate], job, measure)
    if candidate.name not in got.raw:
        raise RuntimeError(got.errors.get(candidate.name, "not measured"))
    raw = got.raw[candidate.name]
    est = speedup_ci(
        raw.paired_baseline_ms,
        raw.latency_ms,
        raw.block_size,
        measure.confidence,
        measure.bootstrap_resamples,
        measure.seed,
    )
    return est, time.perf_counter() - start


def calibrate_channels(
    baseline: Candidate,
    job: MeasureJob,
    measure: MeasureConfig,
    target_slowdown: float,
    workdir: Path,
    log: Callable[[str], None],
) -> tuple[int, float]:
    """Channels of the slow branch giving about ``target_slowdown`` (bisection)."""
    lo, hi, best = 1, 96, (1, 0.0)
    for _ in range(6):
        mid = (lo + hi) // 2
        path = add_slow_branch(baseline.model_file, workdir / f"cal-{mid}.onnx", mid)
        est, _ = measure_pair(baseline, _candidate(baseline, f"cal-{mid}", path), job, measure)
        slowdown = 1.0 / est.value - 1.0
        log(f"calibrate {target_slowdown:.0%}: channels {mid} -> slowdown {slowdown:.1%}")
        if abs(slowdown - target_slowdown) < abs(best[1] - target_slowdown):
            best = (mid, slowdown)
        if slowdown < target_slowdown:
            lo = mid + 1
        else:
            hi = mid - 1
        if lo > hi:
            break
    return best


def verdict(est: Any, min_speedup: float) -> str:
    if est.low >= min_speedup:
        return "pass"
    if est.high < min_speedup:
        return "fail"
    return "inconclusive"


def run_trust(
    baseline: Candidate,
    eval_data: Path,
    section: TargetCommon,
    measure: MeasureConfig,
    workdir: Path,
    reps: dict[str, int],
    min_speedup: float,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Calibrate the slowed variants, then repeat the gate on each; returns the results."""
    small = load_dataset(eval_data)
    data = workdir / "eval-small.npz"
    np.savez(data, **{k: v[:64] for k, v in small.inputs.items()})
    job = measure_job("onnxruntime-cpu", section, data, "labels", workdir / "out")
    variants: dict[str, Candidate] = {}
    twin = workdir / "aa.onnx"
    shutil.copy(baseline.model_file, twin)
    variants["A/A (identical)"] = _candidate(baseline, "aa", twin)
    calibration = {}
    for pct in (5, 10, 20):
        channels, seen = calibrate_channels(baseline, job, measure, pct / 100, workdir, log)
        path = add_slow_branch(baseline.model_file, workdir / f"slow{pct}.onnx", channels)
        variants[f"{pct}% slower"] = _candidate(baseline, f"slow{pct}", path)
        calibration[f"{pct}% slower"] = {"channels": channels, "calibration_slowdown": seen}
    results: dict[str, Any] = {}
    for label, cand in variants.items():
        n = reps.get(label, reps["default"])
        statuses, seconds, speedups = [], [], []
        for i in range(n):
            est, secs = measure_pair(
                baseline, cand, job, measure.model_copy(update={"seed": measure.seed + i})
            )
            statuses.append(verdict(est, min_speedup))
            seconds.append(secs)
            speedups.append(est.value)
        results[label] = _rates(statuses, seconds, speedups, measure.confidence)
        results[label].update(calibration.get(label, {}))
        log(f"{label}: {results[label]['counts']}")
    return {"variants": results, "min_speedup": min_speedup}


def _rates(
    statuses: list[str], seconds: list[float], speedups: list[float], confidence: float
) -> dict[str, Any]:
    arr = np.asarray(statuses)
    out: dict[str, Any] = {"n": len(arr), "counts": {}, "rates": {}}
    for status in ("pass", "fail", "inconclusive"):
        est = proportion_ci(arr == status, confidence)
        out["counts"][status] = int((arr == status).sum())
        out["rates"][status] = {"value": est.value, "low": est.low, "high": est.high}
    out["median_speedup"] = float(np.median(speedups))
    out["true_slowdown_estimate"] = float(1.0 / np.median(speedups) - 1.0)
    out["seconds_per_verdict"] = {
        "median": float(np.median(seconds)),
        "p90": float(np.quantile(seconds, 0.9)),
    }
    return out


def trust_markdown(result: dict[str, Any], machine: dict[str, Any]) -> str:
    """The results as a markdown table."""
    lines = [
        f"# Trust benchmark: speed gate `speedup >= {result['min_speedup']}`",
        "",
        f"Machine: {machine.get('cpu_model')} x{machine.get('cpu_count')}, "
        f"flags {', '.join(machine.get('cpu_flags', []))}; {machine.get('platform')}",
        "",
        "| variant | n | measured slowdown | pass | fail | inconclusive "
        "| s / verdict (median, p90) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in result["variants"].items():

        def rate(k: str, r: dict = r) -> str:
            x = r["rates"][k]
            return f"{r['counts'][k]} ({x['value']:.1%} [{x['low']:.1%}, {x['high']:.1%}])"

        spv = r["seconds_per_verdict"]
        lines.append(
            f"| {label} | {r['n']} | {r['true_slowdown_estimate']:+.1%} | {rate('pass')} | "
            f"{rate('fail')} | {rate('inconclusive')} | {spv['median']:.1f}, {spv['p90']:.1f} |"
        )
    return "\n".join(lines) + "\n"


TRUST_TARGET = "onnxruntime-cpu"  # the trust check times the project's model on ONNX Runtime


def trust_project(
    params: Path, reps: int, min_speedup: float, log: Callable[[str], None]
) -> dict[str, Any]:
    """The speed gate's error rates on this machine for the project at ``params``: its model
    on ONNX Runtime against itself (A/A) and against copies made slower; with the machine
    and the measurement settings it ran under."""
    import tempfile

    from edgeproof.measure.environment import machine_state
    from edgeproof.pipeline.resolve import resolve_inputs
    from edgeproof.targets.registry import make_target

    inputs = resolve_inputs(params, [TRUST_TARGET])
    section = inputs.targets[TRUST_TARGET]
    with tempfile.TemporaryDirectory(prefix="edgeproof-trust-") as tmp:
        work = Path(tmp)
        baseline = make_target(TRUST_TARGET, section).baseline(inputs.model, work)
        result = run_trust(
            baseline,
            inputs.eval_data,
            section,
            inputs.params.measure,
            work,
            {"default": reps},
            min_speedup,
            log=log,
        )
    result["machine"] = machine_state()
    result["measure"] = inputs.params.measure.model_dump(mode="json")
    return result


def write_trust(result: dict[str, Any], out_dir: Path) -> str:
    """trust.json and trust.md in ``out_dir``; returns the markdown."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "trust.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    markdown = trust_markdown(result, result["machine"])
    (out_dir / "trust.md").write_text(markdown, encoding="utf-8")
    return markdown
