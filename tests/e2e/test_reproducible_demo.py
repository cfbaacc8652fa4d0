"""The bundled example: what dvc.lock records is what a fresh clone's ``make demo`` restores
(the trained models from the committed reference remote, the splits rebuilt byte for byte),
so the clone stays clean and every run's lineage is not "dirty"; training on this machine is
deterministic and reaches the reference's metrics."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edgeproof.config import ExampleConfig
from edgeproof.example.data import prepare_splits
from edgeproof.example.train import train_and_export
from tests.helpers import ROOT

BIN = Path(sys.executable).parent
SMALL = ExampleConfig(image_size=16, eval_size=300, calibration_size=100, epochs=1)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_splits_are_the_same_bytes_at_another_time(tmp_path: Path) -> None:
    first = prepare_splits(SMALL, tmp_path / "a")
    time.sleep(2.1)  # zip timestamps have a 2-second resolution
    again = prepare_splits(SMALL, tmp_path / "b")
    assert {k: _md5(p) for k, p in first.items()} == {k: _md5(p) for k, p in again.items()}


def test_training_and_export_are_byte_deterministic(tmp_path: Path) -> None:
    import torch

    prepare_splits(SMALL, tmp_path / "splits")
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    runs = []
    for name in ("a", "b"):
        metrics = train_and_export(SMALL, tmp_path / "splits", tmp_path / f"{name}.onnx",
                                   tmp_path / f"{name}.json")  # fmt: skip
        runs.append((_md5(tmp_path / f"{name}.onnx"), (tmp_path / f"{name}.json").read_bytes()))
        assert "train_seconds" not in metrics  # a timing would differ on every run
    assert runs[0] == runs[1]
    # the caller's settings come back
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def _clone_env(clone: Path) -> dict[str, str]:
    return os.environ | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(clone),  # the clone's code, not the installed checkout's
    }


def _lock_outputs(lock_file: Path) -> dict[str, str]:
    """Every cached output dvc.lock records: path (from the repository root) -> md5."""
    lock = yaml.safe_load(lock_file.read_text())
    folder = lock_file.parent
    return {
        str((folder / out["path"]).resolve()): out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }


def test_fresh_clone_example_restores_dvc_lock_and_stays_clean(tmp_path: Path) -> None:
    """A fresh clone's ``make example`` takes the trained models from the reference remote
    committed with the repository, rebuilds the rest, and leaves ``git status`` empty on any
    CPU (training rounds differently on AVX2, AVX-512 and AMX, so it is not re-run)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = _clone_env(clone)
    commands = [
        # `make example` itself, with this venv (the clone's own install step is skipped)
        ["make", "-o", "install-demo", "example", f"VENV={BIN.parent}"],
        # and the language-model example's DVC steps of `make demo-llama`
        [str(BIN / "dvc"), "pull", "--quiet", "--remote", "reference", "--allow-missing",
         "examples/tiny-llama/dvc.yaml"],
        [str(BIN / "dvc"), "repro", "examples/tiny-llama/dvc.yaml"],
    ]  # fmt: skip
    for command in commands:
        proc = subprocess.run(
            command, cwd=clone, env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"
        assert not re.search(r"Running stage '[^']*train'", proc.stdout + proc.stderr), command
    for path, md5 in {
        **_lock_outputs(clone / "dvc.lock"),
        **_lock_outputs(clone / "examples" / "tiny-llama" / "dvc.lock"),
    }.items():
        assert (Path(path)).exists(), path
        if not md5.endswith(".dir"):
            assert _md5(Path(path)) == md5, path
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", status.stdout  # dvc.lock and metrics/ unchanged


@pytest.mark.slow
def test_training_reproduces_the_reference_metrics(tmp_path: Path) -> None:
    """Training itself still works and reaches what the reference model records
    (metrics/train.json), within what another CPU's rounding may move: the check is on the
    metrics, not the bytes."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    config = ExampleConfig(**params["example"])
    prepare_splits(config, tmp_path / "splits")
    got = train_and_export(config, tmp_path / "splits", tmp_path / "m.onnx", tmp_path / "m.json")
    reference = json.loads((ROOT / "metrics" / "train.json").read_text())
    assert got["params"] == reference["params"]
    assert got["train_images"] == reference["train_images"]
    assert got["onnx_bytes"] == reference["onnx_bytes"]
    assert abs(got["eval_accuracy"] - reference["eval_accuracy"]) <= 0.02, (got, reference)
    assert got["onnx_matches_torch_within"] <= reference["onnx_matches_torch_within"]


# pyproject extra each target needs (onnxruntime-cpu: core dependencies only)
TARGET_EXTRAS = {
    "onnxruntime-cpu": set(),
    "openvino-cpu": {"openvino"},
    "olive": {"olive"},
    "tflite-cpu": {"tflite"},
    "edgetpu": {"tflite"},
    "llama-cpp": {"llama"},
    "mlx": {"mlx"},
}


def _installed_extras(target: str, tmp_path: Path) -> set[str]:
    """The extras `make TARGET` would pip-install into a new venv (dry run)."""
    proc = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (extras,) = re.findall(r'pip install --quiet -e "\.\[([^\]]*)\]"', proc.stdout)
    return set(extras.split(","))


@pytest.mark.parametrize(
    ("make_target", "params"),
    [("demo", "params.yaml"), ("demo-llama", "examples/tiny-llama/params.yaml")],
)
def test_demo_installs_what_its_params_enable_and_nothing_else(
    tmp_path: Path, make_target: str, params: str
) -> None:
    targets = yaml.safe_load((ROOT / params).read_text())["targets"]
    enabled = [name for name, spec in targets.items() if spec.get("enabled", True)]
    needed = {"example"}.union(*(TARGET_EXTRAS[name] for name in enabled))
    assert _installed_extras(make_target, tmp_path) == needed
