"""Shared test builders: real ONNX models made with onnx.helper, .npz data files, hand-made
records (estimates, summaries, run info), a tiny measurement setup, and a copy of the
repository's example project built for real with DVC (``build_example_project``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeproof.config import MeasureConfig, RegistryConfig, TargetCommon
from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    CandidateSummary,
    Estimate,
    Lineage,
    RunInfo,
    TargetOutcome,
    Verdict,
)
from edgeproof.records.measurement import MeasureJob
from edgeproof.targets.onnxruntime_cpu.target import OnnxRuntimeTargetConfig, OrtRecipe
from edgeproof.targets.registry import measure_job
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.audit import read_history
from edgeproof.tracking.champion import move_champion
from edgeproof.tracking.evidence import EvidenceContext
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.promote import promote as register_and_promote
from edgeproof.tracking.run_log import log_target
from edgeproof.tracking.signing import public_key_b64


def make_tiny_cnn(
    path: Path, seed: int = 0, size: int = 16, classes: int = 10, opset: int = 17
) -> Path:
    """Conv(8, 3x3) -> Relu -> Flatten -> Gemm(classes); input "input" N x 1 x size x size;
    the default domain at ``opset``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 0.3, (8, 1, 3, 3)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, 8).astype(np.float32)
    fc_w = rng.normal(0, 0.05, (8 * size * size, classes)).astype(np.float32)
    fc_b = np.zeros(classes, np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [
            numpy_helper.from_array(conv_w, "conv_w"),
            numpy_helper.from_array(conv_b, "conv_b"),
            numpy_helper.from_array(fc_w, "fc_w"),
            numpy_helper.from_array(fc_b, "fc_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def skl2onnx_outputs(model: Any, classes: int = 10) -> Any:
    """``model`` (ending in ``logits``) with the outputs skl2onnx's defaults give a
    classifier: ``output_label`` (int64 [N], first) and ``output_probability``, a sequence
    of maps made by ZipMap (domain ai.onnx.ml, ``classlabels_int64s``)."""
    from onnx import TensorProto, helper

    graph = model.graph
    graph.node.extend(
        [
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["probabilities"], ["output_label"], axis=1, keepdims=0),
            helper.make_node(
                "ZipMap",
                ["probabilities"],
                ["output_probability"],
                domain="ai.onnx.ml",
                classlabels_int64s=list(range(classes)),
            ),
        ]
    )
    del graph.output[:]
    maps = helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(1, []))
    )
    graph.output.extend(
        [
            helper.make_tensor_value_info("output_label", TensorProto.INT64, ["N"]),
            helper.make_value_info("output_probability", maps),
        ]
    )
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 1))
    return model


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def estimate(value: float, half: float = 0.0):
    from edgeproof.records import Estimate

    return Estimate(value=value, low=value - half, high=value + half, confidence=0.95)


def summary(name: str, *, baseline: bool = False, median: float = 1.0, speedup: float | None = 2.0):
    """A hand-made CandidateSummary with plausible numbers."""
    from edgeproof.records import CandidateSummary

    return CandidateSummary(
        candidate=name,
        precision="fp32" if baseline else "int8",
        is_baseline=baseline,
        n_eval_items=360,
        accuracy=estimate(0.99, 0.01),
        accuracy_drop=estimate(0.0, 0.005),
        top1_agreement=estimate(1.0 if baseline else 0.995, 0.005),
        mean_kl=estimate(0.0 if baseline else 0.002, 0.001),
        max_abs_logit_error=0.0 if baseline else 1.5,
        latency_samples=300,
        median_ms=estimate(median, 0.02),
        p90_ms=estimate(median * 1.1, 0.03),
        p99_ms=None,
        speedup=None if baseline else estimate(speedup or 1.0, 0.1),
        throughput_ips=estimate(1000.0 / median, 10.0),
        peak_rss_mb=150.0,
        load_rss_mb=20.0,
        load_seconds=0.05,
        size_mb=7.8 if baseline else 2.0,
        threads=2,
    )


def run_info(**overrides: object):
    """A RunInfo of a run named ``digits-cnn-20261125T000000Z``; ``overrides`` replace fields."""
    from edgeproof.records import Lineage, RunInfo

    fields: dict = {
        "run_name": "digits-cnn-20261125T000000Z",
        "model": "digits-cnn",
        "mlflow_run_id": "abc123",
        "mlflow_experiment_id": "1",
        "tracking_uri": "sqlite:///mlflow.db",
        "started_at": "2026-11-25T00:00:00+00:00",
        "trigger": "cli",
        "lineage": Lineage(
            git_sha="0123456789abcdef",
            git_branch="main",
            git_dirty=True,
            params_sha256="0" * 64,
            dvc_md5={},
        ),
    }
    return RunInfo(**(fields | overrides))


