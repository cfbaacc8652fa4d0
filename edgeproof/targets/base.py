"""The interface every target backend implements, and what a loaded model looks like.

A target turns the user's model into candidates on disk (the baseline first, then one per
recipe) and knows how to load a candidate into a ``Session``. Evaluation and measurement
are written once against ``Session``, so every runtime is measured the same way.
In the gate, ``open_session`` is only ever called inside the measurement subprocess: a
runtime that aborts on a bad file (llama.cpp's GGML_ASSERT, a native crash) takes down that
process, never the pipeline. Serving a champion (``edgeproof.serving``, MLflow's pyfunc)
calls it in the loading process, on files that already loaded in the gate.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, Protocol, Self, TypeVar, runtime_checkable

import numpy as np
from pydantic import Field, model_validator

from edgeproof.config import PositiveFloat, RecipeTargetConfig, TargetCommon
from edgeproof.data import Dataset
from edgeproof.records import Candidate
from edgeproof.records.measurement import InputSpec


@dataclass(frozen=True)
class Availability:
    """Whether a target can run here; ``reason`` says why not."""

    ok: bool
    reason: str | None = None
    runtime_version: str | None = None


class Session(Protocol):
    """A loaded candidate: canonical inputs in (as in the data files), outputs out."""

    inputs: Sequence[InputSpec]
    output_names: Sequence[str]  # in the order ``run`` returns them
    info: dict[str, Any]  # runtime, version, precision, threads, provider...

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch; returns the outputs in the model's output order."""
        ...


@runtime_checkable
class TimedSession(Session, Protocol):
    """A session the latency harness times (``open_session`` of a measured target)."""

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        """One item (canonical inputs) as the runtime's own inputs, converted once before
        timing (for a full-int8 LiteRT model: quantized), for ``timed_run``."""
        ...

    def timed_run(self, prepared: Any) -> float:
        """Run one prepared item; the milliseconds of the runtime's own inference call,
        timed as the runtime's benchmark tool times it (``info["timed"]`` says how).
        Converting and handing the inputs over and reading the outputs are the calling
        program's: in Python they cost tens of microseconds a call, which would pull
        every sub-millisecond speedup toward 1."""
        ...


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


MIN_TOKEN_TIMINGS = 100  # per candidate: a 99% CI of the p90 needs 51


class TokenTimingConfig(RecipeTargetConfig):
    """Language-model runtimes timed as ``llama-bench`` does: ``pp_tokens`` prompt tokens in
    one batch and ``tg_tokens`` single-token decodes, ``repetitions`` each after
    ``warmup``, in ``rounds`` fresh processes per candidate interleaved with the baseline's;
    ``timeout_seconds`` per subprocess."""

    pp_tokens: Annotated[int, Field(ge=1)] = Field(
        128, description="Prompt tokens processed in one batch per timing (llama-bench's pp)."
    )
    tg_tokens: Annotated[int, Field(ge=1)] = Field(
        32,
        description="Single-token decodes per timing (llama-bench's tg): latency is per "
        "generated token.",
    )
    warmup: Annotated[int, Field(ge=0)] = Field(
        1, description="Untimed runs before the timed repetitions, in each process."
    )
    repetitions: Annotated[int, Field(ge=2)] = Field(
        5, description="Timed repetitions of the prompt and the decodes, in each process."
    )
    rounds: Annotated[int, Field(ge=2)] = Field(
        4,
        description="Fresh processes per candidate, interleaved with the baseline's; rounds "
        "x repetitions x tg_tokens must be at least 100.",
    )
    timeout_seconds: PositiveFloat = Field(
        300.0, description="Seconds per timing subprocess; a candidate over it fails."
    )

    @model_validator(mode="after")
    def _enough_token_timings(self) -> Self:
        timed = self.rounds * self.repetitions * self.tg_tokens
        if timed < MIN_TOKEN_TIMINGS:
            raise ValueError(
                f"rounds x repetitions x tg_tokens = {timed} per-token timings; at least "
                f"{MIN_TOKEN_TIMINGS} are needed for latency percentiles with CIs"
            )
        return self


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
