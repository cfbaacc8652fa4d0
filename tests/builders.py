"""Builders for test inputs: real ONNX models made with onnx.helper and .npz data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_tiny_cnn(path: Path, seed: int = 0, size: int = 16, classes: int = 10) -> Path:
    """Conv(8, 3x3) -> Relu -> Flatten -> Gemm(classes); input "input" N x 1 x size x size."""
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


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


def first_output(path: Path) -> np.ndarray:
    """The first output tensor a measurement worker wrote for a candidate."""
    from edgeproof.evaluate import load_outputs

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

    root = Path(__file__).resolve().parents[1]
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
