"""Resolve a run's inputs before any work: params, targets, model, data, lineage.

Everything that can be checked cheaply is checked here, so bad input fails in a second
with one line and nothing written: the params file, the requested targets, the model path
(inside the project, no symlink loops, a valid ONNX graph) and the data files (readable,
finite, matching the model's declared inputs, labels for a classifier).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeproof.config import (
    LlamaCppTargetConfig,
    Params,
    TargetCommon,
    TargetsConfig,
    load_params,
)
from edgeproof.data import Dataset, LabelKind, label_kind, load_dataset
from edgeproof.errors import ConfigError, InputError, TargetUnavailable
from edgeproof.measure.harness import MeasureJob
from edgeproof.onnx_model import check_data_matches, check_onnx
from edgeproof.records import Lineage
from edgeproof.targets.base import InputSpec
from edgeproof.tracking.lineage import collect_lineage, dvc_changes


@dataclass(frozen=True)
class ResolvedInputs:
    """Validated inputs of one run; paths are absolute."""

    params: Params
    params_file: Path
    root: Path  # the project folder (params.yaml's folder)
    targets: dict[str, TargetCommon]  # selected, enabled targets by public name
    model: Path
    model_inputs: list[InputSpec]
    eval_data: Path
    calibration_data: Path
    lineage: Lineage
    warnings: tuple[str, ...] = ()

    @property
    def label_kind(self) -> LabelKind:
        """Class ids for classification, target values for regression (else unused)."""
        return label_kind(self.params.model.task)

    def load_eval(self, allow_nonfinite: bool = False) -> Dataset:
        return load_dataset(
            self.eval_data, self.params.data.labels_key, allow_nonfinite, self.label_kind
        )

    def load_calibration(self, allow_nonfinite: bool = False) -> Dataset:
        return load_dataset(
            self.calibration_data, self.params.data.labels_key, allow_nonfinite, self.label_kind
        )

    def measure_job(self, target: str, outputs_dir: Path) -> MeasureJob:
        """What the measurement workers of ``target`` need: its config, data, threads."""
        section = self.targets[target]
        return MeasureJob(
            target=target,
            target_config=section.model_dump(mode="json", by_alias=True),
            eval_data=self.eval_data,
            labels_key=self.params.data.labels_key,
            threads=section.threads,
            outputs_dir=outputs_dir,
        )


def project_path(root: Path, value: Path, what: str) -> Path:
    """``value`` resolved against ``root``; refuses paths escaping it and symlink loops."""
    try:
        resolved = (root / value).resolve(strict=False)
    except (RuntimeError, OSError) as exc:  # RuntimeError: symlink loop on Python 3.11
        raise InputError(f"{what} path cannot be resolved ({exc}): {value}") from None
    if not resolved.is_relative_to(root):
        raise InputError(f"{what} path escapes the project folder {root}: {value}")
    return resolved


def select_targets(params: Params, requested: list[str] | None) -> dict[str, TargetCommon]:
    """The enabled targets, restricted to ``requested`` when given."""
    enabled = params.targets.enabled()
    if not requested:
        return enabled
    known = TargetsConfig.names()
    chosen: dict[str, TargetCommon] = {}
    for name in requested:
        if name not in known:
            raise ConfigError(f"unknown target {name!r} (known: {', '.join(known)})")
        if name not in enabled:
            raise ConfigError(f"target {name!r} is not enabled in params.yaml (targets.{name})")
        chosen[name] = enabled[name]
    return chosen


def require_available(targets: dict[str, TargetCommon]) -> None:
    """Raise TargetUnavailable when none of ``targets`` can run in this process.

    For an embedded run (targets gated in this process): a run where every target is
    unavailable can only end in error, so it is refused before anything is written.
    """
    from edgeproof.targets.registry import make_target

    reasons = []
    for name, section in targets.items():
        availability = make_target(name, section).available()
        if availability.ok:
            return
        reasons.append(f"{name}: {availability.reason}")
    raise TargetUnavailable(f"no selected target can run here ({'; '.join(reasons)})")


def resolve_inputs(params_file: Path, requested: list[str] | None = None) -> ResolvedInputs:
    """Load params and check model and data; raises ConfigError or InputError."""
    params_file = params_file.resolve()
    params = load_params(params_file)
    root = params_file.parent
    targets = select_targets(params, requested)
    warnings = _dvc_sync(root, params.data.dvc_sync)  # first: the cause of any odd file
    model = project_path(root, params.model.path, "model")
    if params.model.task == "language_model":
        return _resolve_language_model(params, params_file, root, targets, model, warnings)
    specs = check_onnx(model)
    if params.model.input_name is not None and params.model.input_name not in {
        s.name for s in specs
    }:
        raise ConfigError(
            f"params.yaml: model.input_name: {params.model.input_name!r} is not an input of "
            f"the model (inputs: {', '.join(s.name for s in specs)})"
        )
    eval_path = project_path(root, params.data.eval, "eval data")
    calib_path = project_path(root, params.data.calibration, "calibration data")
    labels_key = params.data.labels_key
    gated = params.data.checks.enabled  # the data gate reports values and labels in full
    task = params.model.task
    kind = label_kind(task)
    for path, what in ((eval_path, "eval"), (calib_path, "calibration")):
        data = load_dataset(path, labels_key, allow_nonfinite=gated, label_kind=kind)
        check_data_matches(specs, data, what)
        if what == "eval" and task == "classification":
            _check_labels(data, params.model.num_classes, path, check_range=not gated)
        if what == "eval" and task == "regression" and data.labels is None:
            raise InputError(
                f"eval data has no {labels_key!r} array (a regression needs targets): {path}"
            )
    return ResolvedInputs(
        params=params,
        params_file=params_file,
        root=root,
        targets=targets,
        model=model,
        model_inputs=specs,
        eval_data=eval_path,
        calibration_data=calib_path,
        lineage=collect_lineage(root, params_file),
        warnings=warnings,
    )


def _resolve_language_model(
    params: Params,
    params_file: Path,
    root: Path,
    targets: dict[str, TargetCommon],
    model: Path,
    warnings: tuple[str, ...],
) -> ResolvedInputs:
    """A GGUF model, token-window data files and the recipes' importance matrices."""
    from edgeproof.llama.harness import TOKENS_KEY, load_token_windows
    from edgeproof.targets.llama_cpp import check_gguf

    check_gguf(model)
    paths = {}
    for what, value in (("eval", params.data.eval), ("calibration", params.data.calibration)):
        paths[what] = project_path(root, value, f"{what} data")
        load_token_windows(paths[what])
    return ResolvedInputs(
        params=params,
        params_file=params_file,
        root=root,
        targets={name: _absolute_imatrices(root, s) for name, s in targets.items()},
        model=model,
        model_inputs=[InputSpec(TOKENS_KEY, np.dtype(np.int32), (None, None))],
        eval_data=paths["eval"],
        calibration_data=paths["calibration"],
        lineage=collect_lineage(root, params_file),
        warnings=warnings,
    )


