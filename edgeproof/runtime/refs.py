"""References to code as ``"package.module:Qualified.name"`` strings, and the moves they survive.

A measurement job, a registered model's MLflow flavor and a target's harness name the
classes and functions they need by reference, so a subprocess (or a serving process years
later) rebuilds them without the caller's objects. References written before the engine's
modules moved into packages still resolve: ``MOVED`` maps each old module to its new home.
"""

from __future__ import annotations

import importlib
from typing import Any

# old module -> new module (0.1: engine modules moved into packages; targets are packages)
MOVED = {
    "edgeproof.serving": "edgeproof.device.serving",
    "edgeproof.targets.onnxruntime_cpu": "edgeproof.targets.onnxruntime_cpu.target",
    "edgeproof.targets.openvino_cpu": "edgeproof.targets.openvino_cpu.target",
    "edgeproof.targets.olive": "edgeproof.targets.olive.target",
    "edgeproof.targets.tflite_cpu": "edgeproof.targets.tflite_cpu.target",
    "edgeproof.targets.edgetpu": "edgeproof.targets.edgetpu.target",
    "edgeproof.targets.llama_cpp": "edgeproof.targets.llama_cpp.target",
    "edgeproof.targets.mlx": "edgeproof.targets.mlx.target",
    "edgeproof.llama.harness": "edgeproof.targets.llama_cpp.harness",
    "edgeproof.mlx.harness": "edgeproof.targets.mlx.harness",
}


def import_ref(ref: str) -> Any:
    """The object ``ref`` names (``module:qualname``), following ``MOVED`` for old modules."""
    module, _, qualname = ref.partition(":")
    found: Any = importlib.import_module(MOVED.get(module, module))
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def rebuild_target(backend: str, config_model: str, target_config: dict[str, Any]) -> Any:
    """A target backend rebuilt from references (a measurement worker, a serving process)."""
    config = import_ref(config_model).model_validate(target_config)
    return import_ref(backend)(config)
