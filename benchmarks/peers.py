"""Peers benchmark: what a user gets from NNCF and ORT static quantization directly, with
their defaults and no edgeproof, against what edgeproof promoted, measured in one run.

Run it in a project after ``make demo`` (the champions are read from its MLflow store):

    .venv/bin/python benchmarks/peers.py [--params params.yaml] [--out benchmarks/results]

For each runtime, the promoted champion (downloaded from MLflow) and the peer model are
measured with edgeproof's own harness: fresh worker processes, warm-up, interleaved blocks,
the same threads, CIs. ``champion vs peer`` is peer median / champion median (> 1: the
champion is faster) with its paired-bootstrap CI. The two runtimes are measured one after
the other, so the best-of comparison across runtimes uses their medians as measured.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from edgeproof.data.dataset import Dataset
from edgeproof.measure.environment import machine_state
from edgeproof.measure.harness import measure_target
from edgeproof.pipeline.judge import judge_task
from edgeproof.pipeline.resolve import ResolvedInputs, resolve_inputs
from edgeproof.records import Candidate
from edgeproof.runtime.env import apply_quiet_defaults
from edgeproof.tracking.champion_model import fetch_champion
from edgeproof.tracking.mlflow_store import MlflowStore

CALIBRATION_ITEMS = 200


def ort_static_defaults(model: Path, calibration: Dataset, out: Path) -> Candidate:
    """``quant_pre_process`` + ``quantize_static`` with ORT's defaults (QDQ, MinMax)."""
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out.mkdir(parents=True, exist_ok=True)
    pre = out / "pre.onnx"
    quant_pre_process(str(model), str(pre))
    items = iter(list(calibration.head(CALIBRATION_ITEMS).batches(1)))

    class Reader:
        def get_next(self) -> dict[str, Any] | None:
            return next(items, None)

    quantize_static(str(pre), str(out / "model.onnx"), Reader())
    return Candidate(
        target="onnxruntime-cpu",
        name="peer-ort-static-defaults",
        files=(out / "model.onnx",),
        recipe={"tool": "onnxruntime.quantization.quantize_static", "args": "defaults"},
        precision="int8",
    )


def nncf_defaults(model: Path, calibration: Dataset, out: Path) -> Candidate:
    """``ov.convert_model`` + ``nncf.quantize`` with NNCF's defaults, saved as a user would."""
    import nncf
    import openvino as ov

    out.mkdir(parents=True, exist_ok=True)
    items = list(calibration.head(CALIBRATION_ITEMS).batches(1))
    quantized = nncf.quantize(ov.convert_model(str(model)), nncf.Dataset(items))
    ov.save_model(quantized, str(out / "model.xml"))
    return Candidate(
        target="openvino-cpu",
        name="peer-nncf-defaults",
        files=(out / "model.xml", out / "model.bin"),
        recipe={"tool": "nncf.quantize", "args": "defaults"},
        precision="int8",
    )


PEERS = {"onnxruntime-cpu": ort_static_defaults, "openvino-cpu": nncf_defaults}


def compare(inputs: ResolvedInputs, target: str, work: Path) -> dict[str, Any]:
    """The champion of ``target`` measured against the peer of the same runtime."""
    peer = PEERS[target](inputs.model, inputs.load_calibration(), work / "peer")
    store = MlflowStore(inputs.params.tracking)
    found = fetch_champion(
        store,
        inputs.params.registry,
        inputs.params.model.name,
        target,
        peer.model_file.suffix,  # the same runtime: the same primary file type
        work,
    )
    if found is None:
        raise SystemExit(f"peers: no champion of {target}: run `make demo` first")
    name, version, champion = found.registered_model, found.version, found.candidate
    job = inputs.measure_job(target, work / "outputs")
    measured = measure_target(champion, [peer], job, inputs.params.measure, print)
    outcome = judge_task(
        inputs.task, target, champion, [peer], [], measured, inputs.load_truth(), inputs.params
    )
    summaries = {o.candidate.name: o.summary for o in outcome.outcomes}
    mine, theirs = summaries[champion.name], summaries[peer.name]
    assert mine is not None and theirs is not None and theirs.speedup is not None
    return {
        "target": target,
        "champion": f"{name} v{version}",
        "champion_recipe": store.version_tags(name, version),
        "champion_median_ms": mine.median_ms.model_dump(),
        "peer": peer.name,
        "peer_median_ms": theirs.median_ms.model_dump(),
        "champion_vs_peer": {  # peer median / champion median
            "value": 1.0 / theirs.speedup.value,
            "low": 1.0 / theirs.speedup.high,
            "high": 1.0 / theirs.speedup.low,
        },
        "peer_accuracy_drop_vs_champion": theirs.accuracy_drop.model_dump()
        if theirs.accuracy_drop
        else None,
    }


def markdown(rows: list[dict[str, Any]], best: dict[str, Any], machine: dict[str, Any]) -> str:
    lines = [
        "# Peers benchmark: NNCF and ORT static quantization with their defaults vs edgeproof",
        "",
        f"Machine: {machine.get('cpu_model')} x{machine.get('cpu_count')}",
        "",
        "| runtime | edgeproof champion | p50 ms | peer (defaults) | p50 ms | champion vs peer |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        c, p, v = r["champion_median_ms"], r["peer_median_ms"], r["champion_vs_peer"]
        lines.append(
            f"| {r['target']} | {r['champion']} | {c['value']:.3f} [{c['low']:.3f}, "
            f"{c['high']:.3f}] | {r['peer']} | {p['value']:.3f} [{p['low']:.3f}, "
            f"{p['high']:.3f}] | {v['value']:.2f}x [{v['low']:.2f}, {v['high']:.2f}] |"
        )
    lines += [
        "",
        f"Best promoted: {best['champion']} ({best['champion_ms']:.3f} ms); best peer: "
        f"{best['peer']} ({best['peer_ms']:.3f} ms); ratio (peer / promoted) "
        f"**{best['ratio']:.2f}**.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    apply_quiet_defaults()
    inputs = resolve_inputs(args.params, list(PEERS))
    with tempfile.TemporaryDirectory(prefix="edgeproof-peers-") as tmp:
        rows = [compare(inputs, target, Path(tmp) / target) for target in PEERS]
    mine = min(rows, key=lambda r: r["champion_median_ms"]["value"])
    theirs = min(rows, key=lambda r: r["peer_median_ms"]["value"])
    best = {
        "champion": mine["champion"],
        "champion_ms": mine["champion_median_ms"]["value"],
        "peer": theirs["peer"],
        "peer_ms": theirs["peer_median_ms"]["value"],
        "ratio": theirs["peer_median_ms"]["value"] / mine["champion_median_ms"]["value"],
    }
    machine = machine_state()
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"rows": rows, "best": best, "machine": machine}
    (args.out / "peers.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = markdown(rows, best, machine)
    (args.out / "peers.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
