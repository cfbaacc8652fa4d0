"""A plug-in shipped as its own pip package, and a small project to gate with it.

Both third-party tests (a target, a task kind) write a one-module package with an entry
point, install it with pip ``--target`` (put on ``PYTHONPATH``, as a team's package would
be installed), and gate the same 16 -> 64 -> 4 MLP on random data.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.helpers import write_npz, write_params

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "{distribution}"
version = "0.1.0"

[project.entry-points."{group}"]
{name} = "{module}:{attribute}"

[tool.setuptools]
py-modules = ["{module}"]
"""


def install_plugin(
    tmp_path: Path, group: str, name: str, module: str, attribute: str, source: str
) -> dict[str, str]:
    """Install the one-module package ``module`` (entry point ``name`` in ``group``); the
    environment that makes it importable."""
    package = tmp_path / "plugin"
    package.mkdir()
    distribution = module.replace("_", "-")
    (package / "pyproject.toml").write_text(PYPROJECT.format(**locals()))
    (package / f"{module}.py").write_text(source)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(package)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert any(site.glob(f"{module}-*.dist-info/entry_points.txt"))
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def mlp_classifier(path: Path) -> None:
    """A 16 -> 64 -> 4 MLP in ONNX."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(16, 64)).astype(np.float32)
    w2 = rng.normal(size=(64, 4)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "w2"], ["logits"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        [onnx.numpy_helper.from_array(w1, "w1"), onnx.numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def mlp_project(tmp_path: Path, params: dict[str, Any]) -> Path:
    """A project folder: the MLP, 200 eval and 40 calibration items, ``params`` (the data
    and model path added)."""
    project = tmp_path / "project"
    project.mkdir()
    mlp_classifier(project / "model.onnx")
    rng = np.random.default_rng(1)
    for split, n in (("eval", 200), ("calibration", 40)):
        x = rng.normal(size=(n, 16)).astype(np.float32)
        write_npz(project / f"{split}.npz", input=x, labels=np.arange(n) % 4)
    model = {"path": "model.onnx", "num_classes": 4, **params.get("model", {})}
    data = {"eval": "eval.npz", "calibration": "calibration.npz"}
    rest = {key: value for key, value in params.items() if key != "model"}
    write_params(project / "params.yaml", {"model": model, "data": data, **rest})
    return project
