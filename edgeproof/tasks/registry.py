"""The task kinds by name: the one place ``model.task`` is turned into its behaviour."""

from __future__ import annotations

from edgeproof.errors import ConfigError
from edgeproof.tasks.base import TaskKind
from edgeproof.tasks.language_model import LanguageModelTask
from edgeproof.tasks.tensor import TENSOR_TASKS

TASK_KINDS: dict[str, TaskKind] = {task.name: task for task in (*TENSOR_TASKS, LanguageModelTask())}


def task_kind(name: str) -> TaskKind:
    """The task kind called ``name`` (params.yaml ``model.task``)."""
    try:
        return TASK_KINDS[name]
    except KeyError:
        known = ", ".join(TASK_KINDS)
        raise ConfigError(
            f"params.yaml: model.task: unknown task {name!r} (known: {known})"
        ) from None
