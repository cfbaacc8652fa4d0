"""The known targets: every installed target plug-in's ``SPEC``, plus any registered at run time.

A target package declares its name, its params section and its backend once, in ``SPEC``
(a ``TargetSpec``), and is found through the entry-point group ``edgeproof.targets`` (as
MLflow finds its plugins): a team ships its own target as a pip package with an entry point
``NAME = "package.module:SPEC"``; the built-in targets register the same way in
edgeproof's own ``pyproject.toml``. Specs are loaded on first use (a runner needs only its
own runtime: target modules import their runtimes lazily). A test adds a target with one
line, ``register(TargetSpec(...))``; a measurement worker rebuilds any target, installed or
registered, from the references in its ``MeasureJob``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

from edgeproof.config import TargetCommon, TargetModels
from edgeproof.data.feed import FeedLayout
from edgeproof.errors import ConfigError
from edgeproof.records.measurement import MeasureJob, TargetMeasurements
from edgeproof.runtime.plugins import load_plugin, plugin_entry_points
from edgeproof.runtime.refs import import_ref, rebuild_target
from edgeproof.targets.base import Target, TargetSpec

ENTRY_POINT_GROUP = "edgeproof.targets"
# the order edgeproof's own targets are listed in (params sections, runs, reports): the entry
# points say which targets exist, not in which order (setuptools writes them sorted)
OWN_ORDER = (
    "onnxruntime-cpu", "openvino-cpu", "olive", "tflite-cpu", "edgetpu", "llama-cpp", "mlx",
)  # fmt: skip
_registered: dict[str, TargetSpec] = {}


def target_entry_points(own_only: bool = False) -> list[EntryPoint]:
    """The installed target plug-ins: edgeproof's own first (in ``OWN_ORDER``), then the
    others by name; ``own_only`` keeps edgeproof's own (the reference page documents those)."""
    return plugin_entry_points(ENTRY_POINT_GROUP, OWN_ORDER, own_only)


def load_spec(ep: EntryPoint) -> TargetSpec:
    """One plug-in's ``SPEC``, checked; a plug-in that fails names itself in one line."""
    return load_plugin(ep, "target", TargetSpec)


@functools.cache
def _installed() -> dict[str, TargetSpec]:
    specs = {spec.name: spec for spec in map(load_spec, target_entry_points())}
    if not specs:
        raise ConfigError(
            f"no target is installed (entry-point group {ENTRY_POINT_GROUP!r} is empty): "
            "install edgeproof itself (pip install -e . or make install), not only its folder"
        )
    return specs


def catalogue() -> dict[str, TargetSpec]:
    """Every known target by name: the installed ones first, then the registered ones."""
    return {**_installed(), **_registered}


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
    return import_ref(ref) if ref else None


def target_from_refs(backend: str, config_model: str, target_config: dict[str, Any]) -> Target:
    """Rebuild a target from a job's (or a registered model's) references."""
    return rebuild_target(backend, config_model, target_config)
