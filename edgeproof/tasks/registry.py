"""The task kinds by name: the one place ``model.task`` is turned into its behaviour.

A task kind is one module with a ``TaskKind`` instance, found through the entry-point group
``edgeproof.tasks`` (as targets are through ``edgeproof.targets``): a team ships its own kind
as a pip package with an entry point ``NAME = "package.module:KIND"``; edgeproof's own kinds
register the same way in its ``pyproject.toml``.
"""

from __future__ import annotations

import functools

from edgeproof.config import GateModels
from edgeproof.errors import ConfigError
from edgeproof.runtime.plugins import load_plugin, plugin_entry_points
from edgeproof.tasks.base import TaskKind

ENTRY_POINT_GROUP = "edgeproof.tasks"
OWN_ORDER = ("classification", "embedding", "regression", "raw", "language_model")


@functools.cache
def task_kinds() -> dict[str, TaskKind]:
    """Every installed task kind by name, edgeproof's own first."""
    eps = plugin_entry_points(ENTRY_POINT_GROUP, OWN_ORDER)
    kinds = {ep.name: load_plugin(ep, "task kind", TaskKind) for ep in eps}
    if not kinds:
        raise ConfigError(
            f"no task kind is installed (entry-point group {ENTRY_POINT_GROUP!r} is empty): "
            "install edgeproof itself (pip install -e . or make install), not only its folder"
        )
    return kinds


def task_kind(name: str) -> TaskKind:
    """The task kind called ``name`` (params.yaml ``model.task``)."""
    kind = find_task_kind(name)
    if kind is None:
        known = ", ".join(task_kinds())
        raise ConfigError(f"params.yaml: model.task: unknown task {name!r} (known: {known})")
    return kind


def find_task_kind(name: str) -> TaskKind | None:
    """The task kind called ``name``, or None when none is installed under it."""
    return task_kinds().get(name)


def gate_models() -> GateModels:
    """(name, model) of each task kind's own ``gates`` section (``TaskKind.gate_section``)."""
    return tuple(
        (name, kind.gate_section)
        for name, kind in task_kinds().items()
        if kind.gate_section is not None
    )
