"""A plug-in target that fails on demand, for the candidate-fault catalogue.

``faulty-ort`` is ONNX Runtime (a real runtime, real candidates) with one fault injected
into every candidate but its baseline, where ``fail_at`` says:

- ``optimize``      the optimizer raises (the candidate never has a file)
- ``open_session``  loading the candidate in the measurement worker raises
- ``run``           the candidate's session raises on every call
- ``outputs``       the session returns maps (as skl2onnx's ZipMap does), not tensors
- ``baseline``      building the baseline raises a bug (not an EdgeproofError): the target
                    itself errs, the run's other targets go on

``main`` registers it in-process and runs the ``edgeproof`` command, so a test starts
``python -c "from tests.e2e.reliability.faulty_target import main; main()" run ...``; the
measurement workers rebuild it from its references (``tests`` on ``PYTHONPATH``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgeproof.data.dataset import Dataset
from edgeproof.records import Candidate
from edgeproof.targets.base import TargetSpec
from edgeproof.targets.onnxruntime_cpu.target import (
    OnnxRuntimeCpu,
    OnnxRuntimeTargetConfig,
    OrtSession,
)

NAME = "faulty-ort"
Fault = Literal["optimize", "open_session", "run", "outputs", "baseline"]


class FaultyConfig(OnnxRuntimeTargetConfig):
    fail_at: Fault


class FaultySession:
    """An ONNX Runtime session that raises on every call, or answers with maps."""

    def __init__(self, inner: OrtSession, fault: str) -> None:
        self._inner = inner
        self._fault = fault
        self.inputs = inner.inputs
        self.output_names = inner.output_names
        self.info = inner.info

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[Any]:
        outputs = self._inner.run(feeds)
        if self._fault == "run":
            raise RuntimeError("injected fault: the session failed to run")
        maps = [{i: float(v) for i, v in enumerate(row)} for row in outputs[0]]
        return [np.array(maps, dtype=object)]


class FaultyOrt(OnnxRuntimeCpu):
    name = NAME
    config: FaultyConfig

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        if self.config.fail_at == "baseline":
            raise KeyError("injected bug while building the baseline")
        return super().baseline(model, workdir, calibration).model_copy(update={"target": NAME})

    def optimize(
        self, recipe: str, baseline: Candidate, calibration: Dataset, workdir: Path
    ) -> Candidate:
        if self.config.fail_at == "optimize":
            raise RuntimeError("injected fault: the optimizer crashed")
        built = super().optimize(recipe, baseline, calibration, workdir)
        return built.model_copy(update={"target": NAME})

    def open_session(self, candidate: Candidate, threads: int) -> Any:
        fault = self.config.fail_at
        if candidate.is_baseline or fault in ("optimize", "baseline"):
            return super().open_session(candidate, threads)
        if fault == "open_session":
            raise RuntimeError("injected fault: the candidate does not load")
        return FaultySession(super().open_session(candidate, threads), fault)


SPEC = TargetSpec(NAME, FaultyConfig, FaultyOrt, model_format="onnx")


def main() -> None:
    from edgeproof.cli.app import main as command
    from edgeproof.targets.registry import register

    register(SPEC)
    command()
