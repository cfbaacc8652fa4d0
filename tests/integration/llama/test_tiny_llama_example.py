"""The language-model example's DVC stage, for real, with a few seconds of training.

A copy of examples/tiny-llama (its dvc.yaml and params.yaml, and the sources the stage
depends on) in its own git + DVC repository: `dvc repro` trains the byte-level llama on
text shipped with Python, writes it as GGUF and as a Hugging Face folder (checked against
PyTorch through llama.cpp and MLX by the stage itself) with token-window splits and an
importance matrix, and records it in dvc.lock. Even a few seconds of training put its
held-out perplexity far below a uniform model's, which is what makes quantization loss
visible in the full-length demo.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgeproof.tracking.lineage import dvc_changes
from tests.helpers import ROOT, check, write_params

pytestmark = pytest.mark.slow
SOURCES = (
    "examples/tiny-llama/dvc.yaml",
    "examples/tiny-llama/params.yaml",
    "edgeproof/example/tiny_llama.py",
    "edgeproof/targets/llama_cpp/gguf_model.py",
    "edgeproof/targets/mlx/hf_model.py",
)


def test_dvc_repro_builds_the_language_model_example(tmp_path: Path) -> None:
    for rel in SOURCES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    example = tmp_path / "examples" / "tiny-llama"
    params = yaml.safe_load((example / "params.yaml").read_text())
    params["llama_example"]["seconds"] = 6
    write_params(example / "params.yaml", params)
    check(["git", "init", "-q", "-b", "main"], tmp_path)
    check(["dvc", "init", "-q"], tmp_path)
    check(["dvc", "config", "core.analytics", "false"], tmp_path)
    check(["dvc", "repro", "-q", "examples/tiny-llama/dvc.yaml"], tmp_path, timeout=600)

    model = example / "model" / "tiny-llama-f16.gguf"
    lock = (example / "dvc.lock").read_text()
    assert model.is_file() and "tiny-llama-f16.gguf" in lock and "md5" in lock
    with np.load(example / "data" / "eval.npz") as data:
        tokens = data["tokens"]
    assert tokens.shape == (16, 257) and tokens.min() >= 3 and tokens.max() <= 258
    with np.load(example / "data" / "imatrix.npz") as imatrix:
        assert "output.weight" in imatrix and len(imatrix.files) == 1 + 4 * 7
    metrics = json.loads((example / "metrics" / "train.json").read_text())
    assert metrics["heldout_perplexity_per_byte"] < metrics["uniform_perplexity"] / 2
    assert metrics["llama_cpp_top1_agreement"] >= 0.99
    hf = example / "model" / "tiny-llama-hf"  # the same weights for the mlx target
    assert {"config.json", "model.safetensors"} <= {f.name for f in hf.iterdir()}
    assert "tiny-llama-hf" in lock and metrics["hf_bytes"] > 0
    assert metrics["mlx_top1_agreement"] >= 0.99  # MLX reads them as PyTorch computed
    assert 3.4e6 < metrics["params"] < 3.7e6
    status = check(["dvc", "status", "examples/tiny-llama/dvc.yaml"], tmp_path)
    assert "changed" not in status and "modified" not in status, status
    # the example's own pipeline is what `edgeproof run --params examples/tiny-llama/...`
    # checks against dvc.lock (the DVC repository is two folders up)
    assert dvc_changes(example) == []
    model.unlink()
    (change,) = dvc_changes(example)
    assert "tiny-llama-f16.gguf: deleted (stage train)" in change
    assert dvc_changes(tmp_path) is None  # no pipeline of its own at the repository root
