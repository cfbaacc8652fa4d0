"""The search recipe on ONNX Runtime: it keeps the one sensitive layer in float.

A six-layer MLP whose fourth layer holds one outlier weight: int8 weights per tensor turn
the rest of that layer to zero (mean cosine to the baseline ~0.9), the other layers
quantize cleanly. The search probes each layer alone, ranks them and keeps the fewest in
float that pass the fidelity gate on the calibration items: only ``layers.3``. Probes run
in child processes, with the real quantizer and runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeproof.config import FidelityGate
from edgeproof.data.dataset import load_dataset
from edgeproof.evaluate.probe import tensor_probe_judge
from edgeproof.pipeline.optimize import build_candidates
from edgeproof.targets.onnxruntime_cpu.target import OnnxRuntimeCpu, OnnxRuntimeTargetConfig
from edgeproof.targets.onnxruntime_cpu.units import DYNAMIC_OPS, graph_units
from tests.helpers import run, write_npz, write_params

WIDTH, LAYERS, SENSITIVE = 32, 6, 3
GATE = FidelityGate(min_cosine_mean=0.99, min_cosine_low=None)


def _mlp(path: Path) -> Path:
    rng = np.random.default_rng(0)
    nodes, weights, x = [], [], "input"
    for i in range(LAYERS):
        w = (rng.normal(size=(WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
        if i == SENSITIVE:
            w[0, 0] = 40.0  # one outlier: the per-tensor int8 scale zeroes the others
        weights.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(
            helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"], name=f"/layers.{i}/MatMul")
        )
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"t{i}"], name=f"/layers.{i}/Tanh"))
        x = f"t{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", WIDTH])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def mlp(tmp_path: Path) -> tuple[Path, Path]:
    x = np.random.default_rng(1).normal(size=(80, WIDTH)).astype(np.float32)
    return _mlp(tmp_path / "mlp.onnx"), write_npz(tmp_path / "calibration.npz", input=x)


def _target(**search: object) -> OnnxRuntimeCpu:
    recipes = [
        {"name": "dynamic-int8", "method": "dynamic"},
        {"name": "search-int8", "method": "search", "start": "dynamic", **search},
    ]
    return OnnxRuntimeCpu(
        OnnxRuntimeTargetConfig.model_validate({"threads": 1, "recipes": recipes})
    )


def test_the_graph_is_grouped_by_name_prefix(mlp: tuple[Path, Path]) -> None:
    units = graph_units(mlp[0], DYNAMIC_OPS, max_units=24)
    assert [u.name for u in units] == [f"layers.{i}" for i in range(LAYERS)]
    assert units[SENSITIVE].nodes == (f"/layers.{SENSITIVE}/MatMul",)
    assert len(graph_units(mlp[0], DYNAMIC_OPS, max_units=3)) == 3  # runs in graph order


def test_the_search_keeps_the_sensitive_layer_in_float(
    mlp: tuple[Path, Path], tmp_path: Path
) -> None:
    model, calibration = mlp
    judge = tensor_probe_judge("embedding", GATE)
    baseline, built, failed = build_candidates(
        _target(probe_items=32), model, load_dataset(calibration), tmp_path / "work", judge=judge
    )
    assert failed == []
    found = {c.name: c for c in built}["search-int8"]
    search = found.recipe["search"]
    assert search["kept_in_float"] == [f"layers.{SENSITIVE}"]
    assert search["sensitivity"][0]["unit"] == f"layers.{SENSITIVE}"
    assert search["steps"][0]["kept_in_float"] == 0 and not search["steps"][0]["passes"]
    assert found.recipe["exclude_nodes"] == [f"/layers.{SENSITIVE}/MatMul"]
    assert search["probes"] <= LAYERS + 4
    # the mix found is what the probes judged: the other layers quantized, this one float
    x = load_dataset(calibration).inputs["input"][:32]
    base = _run(baseline.model_file, x)
    mix, plain = _run(found.model_file, x), _run(built[0].model_file, x)
    assert _cosine(mix, base) >= 0.99 > _cosine(plain, base)


def _run(model: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(
        None, {"input": x}
    )[0]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))


def test_a_search_out_of_budget_fails_its_recipe_saying_so(
    mlp: tuple[Path, Path], tmp_path: Path
) -> None:
    model, calibration = mlp
    judge = tensor_probe_judge("embedding", GATE)
    target = _target(probe_items=16, budget={"max_probes": 3})
    _, built, failed = build_candidates(
        target, model, load_dataset(calibration), tmp_path / "work", judge=judge
    )
    assert [c.name for c in built] == ["dynamic-int8"]
    (outcome,) = failed
    assert "search-int8: optimization failed: search-int8: search: no mix passed the probes" in (
        outcome.error or ""
    )
    assert "budget spent (3 probes)" in (outcome.error or "")


def test_openvino_searches_through_nncf_ignored_scope(
    mlp: tuple[Path, Path], tmp_path: Path
) -> None:
    """NNCF's per-channel int8 takes the outlier in its stride: at a stricter cosine gate
    (0.999) the fully quantized IR still misses, and the search leaves the fewest units in
    NNCF's ``ignored_scope`` that pass, each probe a real NNCF quantization."""
    from edgeproof.targets.openvino_cpu.config import OpenVinoTargetConfig
    from edgeproof.targets.openvino_cpu.target import OpenVinoCpu

    model, calibration = mlp
    recipes = [{"name": "search-int8", "method": "search", "probe_items": 32,
                "calibration_samples": 64}]  # fmt: skip
    target = OpenVinoCpu(OpenVinoTargetConfig.model_validate({"threads": 1, "recipes": recipes}))
    judge = tensor_probe_judge(
        "embedding", FidelityGate(min_cosine_mean=0.999, min_cosine_low=None)
    )
    _, (found,), failed = build_candidates(
        target, model, load_dataset(calibration), tmp_path / "work", judge=judge
    )
    assert failed == []
    search = found.recipe["search"]
    full, *bisection = search["steps"]
    assert full["kept_in_float"] == 0 and not full["passes"]
    kept = search["kept_in_float"]
    assert 1 <= len(kept) < LAYERS
    assert any(s["passes"] and s["kept_in_float"] == len(kept) for s in bisection)
    assert not any(s["passes"] and s["kept_in_float"] < len(kept) for s in bisection)
    assert found.recipe["ignored_scope"] == [f"/{unit}/MatMul" for unit in kept]
    assert found.model_file.suffix == ".xml" and found.files[1].is_file()


