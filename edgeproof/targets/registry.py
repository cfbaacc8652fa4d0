"""Target name -> backend, imported lazily so a runner needs only its own runtime.

The measurement subprocess rebuilds a target from its name and its config section as
JSON, so each backend is constructed from ``(config section)`` alone.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgeproof.config import TargetCommon, TargetsConfig
from edgeproof.errors import ConfigError
from edgeproof.targets.base import Target

# name -> ("module:Class", config field name on TargetsConfig)
_BACKENDS: dict[str, str] = {
    "onnxruntime-cpu": "edgeproof.targets.onnxruntime_cpu:OnnxRuntimeCpu",
    "openvino-cpu": "edgeproof.targets.openvino_cpu:OpenVinoCpu",
    "olive": "edgeproof.targets.olive:Olive",
    "tflite-cpu": "edgeproof.targets.tflite_cpu:TfliteCpu",
    "edgetpu": "edgeproof.targets.edgetpu:EdgeTpu",
    "llama-cpp": "edgeproof.targets.llama_cpp:LlamaCpp",
}


def known_targets() -> list[str]:
    return list(_BACKENDS)


def make_target(name: str, config: TargetCommon) -> Target:
    """Construct the backend for ``name`` with its typed config section."""
    try:
        module_name, class_name = _BACKENDS[name].split(":")
    except KeyError:
        raise ConfigError(f"unknown target {name!r} (known: {', '.join(_BACKENDS)})") from None
    backend = getattr(importlib.import_module(module_name), class_name)
    return backend(config)


def target_from_json(name: str, config: dict[str, Any]) -> Target:
    """Rebuild a target from the JSON form of its config section (subprocess side)."""
    section = TargetsConfig.model_validate({name: config})
    field = next(f for f, info in TargetsConfig.model_fields.items() if (info.alias or f) == name)
    return make_target(name, getattr(section, field))
