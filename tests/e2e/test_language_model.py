"""The language-model task end to end, on a random tiny GGUF made here in a second.

`edgeproof run` (real Prefect, real sqlite MLflow, real llama.cpp in subprocesses) on a
project whose model is a random llama GGUF and whose data are token windows of text that
ships with Python: Q8_0 passes, Q2_K is failed by the KL gate, the winner is registered,
and KL / top-1 / perplexity / tokens-per-second reach the report and MLflow. A corrupt and a
truncated candidate fail with a clear reason while the others are measured; a bad baseline
or an unknown quantization type stops the run before anything is written.

Quantizing random weights gives KLs that do not depend on the machine (no training), so
the KL threshold below sits between the measured values with margins of over 20x.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from edgeproof.config import MeasureConfig
from edgeproof.params.model import parse_params
from edgeproof.pipeline.judge import judge_task
from edgeproof.records import Candidate
from edgeproof.records.measurement import TargetMeasurements
from edgeproof.targets.llama_cpp.config import LlamaCppTargetConfig
from edgeproof.targets.llama_cpp.gguf_model import byte_windows, tiny_random_gguf
from edgeproof.targets.llama_cpp.harness import measure_language_models
from edgeproof.targets.registry import measure_job
from edgeproof.tasks.registry import task_kind
from tests.helpers import run, write_params

LM = task_kind("language_model")

pytestmark = pytest.mark.slow
WINDOW = 128
MAX_KL = 0.01


def _text() -> bytes:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics)).encode()


def _write_project(folder: Path, recipes: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tiny_random_gguf(folder / "model" / "random-f32.gguf", seed=0)
    text = _text()
    (folder / "data").mkdir()
    np.savez(folder / "data" / "eval.npz", tokens=byte_windows(text[:20_000], WINDOW, 8))
    np.savez(folder / "data" / "calibration.npz", tokens=byte_windows(text[-5_000:], WINDOW, 4))
    params = {
        "model": {
            "name": "random-llama",
            "path": "model/random-f32.gguf",
            "task": "language_model",
        },
        "data": {
            "eval": "data/eval.npz",
            "calibration": "data/calibration.npz",
            "dvc_sync": "off",
            "checks": {"min_eval_rows": 4, "min_calibration_rows": 2, "value_min": 0},
        },
        "targets": {
            "llama-cpp": {
                "threads": 1,
                "pp_tokens": 32,
                "tg_tokens": 16,
                "repetitions": 4,
                "rounds": 2,
                "recipes": recipes,
            }
        },
        "measure": {"bootstrap_resamples": 500},
        "gates": {
            # random weights: Q8_0 ~4.5e-4, Q2_K ~0.45 nats (margins > 20x either side)
            "language_model": {"max_mean_kl": MAX_KL, "min_top1_agreement": 0.9},
            "latency": {"min_speedup": None},
            "objective": "size",
        },
        "tracking": {
            "uri": f"sqlite:///{folder / 'mlflow.db'}",
            "artifact_location": "mlartifacts",
        },
    }
    write_params(folder / "params.yaml", params)
    return folder


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    recipes = [{"name": "q8_0", "type": "Q8_0"}, {"name": "q2_k", "type": "q2_k"}]
    project = _write_project(tmp_path_factory.mktemp("lm") / "project", recipes)
    done = run(["edgeproof", "run", "--params", "params.yaml"], project, timeout=600)
    return project, done


def test_q8_0_passes_and_q2_k_fails_on_kl(gated: tuple[Path, object]) -> None:
    project, done = gated
    assert done.returncode == 0, done.stderr[-2000:]
    (verdict_file,) = project.glob("reports/*/verdict.json")
    target = json.loads(verdict_file.read_text())["targets"][0]
    results = {o["candidate"]["name"]: o for o in target["outcomes"]}
    assert results["q8_0"]["verdict"]["status"] == "pass"
    assert results["q2_k"]["verdict"]["status"] == "fail"
    kl = {name: results[name]["summary"]["mean_kl"] for name in ("q8_0", "q2_k")}
    assert kl["q8_0"]["high"] < MAX_KL < kl["q2_k"]["low"]  # CIs on either side of the limit
    failing = [c["name"] for c in results["q2_k"]["verdict"]["checks"] if c["status"] == "fail"]
    assert "language_model.max_mean_kl" in failing
    assert target["winner"] == "q8_0" and target["baseline"] == "baseline"
    lm = results["q8_0"]["summary"]["language"]
    assert lm["n_tokens"] == 8 * WINDOW // 2 and 8 < lm["bits_per_weight"] < 9
    assert 0.99 < lm["ppl_ratio"]["value"] < 1.01
    for speed in (lm["pp_tokens_per_s"], lm["tg_tokens_per_s"]):
        assert 0 < speed["low"] <= speed["value"] <= speed["high"]
    base = results["baseline"]["summary"]
    assert base["language"]["bits_per_weight"] == pytest.approx(32.0, abs=0.1)
    summary = next(project.glob("reports/*/summary.md")).read_text()
    assert "Language model on 512 held-out tokens" in summary and "tg tok/s" in summary


def test_the_winner_is_registered_with_its_language_metrics(
    gated: tuple[Path, object],
) -> None:
    project, _ = gated
    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("random-llama.llama-cpp", "champion")
    metrics = client.get_run(champion.run_id).data.metrics
    assert metrics["lm.bits_per_weight"] == pytest.approx(8.5, abs=0.1)
    assert metrics["lm.tg_tokens_per_s"] > 0 and "lm.ppl_ratio_high" in metrics
    assert metrics["mean_kl"] < MAX_KL
    artifacts = [a.path for a in client.list_artifacts(champion.run_id, "model")]
    assert any(path.endswith(".gguf") for path in artifacts), artifacts


def test_corrupt_and_truncated_candidates_fail_alone(tmp_path: Path) -> None:
    project = _write_project(tmp_path / "p", [])
    base_file = project / "model" / "random-f32.gguf"
    data = base_file.read_bytes()
    bad = {
        "corrupt": np.random.default_rng(1).bytes(200_000),
        "truncated": data[: len(data) // 2],
    }
    for name, content in bad.items():
        (tmp_path / f"{name}.gguf").write_bytes(content)

    def candidate(name: str, path: Path, baseline: bool = False) -> Candidate:
        recipe = {"bits_per_weight": 32.0, "n_params": 1}
        return Candidate(
            target="llama-cpp",
            name=name,
            files=(path,),
            recipe=recipe,
            precision="f32",
            is_baseline=baseline,
        )

    config = LlamaCppTargetConfig(threads=1, pp_tokens=16, tg_tokens=25, repetitions=2, rounds=2)
    job = measure_job(
        "llama-cpp", config, project / "data" / "eval.npz", "labels", tmp_path / "outputs"
    )
    baseline = candidate("baseline", base_file, baseline=True)
    others = [candidate(n, tmp_path / f"{n}.gguf") for n in bad] + [candidate("same", base_file)]
    measured = measure_language_models(baseline, others, job, MeasureConfig())
    assert set(measured.errors) == {"corrupt", "truncated"}
    for name, reason in measured.errors.items():
        assert "\n" not in reason and f"{name}.gguf logits" in reason and "during load" in reason
    assert set(measured.raw) == {"baseline", "same"}
    params = parse_params(_params_dict(project))
    windows = np.load(project / "data" / "eval.npz")["tokens"]
    outcome = judge_task(LM, "llama-cpp", baseline, others, [], measured, windows, params)
    status = {o.candidate.name: o.verdict.status for o in outcome.outcomes}
    assert status == {"baseline": "pass", "same": "pass", "corrupt": "error", "truncated": "error"}
    same = next(o.summary for o in outcome.outcomes if o.candidate.name == "same")
    assert same.mean_kl.value == 0.0 and same.top1_agreement.value == 1.0

    # a baseline that cannot be summarized (here: too few timings for its CIs) errs the target
    short = dataclasses.replace(measured.raw["baseline"], latency_ms=np.ones(5))
    broken = TargetMeasurements({**measured.raw, "baseline": short}, measured.outputs, {})
    outcome = judge_task(LM, "llama-cpp", baseline, others, [], broken, windows, params)
    assert outcome.status == "error" and outcome.winner is None
    assert outcome.reason.startswith("baseline baseline: ") and "too few" in outcome.reason


def _params_dict(project: Path) -> dict:
    import yaml

    return yaml.safe_load((project / "params.yaml").read_text())


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("corrupt-model", "model is not a readable GGUF file (GGUF magic invalid)"),
        ("unknown-type", "unknown llama.cpp quantization type 'Q9_9'"),
        ("onnx-target", "target 'onnxruntime-cpu' needs an ONNX model"),
    ],
)
def test_bad_input_stops_before_anything_is_written(
    tmp_path: Path, breakage: str, message: str
) -> None:
    project = _write_project(tmp_path / "p", [{"name": "q8_0", "type": "Q8_0"}])
    params = _params_dict(project)
    if breakage == "corrupt-model":
        (project / "model" / "random-f32.gguf").write_bytes(b"not a gguf" * 100)
    elif breakage == "unknown-type":
        params["targets"]["llama-cpp"]["recipes"] = [{"name": "q9", "type": "Q9_9"}]
    else:
        params["targets"]["onnxruntime-cpu"] = {"recipes": []}
    write_params(project / "params.yaml", params)
    before = _snapshot(project)
    done = run(["edgeproof", "run", "--params", "params.yaml"], project, timeout=300)
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeproof: error: ") and message in lines[0]
    assert _snapshot(project) == before  # nothing written, nothing changed


def _snapshot(project: Path) -> dict[str, bytes]:
    """Every file of the project (Prefect's own home folder aside) and its bytes."""
    return {
        str(f.relative_to(project)): f.read_bytes()
        for f in sorted(project.rglob("*"))
        if f.is_file() and ".prefect" not in f.parts
    }