def _absolute_imatrices(root: Path, section: TargetCommon) -> TargetCommon:
    """A llama-cpp section with every recipe's importance matrix as a checked project path."""
    if not isinstance(section, LlamaCppTargetConfig):
        return section
    recipes = []
    for recipe in section.recipes:
        if recipe.imatrix is not None:
            path = project_path(root, recipe.imatrix, f"recipe {recipe.name} imatrix")
            if not path.is_file():
                raise InputError(f"recipe {recipe.name}: no importance matrix at {path}")
            recipe = recipe.model_copy(update={"imatrix": path})
        recipes.append(recipe)
    return section.model_copy(update={"recipes": recipes})


def _dvc_sync(root: Path, policy: str) -> tuple[str, ...]:
    """Refuse (or warn about) DVC-tracked files that differ from dvc.lock."""
    if policy == "off":
        return ()
    changes = dvc_changes(root)
    if not changes:
        return ()
    what = "; ".join(changes)
    if policy == "refuse":
        raise InputError(
            f"files out of sync with dvc.lock: {what} (run `dvc pull` or `dvc repro`, "
            "or set data.dvc_sync: warn)"
        )
    return (f"files out of sync with dvc.lock: {what}",)


def _check_labels(data: Dataset, num_classes: int, path: Path, check_range: bool) -> None:
    if data.labels is None:
        raise InputError(f"eval data has no labels array (a classifier needs them): {path}")
    if not check_range:
        return
    bad = (data.labels < 0) | (data.labels >= num_classes)
    if bad.any():
        raise InputError(
            f"eval labels outside 0..{num_classes - 1} (e.g. {int(data.labels[bad][0])}): {path}"
        )
