"""Language-model candidates as MLflow Models: ``mlflow.pyfunc.load_model`` runs a GGUF in
llama.cpp, and an MLX folder in mlx-lm, in this process and predicts the logits the gate
scored: the same numbers its measurement subprocesses write (``compute_logits``), so the
top-1 agreement and KL between a quantized candidate and its baseline come out the same.

The project is a random tiny llama GGUF and its Hugging Face-layout copy made here in a
second; the serving context comes from ``resolve_inputs`` on it, as in a gate run. One test
goes through a real sqlite-backed MLflow registry (``models:/<name>@champion``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pytest
from mlflow import MlflowClient

from edgeproof.gates.lm_fidelity import fidelity, scored_targets
from edgeproof.pipeline.resolve import ResolvedInputs, resolve_inputs
from edgeproof.records import Candidate
from edgeproof.targets.llama_cpp.gguf_model import N_VOCAB, byte_windows, tiny_random_gguf
from edgeproof.targets.mlx.hf_model import expected_tensors, llama_config, write_hf_folder
from edgeproof.targets.mlx.target import mlx_availability
from edgeproof.targets.registry import make_target
from edgeproof.tracking.mlflow_model import ServingContext, write_mlmodel
from tests.helpers import write_params

WINDOW, N_WINDOWS = 64, 4
PLAIN = {"extra_buffer_types": False}  # llama.cpp's AMX kernels crash on some CPUs


def _hf_folder(folder: Path) -> Path:
    """A random tiny llama in Hugging Face layout (numpy only), spread logits."""
    config = llama_config(
        vocab_size=N_VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        dtype="float32",
    )
    rng = np.random.default_rng(0)
    weights = {
        name: np.ones(shape) if len(shape) == 1 else rng.standard_normal(shape) / shape[1] ** 0.5
        for name, shape in expected_tensors(config).items()
    }
    weights["model.embed_tokens.weight"] = rng.standard_normal((N_VOCAB, 64))
    return write_hf_folder(folder, config, weights, "float32")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ResolvedInputs:
    """A language-model project with the llama-cpp and mlx targets, resolved."""
    from pydoc_data.topics import topics

    project = tmp_path_factory.mktemp("lm-project")
    tiny_random_gguf(project / "model" / "random-f32.gguf", seed=0)
    _hf_folder(project / "model" / "hf")
    text = topics["assignment"].encode()
    (project / "data").mkdir()
    np.savez(project / "data" / "eval.npz", tokens=byte_windows(text, WINDOW, N_WINDOWS))
    np.savez(project / "data" / "calibration.npz", tokens=byte_windows(text[-3000:], WINDOW, 2))
    timing = {"tg_tokens": 32, "repetitions": 2, "rounds": 2}
    params = {
        "model": {"name": "tiny", "path": "model/random-f32.gguf", "task": "language_model"},
        "data": {
            "eval": "data/eval.npz",
            "calibration": "data/calibration.npz",
            "dvc_sync": "off",
            "checks": {"min_eval_rows": 2, "min_calibration_rows": 2, "value_min": 0},
        },
        "targets": {
            "llama-cpp": {
                "threads": 2,
                "recipes": [{"name": "q2_k", "type": "Q2_K"}],
                **PLAIN,
                **timing,
            },
            "mlx": {
                "threads": 1,
                "hf_model": "model/hf",
                "recipes": [{"name": "q2", "bits": 2, "group_size": 32}],
                **timing,
            },
        },
    }
    write_params(project / "params.yaml", params)
    return resolve_inputs(project / "params.yaml")


def _windows(inputs: ResolvedInputs) -> np.ndarray:
    return np.load(inputs.eval_data)["tokens"]


def _candidates(inputs: ResolvedInputs, target: str, work: Path) -> list[Candidate]:
    """The target's baseline and its one recipe's candidate."""
    backend = make_target(target, inputs.targets[target])
    baseline = backend.baseline(inputs.model, work)
    (recipe,) = backend.recipes()
    return [baseline, backend.optimize(recipe, baseline, None, work)]  # type: ignore[arg-type]


def _model_folder(candidate: Candidate, context: ServingContext, folder: Path) -> Path:
    """What the candidate run's ``model/`` artifact folder holds: its files and ``MLmodel``."""
    folder.mkdir(parents=True)
    for path in candidate.files:
        shutil.copy(path, folder / path.name)
    written = write_mlmodel(candidate, context, folder)
    assert [p.name for p in written] == ["MLmodel", "input_example.json"]
    return folder


def _predict(folder: Path | str, windows: np.ndarray) -> np.ndarray:
    predicted = mlflow.pyfunc.load_model(str(folder)).predict({"tokens": windows})
    return predicted["logits"]


def _agreement_and_kl(base: np.ndarray, cand: np.ndarray, windows: np.ndarray) -> tuple:
    fid = fidelity(base, cand, scored_targets(windows), resamples=200)
    return fid.top1_agreement.value, fid.mean_kl.value


def test_the_serving_context_of_a_language_model(inputs: ResolvedInputs) -> None:
    context = inputs.serving_context("llama-cpp")
    assert list(context.example) == ["tokens"]
    np.testing.assert_array_equal(context.example["tokens"], _windows(inputs)[:1])
    assert context.signature is not None
    (tokens,), (logits,) = context.signature
    assert (tokens.name, tokens.dtype, tokens.shape) == ("tokens", np.int32, (None, None))
    assert (logits.name, logits.dtype, logits.shape) == ("logits", np.float32, (None,) * 3)
    assert context.backend == "edgeproof.targets.llama_cpp.target:LlamaCpp"
    assert inputs.serving_context("mlx").backend == "edgeproof.targets.mlx.target:MlxLm"


