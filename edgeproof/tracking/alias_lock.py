"""A mutex in the MLflow registry, so alias moves are compare-and-set across processes.

MLflow has no compare-and-set for aliases. Creating a registered model is atomic (a unique
name in the backend store: the second creator gets RESOURCE_ALREADY_EXISTS, through a
server or directly on sqlite), so the lock is a registered model ``<name>.edgeproof-lock``
that exists while one process moves the aliases of ``<name>``. Its tags say who holds it and
since when; a lock older than ``stale_seconds`` (its holder died) is broken and recorded.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

from edgeproof.errors import RegistryConflict
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.mlflow_store import MlflowStore

LOCK_SUFFIX = ".edgeproof-lock"
_DESCRIPTION = "edgeproof: held while a run moves the aliases of {name}; delete it if stale."


def lock_name(name: str) -> str:
    return f"{name}{LOCK_SUFFIX}"


def _holder_age(tags: dict[str, str]) -> float:
    try:
        return time.time() - float(tags[tagnames.LOCK_SINCE])
    except (KeyError, ValueError):
        return float("inf")  # a lock without a readable time is treated as stale


@contextmanager
def alias_lock(
    store: MlflowStore,
    name: str,
    owner: str,
    timeout_seconds: float,
    stale_seconds: float,
    poll_seconds: float = 0.25,
) -> Iterator[list[str]]:
    """Hold the registry lock of ``name``; yields notes (e.g. a stale lock was broken)."""
    lock = lock_name(name)
    token = uuid.uuid4().hex
    tags = {
        tagnames.LOCK_OWNER: f"{owner} (pid {os.getpid()} on {socket.gethostname()})",
        tagnames.LOCK_TOKEN: token,
        tagnames.LOCK_SINCE: f"{time.time():.3f}",
    }
    notes: list[str] = []
    deadline = time.monotonic() + timeout_seconds
    while not store.create_model_if_absent(lock, tags, _DESCRIPTION.format(name=name)):
        held = store.registered_model_tags(lock)
        if not held:  # released between our create and our read: try again now
            continue
        if held.get(tagnames.LOCK_TOKEN) == token:  # our create landed; its answer was lost
            break
        if _holder_age(held) > stale_seconds:
            # re-read just before deleting: only the stale holder's lock is broken
            if store.registered_model_tags(lock).get(tagnames.LOCK_TOKEN) == held.get(
                tagnames.LOCK_TOKEN
            ):
                store.delete_model(lock)
                notes.append(f"broke a stale registry lock held by {_who(held)}")
            continue
        if time.monotonic() > deadline:
            raise RegistryConflict(
                f"registry lock {lock!r} is held by {_who(held)}; try again later, "
                f"or delete that registered model if its run is gone"
            )
        time.sleep(poll_seconds)
    try:
        yield notes
    finally:
        if store.registered_model_tags(lock).get(tagnames.LOCK_TOKEN) == token:
            store.delete_model(lock)


def _who(tags: dict[str, str]) -> str:
    since = tags.get(tagnames.LOCK_SINCE)
    when = ""
    if since:
        with suppress(ValueError):
            when = " since " + datetime.fromtimestamp(float(since), UTC).isoformat(
                timespec="seconds"
            )
    return tags.get(tagnames.LOCK_OWNER, "an unknown process") + when
