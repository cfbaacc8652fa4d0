"""The team's own metric (``model.metric``): a function in a Python file of the project.

The file is imported by its path (``importlib``), never unpickled, and must sit inside the
project. The function is called once per candidate, as
``function(outputs, baseline_outputs, truth)`` (outputs: output name -> array, items
first; ``truth``: the eval data's labels / targets array, or None) and must return one
finite score per item. The same function scores the baseline (``function(baseline,
baseline, truth)``); each item's *drop* is how much worse the candidate scores than the
baseline on it, in the metric's direction, so the gates treat every metric alike.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeproof.config import MetricConfig
from edgeproof.errors import ConfigError, MeasurementError

MetricFunction = Callable[
    [dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray | None], np.ndarray
]


@dataclass(frozen=True)
class LoadedMetric:
    """The metric's settings and its function, imported from the project."""

    config: MetricConfig
    function: MetricFunction

    def scores(
        self,
        candidate: str,
        outputs: dict[str, np.ndarray],
        baseline_outputs: dict[str, np.ndarray],
        truth: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(candidate's score, baseline's score, drop) per item."""
        items = len(next(iter(outputs.values())))
        cand = self._call(candidate, outputs, baseline_outputs, truth, items)
        base = self._call("the baseline", baseline_outputs, baseline_outputs, truth, items)
        drop = base - cand if self.config.higher_is_better else cand - base
        return cand, base, drop

    def _call(
        self,
        who: str,
        outputs: dict[str, np.ndarray],
        baseline_outputs: dict[str, np.ndarray],
        truth: np.ndarray | None,
        items: int,
    ) -> np.ndarray:
        name = self.config.function
        try:
            found = self.function(outputs, baseline_outputs, truth)
        except Exception as exc:  # the team's code: its failure is that candidate's error
            first = (str(exc).splitlines() or [""])[0][:200]
            raise MeasurementError(
                f"model.metric {name} failed on {who}: {type(exc).__name__}: {first}"
            ) from None
        scores = np.asarray(found, dtype=np.float64)
        if scores.shape != (items,):
            raise MeasurementError(
                f"model.metric {name} returned shape {scores.shape} for {who}, "
                f"needs one score per item ({items},)"
            )
        if not np.isfinite(scores).all():
            raise MeasurementError(f"model.metric {name} returned NaN or inf for {who}")
        return scores


def load_metric(root: Path, config: MetricConfig) -> LoadedMetric:
    """Import ``config.function`` from the project at ``root``; ConfigError naming the
    problem when the file is missing, outside the project, fails to import or lacks it."""
    where = f"params.yaml: model.metric: {config.function}"
    project = root.resolve()
    path = (project / config.file).resolve()
    if not path.is_relative_to(project):
        raise ConfigError(f"{where}: the file must be inside the project folder {project}")
    if not path.is_file():
        raise ConfigError(f"{where}: file not found: {path}")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"edgeproof_metric_{digest}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{where}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ in the team's folder
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        raise ConfigError(f"{where}: import failed: {type(exc).__name__}: {first}") from None
    finally:
        sys.dont_write_bytecode = writes_bytecode
    function = getattr(module, config.function_name, None)
    if not callable(function):
        raise ConfigError(f"{where}: {config.file} has no function {config.function_name!r}")
    return LoadedMetric(config, function)