def test_gguf_candidates_predict_the_logits_the_gate_scored(
    inputs: ResolvedInputs, tmp_path: Path
) -> None:
    from edgeproof.targets.llama_cpp.runner import compute_logits

    windows = _windows(inputs)
    context = inputs.serving_context("llama-cpp")
    served, measured = {}, {}
    for cand in _candidates(inputs, "llama-cpp", tmp_path / "work"):
        folder = _model_folder(cand, context, tmp_path / cand.name)
        served[cand.name] = _predict(folder, windows)
        out = tmp_path / f"{cand.name}.npy"
        compute_logits(cand.model_file, windows, out, threads=2, **PLAIN)
        measured[cand.name] = np.load(out)
        assert served[cand.name].shape == (N_WINDOWS, WINDOW // 2, N_VOCAB)
        assert served[cand.name].dtype == np.float32
        np.testing.assert_allclose(served[cand.name], measured[cand.name], rtol=0, atol=1e-5)

    agreement, kl = _agreement_and_kl(served["baseline"], served["q2_k"], windows)
    assert (agreement, kl) == pytest.approx(
        _agreement_and_kl(measured["baseline"], measured["q2_k"], windows), abs=1e-6
    )
    assert 0.0 < agreement < 1.0 and kl > 0.01  # Q2_K of random weights: a real difference

    loaded = mlflow.pyfunc.load_model(str(tmp_path / "q2_k"))
    meta = loaded.metadata
    assert meta.flavors["python_function"]["loader_module"] == "edgeproof.device.serving"
    assert meta.flavors["python_function"]["data"] == "random-f32-Q2_K.gguf"
    assert meta.flavors["edgeproof"]["target"] == "llama-cpp"
    assert meta.get_input_schema().input_names() == ["tokens"]
    assert meta.get_output_schema().input_names() == ["logits"]
    example = json.loads((tmp_path / "q2_k" / "input_example.json").read_text())
    assert example["inputs"]["tokens"] == windows[:1].tolist()

    # another context width reopens the model at it
    short = windows[:2, : WINDOW // 2 + 1]
    logits = loaded.predict({"tokens": short})["logits"]
    assert logits.shape == (2, WINDOW // 4, N_VOCAB)
    out = tmp_path / "short.npy"
    compute_logits(tmp_path / "q2_k" / "random-f32-Q2_K.gguf", short, out, threads=2, **PLAIN)
    np.testing.assert_allclose(logits, np.load(out), rtol=0, atol=1e-5)
    with pytest.raises(Exception, match=r"token ids must be in \[0, 259\)"):
        loaded.predict({"tokens": short + N_VOCAB})


def test_the_champion_loads_from_the_registry(inputs: ResolvedInputs, tmp_path: Path) -> None:
    windows = _windows(inputs)
    context = inputs.serving_context("llama-cpp")
    baseline = make_target("llama-cpp", inputs.targets["llama-cpp"]).baseline(
        inputs.model, tmp_path / "work"
    )
    folder = _model_folder(baseline, context, tmp_path / "model")
    expected = _predict(folder, windows[:2])

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("tiny", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(folder), "model")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("tiny.llama-cpp")
    version = client.create_model_version(
        "tiny.llama-cpp", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    client.set_registered_model_alias("tiny.llama-cpp", "champion", version.version)

    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        served = _predict("models:/tiny.llama-cpp@champion", windows[:2])
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
    np.testing.assert_array_equal(served, expected)


def test_mlx_candidates_predict_the_logits_the_gate_scored(
    inputs: ResolvedInputs, tmp_path: Path
) -> None:
    assert mlx_availability().ok  # make install brings mlx[cpu] and mlx-lm (the dev extra)
    from edgeproof.targets.mlx.runner import compute_logits

    windows = _windows(inputs)
    context = inputs.serving_context("mlx")
    served, measured = {}, {}
    for cand in _candidates(inputs, "mlx", tmp_path / "work"):
        folder = _model_folder(cand, context, tmp_path / cand.name)
        assert (folder / "config.json").is_file()
        served[cand.name] = _predict(folder, windows)
        out = tmp_path / f"{cand.name}.npy"
        compute_logits(cand.model_file.parent, windows, out, threads=1)
        measured[cand.name] = np.load(out)
        assert served[cand.name].shape == (N_WINDOWS, WINDOW // 2, N_VOCAB)
        np.testing.assert_allclose(served[cand.name], measured[cand.name], rtol=0, atol=1e-5)
    agreement, kl = _agreement_and_kl(served["baseline"], served["q2"], windows)
    assert (agreement, kl) == pytest.approx(
        _agreement_and_kl(measured["baseline"], measured["q2"], windows), abs=1e-6
    )
    assert agreement < 1.0 and kl > 0.0


_LOAD_WITHOUT_MLX = """
import sys
if sys.argv[2] == "block":
    sys.modules["mlx"] = None  # as if mlx were not installed
import mlflow.pyfunc
try:
    mlflow.pyfunc.load_model(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, exc, sep=": ")
else:
    print("loaded")
"""


def test_an_mlx_candidate_without_mlx_fails_in_one_line(
    inputs: ResolvedInputs, tmp_path: Path
) -> None:
    """Where mlx is installed, the child process hides it (``sys.modules["mlx"] = None``)."""
    baseline = make_target("mlx", inputs.targets["mlx"]).baseline(inputs.model, tmp_path / "w")
    folder = _model_folder(baseline, inputs.serving_context("mlx"), tmp_path / "model")
    block = "block" if mlx_availability().ok else "as-is"
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_WITHOUT_MLX, str(folder), block],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    assert lines[0].startswith("TargetUnavailable: cannot serve mlx candidate 'baseline': ")
    assert "mlx is not installed" in lines[0]
