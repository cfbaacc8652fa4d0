"""The interface every target backend implements, and what a loaded model looks like.

A target turns the user's model into candidates on disk (the baseline first, then one per
recipe) and knows how to load a candidate into a ``Session``. Evaluation and measurement
are written once against ``Session``, so every runtime is measured the same way.
In the gate, ``open_session`` is only ever called inside the measurement subprocess: a
runtime that aborts on a bad file (llama.cpp's GGML_ASSERT, a native crash) takes down that
process, never the pipeline. Serving a champion (``edgeproof.device.serving``, MLflow's pyfunc)
calls it in the loading process, on files that already loaded in the gate.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from edgeproof.config import TargetCommon
from edgeproof.data.dataset import Dataset
from edgeproof.measure.session import Session
from edgeproof.records import Candidate


@dataclass(frozen=True)
class Availability:
    """Whether a target can run here; ``reason`` says why not."""

    ok: bool
    reason: str | None = None
    runtime_version: str | None = None


class Target(Protocol):
    """A runtime on a device, e.g. ``onnxruntime-cpu``."""

    name: str

    def available(self) -> Availability: ...

    def recipes(self) -> list[str]:
        """Names of the optimization recipes configured for this target."""
        ...

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        """The reference candidate made from the user's model. ``calibration``: for a target
        whose reference is itself calibrated (edgetpu: the full-int8 model on the CPU);
        the others ignore it."""
        ...

    def optimize(
        self, recipe: str, baseline: Candidate, calibration: Dataset, workdir: Path
    ) -> Candidate:
        """Build one candidate; raises on failure (that recipe fails, the others go on)."""
        ...

    def open_session(self, candidate: Candidate, threads: int) -> Session: ...


def fresh_dir(path: Path) -> Path:
    """``path`` as a new empty folder (a previous build there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


RecipeConfig = TypeVar("RecipeConfig")


class RecipeTarget(Generic[RecipeConfig]):
    """Shared part of targets whose config section lists named ``recipes``."""

    def __init__(self, config: RecipeConfig) -> None:
        self.config = config
        self._recipes = {r.name: r for r in config.recipes}  # type: ignore[attr-defined]

    def recipes(self) -> list[str]:
        """Names of the optimization recipes configured for this target."""
        return list(self._recipes)


ModelFormat = Literal["onnx", "gguf"]  # the model file a target takes (and a task kind gives)


@dataclass(frozen=True)
class TargetSpec:
    """A target plug-in: its public name, its params section and its backend, declared once.

    The registry (``edgeproof.targets.registry``) collects the built-in targets' ``SPEC``;
    a test registers its own with ``register(TargetSpec(...))``. A measurement worker
    rebuilds the backend from ``backend_ref`` / ``config_ref`` alone.
    """

    name: str
    config: type[TargetCommon]
    backend: Callable[[Any], Target]
    model_format: ModelFormat
    # ``module:function`` measuring this target's candidates itself (the language-model
    # runtimes: llama.cpp, MLX); None: the task kind's harness (``measure.harness``)
    harness: str | None = None

    @property
    def backend_ref(self) -> str:
        return _ref(self.backend)

    @property
    def config_ref(self) -> str:
        return _ref(self.config)


def _ref(obj: Any) -> str:
    """``module:QualName`` of a class, importable in another process."""
    return f"{obj.__module__}:{obj.__qualname__}"
