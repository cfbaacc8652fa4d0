"""The alias history of a registered model, kept in the registry itself.

MLflow keeps no history of alias moves (mlflow#2169), so edgeproof appends one registered
model tag per event: ``edgeproof.audit.000001`` -> JSON of an ``AliasEvent``. Sequence
numbers are assigned while holding the model's registry lock (``alias_lock``), so two
writers never take the same number. The history lives with the model: any MLflow client
or the UI's tag list shows it, and ``edgeproof history`` prints it.
"""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from typing import Literal

from edgeproof.records import Record
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.mlflow_store import MlflowStore

Action = Literal["promote", "rollback", "refused", "kept", "unrecorded"]
MOVES: frozenset[str] = frozenset({"promote", "rollback", "unrecorded"})  # the alias moved


class AliasEvent(Record):
    """One change (or refused change) of an alias; versions are None when unset."""

    seq: int
    time: str  # ISO 8601 UTC
    action: Action
    alias: str
    from_version: str | None
    to_version: str | None
    run: str | None  # the pipeline run (or flow run) that asked for it
    actor: str
    reason: str


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_actor() -> str:
    """Who is acting: the GitHub actor in Actions, else the local user name."""
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return f"github:{actor}"
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def read_history(store: MlflowStore, name: str) -> list[AliasEvent]:
    """Every recorded event of ``name``, oldest first; empty if the model has none."""
    tags = store.registered_model_tags(name)
    events = [
        AliasEvent.model_validate_json(value)
        for key, value in tags.items()
        if key.startswith(tagnames.AUDIT_PREFIX)
    ]
    return sorted(events, key=lambda e: e.seq)


def append_event(
    store: MlflowStore,
    name: str,
    *,
    action: Action,
    alias: str,
    from_version: str | None,
    to_version: str | None,
    run: str | None,
    reason: str,
) -> AliasEvent:
    """Record one event with the next sequence number. Call it under ``alias_lock``."""
    history = read_history(store, name)
    event = AliasEvent(
        seq=(history[-1].seq + 1) if history else 1,
        time=now_utc(),
        action=action,
        alias=alias,
        from_version=from_version,
        to_version=to_version,
        run=run,
        actor=current_actor(),
        reason=reason[:2000],
    )
    store.set_registered_model_tag(
        name, f"{tagnames.AUDIT_PREFIX}{event.seq:06d}", event.model_dump_json()
    )
    return event


def last_recorded(history: list[AliasEvent], alias: str) -> str | None:
    """Where the history says ``alias`` points now (None if never set)."""
    for event in reversed(history):
        if event.alias == alias and event.action in MOVES:
            return event.to_version
    return None
