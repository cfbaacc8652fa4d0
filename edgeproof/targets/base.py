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
from typing import Annotated, Any, Generic, Literal, Protocol, TypeVar

from pydantic import Field, PositiveFloat

from edgeproof.config import StrictModel, TargetCommon
from edgeproof.data.dataset import Dataset
from edgeproof.errors import InputError
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


@dataclass(frozen=True)
class SearchUnit:
    """A part of the graph a search keeps in float or quantizes as a whole (a transformer
    block's projections, a conv stage, the head): its name and the nodes in it."""

    name: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class SearchPlan:
    """What a ``method: search`` recipe asks: its probes' items and its budget."""

    probe_items: int
    max_probes: int
    max_seconds: float
    max_units: int


class SearchBudget(StrictModel):
    """How much a search may spend before it settles or gives up."""

    max_probes: Annotated[int, Field(ge=2)] = Field(
        64, description="Probes at most (one per unit's sensitivity, then the bisection)."
    )
    max_seconds: PositiveFloat = Field(600.0, description="Seconds of probing at most.")


_SEARCH = {"methods": ["search"]}
ProbeItems = Annotated[
    int,
    Field(
        ge=8,
        description="Calibration items each probe of a search runs (no timing; the eval set "
        "is never used to choose).",
        json_schema_extra=_SEARCH,
    ),
]
MaxUnits = Annotated[
    int,
    Field(
        ge=2,
        le=256,
        description="At most this many units a search groups the graph into (by node-name "
        "prefix: a block's projections, a stage; else runs of nodes in graph order).",
        json_schema_extra=_SEARCH,
    ),
]
Budget = Annotated[
    SearchBudget,
    Field(
        description="The search's budget: probes and seconds at most.", json_schema_extra=_SEARCH
    ),
]


def group_units(names: list[str], max_units: int) -> list[SearchUnit]:
    """Nodes (by name, in graph order) grouped into at most ``max_units`` units.

    Exporters name nodes by the module that made them (``/encoder/layer.3/attention/self/
    query/MatMul``, ``/features/features.4/conv/Conv``): nodes sharing a name prefix are one
    unit (a block's projections, a stage), at the deepest prefix giving at most
    ``max_units`` units; names that say nothing (``node_12``) are cut into runs of nodes in
    graph order instead."""
    if not names:
        return []

    def parts(name: str) -> list[str]:
        return [p for p in name.split("/") if p]

    best: list[SearchUnit] = []
    for depth in range(1, max(len(parts(n)) for n in names)):
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault("/".join(parts(name)[:depth]), []).append(name)
        if len(groups) > max_units:
            break
        if len(groups) > max(len(best), 1):
            best = [SearchUnit(prefix, tuple(nodes)) for prefix, nodes in groups.items()]
    if best:
        return best
    size = -(-len(names) // max_units)
    runs = [names[i : i + size] for i in range(0, len(names), size)]
    return [SearchUnit(f"{r[0]}..{r[-1]}" if len(r) > 1 else r[0], tuple(r)) for r in runs]


class SearchableTarget(Target, Protocol):
    """A target whose optimizer can leave named parts of the graph in float."""

    def search_plan(self, recipe: str) -> SearchPlan | None:
        """The plan of a search recipe; None for any other recipe."""
        ...

    def search_units(self, recipe: str, baseline: Candidate) -> list[SearchUnit]:
        """The graph's units, in graph order (at most the plan's ``max_units``)."""
        ...

    def build_mix(
        self,
        recipe: str,
        baseline: Candidate,
        calibration: Dataset,
        folder: Path,
        keep_float: tuple[str, ...],
    ) -> Candidate:
        """The search's starting recipe with the nodes ``keep_float`` left in float, built
        in ``folder`` (named after the recipe)."""
        ...


def search_plan(target: Target, recipe: str) -> SearchPlan | None:
    """The plan of ``recipe`` when ``target`` can search and it is a search recipe."""
    plan = getattr(target, "search_plan", None)
    return plan(recipe) if plan is not None else None


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

    def search_plan(self, recipe: str) -> SearchPlan | None:
        """The plan of a ``method: search`` recipe (its ``probe_items``, ``max_units`` and
        ``budget`` keys); None for any other recipe."""
        spec: Any = self._recipes[recipe]
        if getattr(spec, "method", None) != "search":
            return None
        budget = spec.budget
        return SearchPlan(spec.probe_items, budget.max_probes, budget.max_seconds, spec.max_units)


def built_by_search(recipe: str) -> InputError:
    """The refusal of ``optimize`` on a search recipe (``pipeline.search`` builds those)."""
    return InputError(f"{recipe}: a search recipe is built by edgeproof's search")


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