@pytest.mark.slow
def test_edgeproof_run_gates_the_mix_the_search_found(tmp_path: Path) -> None:
    """Through the CLI (the flow hands the task kind's probe judge to the search): plain
    dynamic int8 fails the cosine gate, the search's mix passes it and wins, and the report
    names the unit kept in float."""
    project = tmp_path / "project"
    project.mkdir()
    _mlp(project / "mlp.onnx")
    rng = np.random.default_rng(1)
    for split, n in (("eval", 150), ("calibration", 80)):
        write_npz(project / f"{split}.npz", input=rng.normal(size=(n, WIDTH)).astype(np.float32))
    recipes = [
        {"name": "dynamic-int8", "method": "dynamic"},
        {"name": "search-int8", "method": "search", "start": "dynamic", "probe_items": 32},
    ]
    write_params(
        project / "params.yaml",
        {
            "model": {"name": "mlp", "path": "mlp.onnx", "task": "embedding"},
            "data": {"eval": "eval.npz", "calibration": "calibration.npz"},
            "targets": {"onnxruntime-cpu": {"threads": 1, "recipes": recipes}},
            "measure": {"min_samples": 40, "max_samples": 80, "max_seconds": 5},
            "gates": {
                "fidelity": {"min_cosine_mean": 0.99, "min_cosine_low": None},
                "latency": {"min_speedup": None},
            },
        },
    )
    done = run(["edgeproof", "run", "--params", "params.yaml"], project, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (verdict,) = (project / "reports").glob("*/verdict.json")
    (target,) = json.loads(verdict.read_text())["targets"]
    status = {o["candidate"]["name"]: o["verdict"]["status"] for o in target["outcomes"]}
    assert status["dynamic-int8"] == "fail" and status["search-int8"] == "pass"
    assert target["winner"] == "search-int8"
    (summary,) = (project / "reports").glob("*/summary.md")
    assert f"Search `search-int8`: 1 of {LAYERS} units kept in float (`layers.{SENSITIVE}`)" in (
        summary.read_text()
    )