def assert_timed_inside_the_call(session: Any, feeds: dict[str, np.ndarray], runtime: str) -> None:
    """``timed_run`` times the runtime's own inference (``info["timed"]`` names how): a
    positive figure inside the wall time of the Python call that returns it, every time."""
    import time

    assert runtime in session.info["timed"]
    prepared = session.prepare(feeds)
    for _ in range(30):
        start = time.perf_counter_ns()
        timed = session.timed_run(prepared)
        wall = (time.perf_counter_ns() - start) / 1e6
        assert 0.0 < timed <= wall, (timed, wall)


def first_output(path: Path) -> np.ndarray:
    """The first output tensor a measurement worker wrote for a candidate."""
    from edgeproof.evaluate.scores import load_outputs

    return next(iter(load_outputs(path).values()))


def make_tiny_encoder(path: Path, seed: int = 0, vocab: int = 64, dim: int = 32) -> Path:
    """A transformer-style text encoder exported from PyTorch: token ids + attention mask
    (both int64, dynamic batch and sequence) -> a mean-pooled ``embedding`` (batch, dim)."""
    import torch
    from torch import nn

    class Encoder(nn.Module):
        """Embedding, one self-attention block (masked softmax, FFN, layer norms), pooling."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, dim)
            self.qkv = nn.Linear(dim, 3 * dim)
            self.out = nn.Linear(dim, dim)
            self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            x = self.embed(input_ids)
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            scores = q @ k.transpose(1, 2) / dim**0.5
            scores = scores.masked_fill(attention_mask[:, None, :] == 0, -1e4)
            x = self.norm1(x + self.out(scores.softmax(-1) @ v))
            x = self.norm2(x + self.ffn(x))
            mask = attention_mask.unsqueeze(-1).to(x.dtype)
            return self.proj((x * mask).sum(1) / mask.sum(1).clamp(min=1.0))

    torch.manual_seed(seed)
    model = Encoder().eval()
    ids = torch.randint(0, vocab, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
            dynamo=False,
            opset_version=17,
        )
    return path


def token_data(n: int, seq: int, vocab: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """Token ids and attention masks (padding at the end of each row), int64."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, (n, seq)).astype(np.int64)
    lengths = rng.integers(seq // 2, seq + 1, n)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    return {"input_ids": ids * mask, "attention_mask": mask}


def availability_without(package: str, target: str, folder: Path) -> str:
    """``available()`` of ``target`` printed by a fresh Python in which ``package`` cannot
    be imported (a shim package raising ImportError shadows it): a runner without the
    target's extra."""
    import subprocess
    import sys

    root = ROOT
    shim = folder / "shim" / package
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(f"raise ImportError('No module named {package} (shim)')\n")
    code = (
        "from edgeproof.targets.registry import make_target, target_spec;"
        f"section = target_spec({target!r}).config();"
        f"print(make_target({target!r}, section).available())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": f"{shim.parent}:{root}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def est(value: float, low: float | None = None, high: float | None = None) -> Estimate:
    """An Estimate; bounds default to the value (a zero-width interval)."""
    low = value if low is None else low
    high = value if high is None else high
    return Estimate(value=value, low=low, high=high, confidence=0.99)


def make_summary(name: str, *, baseline: bool = False, **update: Any) -> CandidateSummary:
    """A plausible CandidateSummary that passes the default gates; ``update`` overrides."""
    fields: dict[str, Any] = {
        "candidate": name,
        "precision": "fp32" if baseline else "int8",
        "is_baseline": baseline,
        "n_eval_items": 1000,
        "accuracy": est(0.98, 0.97, 0.99),
        "accuracy_drop": est(0.0, -0.004, 0.004),
        "top1_agreement": est(1.0 if baseline else 0.995, 0.99, 1.0),
        "mean_kl": est(0.0) if baseline else est(0.002, 0.001, 0.003),
        "max_abs_logit_error": 0.0 if baseline else 1.5,
        "latency_samples": 600,
        "median_ms": est(
            2.7 if baseline else 0.8, 2.6 if baseline else 0.78, 2.8 if baseline else 0.82
        ),
        "p90_ms": est(
            3.0 if baseline else 0.9, 2.9 if baseline else 0.88, 3.1 if baseline else 0.92
        ),
        "p99_ms": None,
        "speedup": None if baseline else est(3.4, 3.2, 3.6),
        "throughput_ips": est(1200.0, 1100.0, 1300.0),
        "peak_rss_mb": 150.0 if baseline else 100.0,
        "load_rss_mb": 20.0,
        "load_seconds": 0.05,
        "size_mb": 4.0 if baseline else 1.0,
        "threads": 2,
    }
    fields.update(update)
    return CandidateSummary(**fields)


TINY_ORT_CONFIG = OnnxRuntimeTargetConfig(
    threads=1, recipes=[OrtRecipe(name="qdq", method="static", calibration_samples=16)]
)
FAST_MEASURE = MeasureConfig(
    warmup_runs=5,
    max_warmup_runs=60,
    min_samples=40,
    max_samples=40,
    block_size=10,
    throughput_batch=8,
    throughput_runs=3,
)


def measure_job_for(
    tiny_data: dict[str, Path],
    tmp_path: Path,
    target: str = "onnxruntime-cpu",
    config: TargetCommon = TINY_ORT_CONFIG,
) -> MeasureJob:
    """A measurement job of ``target`` on the tiny eval data, one thread."""
    return measure_job(target, config, tiny_data["eval"], "labels", tmp_path / "outputs")


ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMALL_EXAMPLE = {"image_size": 32, "eval_size": 400, "calibration_size": 100, "epochs": 3}


def tool_env(project: Path) -> dict[str, str]:
    """Environment for subprocesses: the venv's tools first, telemetry off, local homes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_HOME=str(project / ".prefect"),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        GIT_AUTHOR_NAME="edgeproof-tests",
        GIT_AUTHOR_EMAIL="tests@example.invalid",
        GIT_COMMITTER_NAME="edgeproof-tests",
        GIT_COMMITTER_EMAIL="tests@example.invalid",
    )
    return env


def run(
    args: list[str], cwd: Path, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in ``cwd`` with ``tool_env`` plus ``env``; output captured."""
    return subprocess.run(
        args,
        cwd=cwd,
        env={**tool_env(cwd), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check(args: list[str], cwd: Path, timeout: float = 900) -> str:
    done = run(args, cwd, timeout)
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout


def build_example_project(dest: Path, **example: object) -> Path:
    """Copy params/dvc files and the example sources, then git init, dvc repro, dvc push."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in ("dvc.yaml", "edgeproof/example/data.py", "edgeproof/example/train.py"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, dest / rel)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["example"].update({**SMALL_EXAMPLE, **example})
    write_params(dest / "params.yaml", params)
    (dest / ".gitignore").write_text(
        "/mlflow.db\n/mlartifacts/\n/reports/\n/.prefect/\n/.dvcstore/\n"
    )
    check(["git", "init", "-q", "-b", "main"], dest)
    check(["dvc", "init", "-q"], dest)
    check(["dvc", "config", "core.analytics", "false"], dest)
    check(["dvc", "remote", "add", "-d", "local", str(dest / ".dvcstore")], dest)
    check(["dvc", "repro", "-q"], dest)
    check(["dvc", "push", "-q"], dest)
    check(["git", "add", "-A"], dest)
    check(["git", "commit", "-q", "-m", "example"], dest)
    return dest


def write_params(path: Path, params: dict) -> None:
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def load_params_dict(project: Path) -> dict:
    return yaml.safe_load((project / "params.yaml").read_text())


def missing_prerequisite(why: str, required_flag: str) -> NoReturn:
    """Skip a test whose prerequisite (a server binary, the corpus wheels) is absent; fail
    it instead where ``.ci/run`` installed it and says so (``required_flag`` set to 1)."""
    if os.environ.get(required_flag) == "1":
        pytest.fail(f"required by {required_flag}=1: {why}")
    pytest.skip(why)


# --- the MLflow registry: versions tagged with their verdict, promoted in turn

REGISTRY = RegistryConfig()


def make_versions(store: MlflowStore, name: str, *gates: str) -> list[str]:
    """One registered version per entry, each from its own run, tagged with its verdict."""
    experiment = store.experiment("registry-tests")
    versions = []
    for verdict in gates:
        run = store.start_run(experiment, f"{name}-{verdict}")
        store.log_text(run, f"weights of a {verdict} candidate", "model/model.txt")
        store.end(run)
        versions.append(store.register(name, run, "model", {tagnames.GATES: verdict}))
    return versions


def promote(store: MlflowStore, name: str, version: str, expected: str | None) -> None:
    move_champion(
        store,
        REGISTRY,
        name,
        to_version=version,
        expected=expected,
        action="promote",
        run=f"run-{version}",
        reason=f"v{version} passed every gate",
    )


def promoted_in_turn(store: MlflowStore, name: str, *gates: str) -> list[str]:
    """Versions made by ``make_versions``; the passing ones promoted one after the other."""
    versions = make_versions(store, name, *gates)
    before = None
    for version, verdict in zip(versions, gates, strict=True):
        if verdict == "pass":
            promote(store, name, version, before)
            before = version
    return versions


def champion(store: MlflowStore, name: str) -> str | None:
    return store.alias_version(name, "champion")


def moves(store: MlflowStore, name: str) -> list[tuple[str, str | None, str | None]]:
    return [(e.action, e.from_version, e.to_version) for e in read_history(store, name)]


# A process that waits for a start signal, then moves champion: two of them race.
RACE_LOST = 3  # a racer refused by the registry; a crash exits 1
RACER = """
import sys, time
from pathlib import Path
from edgeproof.config import RegistryConfig, TrackingConfig
from edgeproof.errors import RegistryConflict
from edgeproof.tracking.champion import move_champion
from edgeproof.tracking.mlflow_store import MlflowStore

name, version, expected, folder = sys.argv[1:5]
store = MlflowStore(TrackingConfig())
store.alias_version(name, "champion")  # connected and warm before the start signal
Path(folder, f"ready-{version}").touch()
while not Path(folder, "go").exists():
    time.sleep(0.005)
try:
    move_champion(store, RegistryConfig(), name, to_version=version, expected=expected,
                  action="promote", run=f"racer-{version}", reason="race")
except RegistryConflict as exc:
    print(exc)
    sys.exit(3)  # RACE_LOST
"""


def registry_params(tmp_path: Path) -> Path:
    """A minimal params.yaml in ``tmp_path`` for the registry commands (model ``cli``)."""
    params = {
        "model": {"name": "cli", "path": "model.onnx"},
        "data": {"eval": "eval.npz", "calibration": "calibration.npz"},
        "targets": {"onnxruntime-cpu": {"recipes": [{"name": "dyn", "method": "dynamic"}]}},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


# --- a gated winner, logged with (signed) evidence and promoted: what a device pulls

SIGNED_TARGET = "onnxruntime-cpu"  # the target of a published, signed champion


@dataclass
class Published:
    model: str
    run_id: str
    version: str
    key: Ed25519PrivateKey
    params: Path
    model_files: dict[str, bytes]


def public_b64(key: Ed25519PrivateKey) -> str:
    """The base64 public key of ``key``, as params and `--public-key` take it."""
    return public_key_b64(key.public_key())


def publish(
    store: MlflowStore,
    folder: Path,
    tiny_model: Path,
    tiny_data: dict[str, Path],
    key: Ed25519PrivateKey | None,
) -> Published:
    """A gated winner logged by ``log_target`` (signed with ``key``) and promoted."""
    model = f"pull{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    files = (shutil.copy(tiny_model, folder / "tiny.onnx"),)
    (folder / "tiny.onnx.data").write_bytes(b"external weights")  # a second model file
    files = (Path(files[0]), folder / "tiny.onnx.data")
    params = {
        "model": {"name": model, "path": "tiny.onnx"},
        "data": {"eval": str(tiny_data["eval"]), "calibration": str(tiny_data["calibration"])},
        "targets": {SIGNED_TARGET: {"recipes": [{"name": "dyn", "method": "dynamic"}]}},
    }
    params_file = folder / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    lineage = Lineage(
        git_sha=None, git_branch=None, git_dirty=None, params_sha256="0" * 64, dvc_md5={}
    )
    candidate = Candidate(
        target=SIGNED_TARGET, name="fp32", files=files, recipe={}, precision="fp32"
    )
    verdict = Verdict(candidate="fp32", status="pass", checks=(), reasons=())
    outcome = TargetOutcome(
        target=SIGNED_TARGET,
        available=True,
        reason="fastest",
        baseline="fp32",
        outcomes=(CandidateOutcome(candidate=candidate, summary=None, verdict=verdict),),
        winner="fp32",
        status="pass",
    )
    experiment = store.experiment(model)
    parent = store.start_run(experiment, "pipeline")
    context = EvidenceContext(
        pipeline_run_id=parent,
        target=SIGNED_TARGET,
        lineage=lineage,
        root=folder,
        params_file=params_file,
        eval_data=tiny_data["eval"],
        calibration_data=tiny_data["calibration"],
        signing_key=key,
    )
    _, runs = log_target(store, experiment, parent, outcome, None, context)
    run = RunInfo(
        run_name=f"{model}-run",
        model=model,
        mlflow_run_id=parent,
        mlflow_experiment_id=experiment,
        tracking_uri=store.uri,
        started_at="2026-01-01T00:00:00+00:00",
        trigger="test",
        lineage=lineage,
    )
    promotion = register_and_promote(store, REGISTRY, run, outcome, runs, None)
    assert promotion.moved, promotion.reason
    assert promotion.version is not None
    return Published(
        model,
        runs["fp32"],
        promotion.version,
        key or Ed25519PrivateKey.generate(),
        params_file,
        {p.name: p.read_bytes() for p in files},
    )
