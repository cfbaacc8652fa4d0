"""The bundled example rebuilds byte for byte: what dvc.lock records is what a fresh clone's
``make demo`` (``dvc repro``) writes, so the clone stays clean and every run's lineage is
not "dirty"."""

from __future__ import annotations

import hashlib
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


@pytest.mark.slow
def test_fresh_clone_reproduces_dvc_lock(tmp_path: Path) -> None:
    """``dvc repro`` in a fresh clone of HEAD (the ~2 min training included) rebuilds every
    output dvc.lock records and leaves ``git status --porcelain`` empty."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    env = os.environ | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(clone),  # the clone's code, not the installed checkout's
    }
    proc = subprocess.run(
        ["nice", "-n", "10", str(BIN / "dvc"), "repro", "--quiet"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    model = next(o for o in lock["stages"]["train"]["outs"] if o["path"].endswith(".onnx"))
    assert _md5(clone / model["path"]) == model["md5"]
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", status.stdout  # dvc.lock and metrics/ unchanged


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
