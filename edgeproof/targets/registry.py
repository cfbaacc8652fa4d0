"""The known targets: each built-in target module's ``SPEC``, plus any registered at run time.

A target module declares its name, its params section and its backend once, in ``SPEC``;
this module lists the modules, not the names. They are imported on first use (a runner
needs only its own runtime: the modules import their runtimes lazily). A test adds a
target with one line, ``register(TargetSpec(...))``; a measurement worker rebuilds any
target, registered or built in, from the references in its ``MeasureJob``.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeproof.config import TargetCommon, TargetModels
from edgeproof.errors import ConfigError
from edgeproof.feed import FeedLayout
from edgeproof.records.measurement import MeasureJob, TargetMeasurements
from edgeproof.targets.base import Target, TargetSpec

BUILTIN_MODULES = (
    "edgeproof.targets.onnxruntime_cpu",
    "edgeproof.targets.openvino_cpu",
    "edgeproof.targets.olive",
    "edgeproof.targets.tflite_cpu",
    "edgeproof.targets.edgetpu",
    "edgeproof.targets.llama_cpp",
    "edgeproof.targets.mlx",
)
_registered: dict[str, TargetSpec] = {}


@functools.cache
def _builtin() -> dict[str, TargetSpec]:
    specs = (importlib.import_module(module).SPEC for module in BUILTIN_MODULES)
    return {spec.name: spec for spec in specs}


def catalogue() -> dict[str, TargetSpec]:
    """Every known target by name: the built-in ones first, then the registered ones."""
    return {**_builtin(), **_registered}


def register(spec: TargetSpec) -> TargetSpec:
    """Add (or replace) a target; returns it. ``unregister`` takes it away again."""
    _registered[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _registered.pop(name, None)


def known_targets() -> list[str]:
    return list(catalogue())


def target_models() -> TargetModels:
    """(name, params section model) of every known target: what ``targets:`` may hold."""
    return tuple((name, spec.config) for name, spec in catalogue().items())


def target_spec(name: str) -> TargetSpec:
    try:
        return catalogue()[name]
    except KeyError:
        known = ", ".join(catalogue())
        raise ConfigError(f"unknown target {name!r} (known: {known})") from None


def make_target(name: str, config: TargetCommon) -> Target:
    """Construct the backend for ``name`` with its typed config section."""
    return target_spec(name).backend(config)


def measure_job(
    name: str,
    section: TargetCommon,
    eval_data: Path,
    labels_key: str,
    outputs_dir: Path,
    feed: FeedLayout | None = None,
) -> MeasureJob:
    """What the measurement workers of target ``name`` need to rebuild it and run it."""
    spec = target_spec(name)
    return MeasureJob(
        target=name,
        backend=spec.backend_ref,
        config_model=spec.config_ref,
        target_config=section.model_dump(mode="json", by_alias=True),
        eval_data=eval_data,
        labels_key=labels_key,
        threads=section.threads,
        outputs_dir=outputs_dir,
        feed=(feed or FeedLayout()).to_json(),
    )


def target_harness(name: str) -> Callable[..., TargetMeasurements] | None:
    """The harness target ``name`` measures its candidates with, if it brings its own."""
    ref = target_spec(name).harness
    return _import(ref) if ref else None


def target_from_refs(backend: str, config_model: str, target_config: dict[str, Any]) -> Target:
    """Rebuild a target in a measurement worker from a job's references."""
    config = _import(config_model).model_validate(target_config)
    return _import(backend)(config)


def _import(ref: str) -> Any:
    module, _, qualname = ref.partition(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found
