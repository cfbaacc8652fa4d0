"""Resolve a run's inputs before any work: params, targets, task kind, model, data, lineage.

Everything that can be checked cheaply is checked here, so bad input fails in a second
with one line and nothing written: the params file, the requested targets (known, enabled,
taking the task's model format), the model path (inside the project, no symlink loops, the
task kind's opening check) and the data files (readable, finite, what the task needs).
The task kind is chosen here, once, and travels with the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeproof.config import Params, TargetCommon
from edgeproof.data.dataset import Dataset, load_dataset
from edgeproof.data.feed import FeedLayout
from edgeproof.data.streaming import carried_states
from edgeproof.errors import ConfigError, InputError, TargetUnavailable
from edgeproof.evaluate.custom_metric import load_metric
from edgeproof.gates.champion_policy import SourceKey, params_digest
from edgeproof.onnx.model import ONNXRUNTIME_TARGETS, check_onnxruntime_loads
from edgeproof.params.model import load_params
from edgeproof.records import Lineage
from edgeproof.records.measurement import InputSpec, MeasureJob
from edgeproof.targets.registry import known_targets, make_target, measure_job, target_spec
from edgeproof.tasks.base import TaskKind
from edgeproof.tasks.registry import task_kind
from edgeproof.tracking.lineage import collect_lineage, content_md5, dvc_changes
from edgeproof.tracking.mlflow_model import ServingContext
from edgeproof.tracking.signing import signing_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class ResolvedInputs:
    """Validated inputs of one run; paths are absolute."""

    params: Params
    params_file: Path
    root: Path  # the project folder (params.yaml's folder)
    task: TaskKind
    targets: dict[str, TargetCommon]  # selected, enabled targets by public name
    model: Path
    model_inputs: list[InputSpec]
    feed: FeedLayout  # item axes, constants and streaming state of the model's inputs
    eval_data: Path
    calibration_data: Path
    lineage: Lineage
    warnings: tuple[str, ...] = ()

    def load_eval(self, allow_nonfinite: bool = False) -> Dataset:
        return load_dataset(
            self.eval_data,
            self.params.data.labels_key,
            allow_nonfinite,
            self.task.label_kind,
            self.feed,
        )

    def load_calibration(self, allow_nonfinite: bool = False) -> Dataset:
        """The calibration split; a streaming state it leaves out is filled with the states
        the model itself carries through the items (calibration sees real states)."""
        data = load_dataset(
            self.calibration_data,
            self.params.data.labels_key,
            allow_nonfinite,
            self.task.label_kind,
            self.feed,
        )
        if set(self.feed.states) - set(data.inputs):
            return carried_states(self.model, data)
        return data

    def load_truth(self) -> Any:
        """What the task scores candidates against on the eval split."""
        return self.task.load_truth(self.eval_data, self.params, self.root, self.feed)

    @cached_property
    def model_md5(self) -> str:
        """The model's content md5 (DVC's md5, for a file); hashed on first use only, when a
        champion is compared or a winner registered, not at every start."""
        return content_md5(self.model)

    @cached_property
    def data_md5(self) -> str:
        """The eval and calibration files' content md5, hashed once (the data gate's cache
        key and the source of every candidate)."""
        return content_md5(self.eval_data, self.calibration_data)

    def source(self, target: str) -> SourceKey:
        """What ``target``'s candidates are made from: model and data contents, and the
        params of model (with the target's recipes), data and gates."""
        # as written in params.yaml: ``targets`` holds the sections with absolute paths
        section = self.params.targets.enabled()[target].model_dump(mode="json")
        return SourceKey(
            model_md5=self.model_md5,
            data_md5=self.data_md5,
            model_params=params_digest(
                {"model": self.params.model.model_dump(mode="json"), target: section}
            ),
            data_params=params_digest(self.params.data.model_dump(mode="json")),
            gates_params=params_digest(self.params.gates.model_dump(mode="json")),
        )

    def signing_key(self) -> Ed25519PrivateKey | None:
        """The key that signs each verdict's evidence (``params.signing``), or None."""
        return signing_key(self.root, self.params.signing)

    def serving_context(self, target: str) -> ServingContext:
        """How ``target``'s candidates load as MLflow Models: the target's references and
        the first eval item as the example; for a language model, the first eval token
        window and the signature ``tokens`` (its dtype) -> float32 ``logits``."""
        job = self.measure_job(target, self.root)
        example, signature = self.task.serving_example(self.eval_data, self.params, self.feed)
        return ServingContext(
            job.backend,
            job.config_model,
            job.target_config,
            example,
            signature=signature,
            observed=self.feed.observed or None,
        )

    def measure_job(self, target: str, outputs_dir: Path) -> MeasureJob:
        """What the measurement workers of ``target`` need: its config, data, threads."""
        return measure_job(
            target,
            self.targets[target],
            self.eval_data,
            self.params.data.labels_key,
            outputs_dir,
            self.feed,
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
    known = known_targets()
    chosen: dict[str, TargetCommon] = {}
    for name in requested:
        if name not in known:
            raise ConfigError(f"unknown target {name!r} (known: {', '.join(known)})")
        if name not in enabled:
            raise ConfigError(f"target {name!r} is not enabled in params.yaml (targets.{name})")
        chosen[name] = enabled[name]
    return chosen


def check_targets_fit(task: TaskKind, targets: dict[str, TargetCommon]) -> None:
    """Every enabled target takes the model file the task kind gives."""
    for name in targets:
        wanted = target_spec(name).model_format
        if wanted != task.model_format:
            raise ConfigError(
                f"params.yaml: target {name!r} needs {_FORMATS[wanted]}; model.task is "
                f"{task.name!r} (disable it, or set model.task)"
            )


_FORMATS = {"onnx": "an ONNX model", "gguf": "a GGUF language model"}


def require_available(targets: dict[str, TargetCommon]) -> None:
    """Raise TargetUnavailable when none of ``targets`` can run in this process.

    For an embedded run (targets gated in this process): a run where every target is
    unavailable can only end in error, so it is refused before anything is written.
    """
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
    task = task_kind(params.model.task)
    check_targets_fit(task, params.targets.enabled())
    targets = select_targets(params, requested)
    warnings = _dvc_sync(root, params.data.dvc_sync)  # first: the cause of any odd file
    model = project_path(root, params.model.path, "model")
    specs = task.inspect_model(model, params)
    if task.model_format == "onnx" and ONNXRUNTIME_TARGETS & targets.keys():
        check_onnxruntime_loads(model)  # an opset or op it lacks: refused before any work
    if params.model.metric is not None:  # imported now: a broken metric file stops here
        if not task.takes_metric:
            raise ConfigError(f"params.yaml: model.metric: not for a {task.name} task")
        load_metric(root, params.model.metric)
    signing_key(root, params.signing)  # a missing or malformed key stops the run here
    paths = {
        what: project_path(root, value, f"{what} data")
        for what, value in (("eval", params.data.eval), ("calibration", params.data.calibration))
    }
    feed = task.feed_layout(model, params, paths["eval"])  # the data settles what it can
    for what, path in paths.items():
        task.check_data(path, what, specs, params, feed)
    feed, seen = task.observe(model, params, paths["eval"], feed)  # as the model really runs
    warnings = (*warnings, *seen)
    return ResolvedInputs(
        params=params,
        params_file=params_file,
        root=root,
        task=task,
        targets={
            name: section.with_project_paths(lambda v, what: _project_file(root, v, what))
            for name, section in targets.items()
        },
        model=model,
        model_inputs=specs,
        feed=feed,
        eval_data=paths["eval"],
        calibration_data=paths["calibration"],
        lineage=collect_lineage(root, params_file),
        warnings=warnings,
    )


def _project_file(root: Path, value: Path, what: str) -> Path:
    """A file or folder a target section names, as a checked project path that exists."""
    path = project_path(root, value, what)
    if not path.exists():
        raise InputError(f"{what}: not found: {path}")
    return path


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
