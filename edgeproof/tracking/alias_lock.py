"""A mutex in the MLflow registry, so alias moves are compare-and-set across processes.

MLflow has no compare-and-set for aliases. Creating a registered model is atomic (a unique
name in the backend store: the second creator gets RESOURCE_ALREADY_EXISTS, through a
server or directly on sqlite), so the lock is a registered model ``<name>.edgeproof-lock``
that exists while one process moves the aliases of ``<name>``. It is created with its tags
in one request: who holds it, since when, and a token. A lock older than ``stale_seconds``
(its holder died) is broken and recorded.

Every wait is bounded and polite: each failed attempt checks the deadline and sleeps
(backing off with jitter up to ``MAX_POLL_SECONDS``), whatever the lock holds. A lock
edgeproof did not make (no owner or time tag, an unreadable or future time) or one this
identity cannot manage (MLflow gives MANAGE to a name's creator: another user made it) is
foreign: refused at once (``ForeignName``), never deleted, never waited on.
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

from edgeproof.errors import RegistryConflict
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.access import ForeignName, can_manage, identity
from edgeproof.tracking.mlflow_store import MlflowStore

LOCK_SUFFIX = ".edgeproof-lock"
MAX_POLL_SECONDS = 2.0  # the longest sleep between two attempts (backoff ceiling)
FUTURE_TOLERANCE_SECONDS = 300.0  # a lock "since" further ahead than this was not made by us
_DESCRIPTION = "edgeproof: held while a run moves the aliases of {name}; delete it if stale."


def lock_name(name: str) -> str:
    return f"{name}{LOCK_SUFFIX}"


def _holder_age(tags: dict[str, str]) -> float:
    return time.time() - float(tags[tagnames.LOCK_SINCE])


def not_edgeproofs(tags: dict[str, str]) -> str | None:
    """Why a lock with these tags was not made by edgeproof; None when it was."""
    if not tags.get(tagnames.LOCK_OWNER) or not tags.get(tagnames.LOCK_SINCE):
        return "it has no owner/time tags"
    try:
        since = float(tags[tagnames.LOCK_SINCE])
    except ValueError:
        return f"its time tag {tags[tagnames.LOCK_SINCE][:40]!r} is not a time"
    if since - time.time() > FUTURE_TOLERANCE_SECONDS:
        return "its time tag is in the future"
    return None


def created_by_another(store: MlflowStore) -> str:
    """Why a lock edgeproof made is still foreign: this identity may not manage it."""
    return f"{identity(store)} cannot manage it: another user created it"


def foreign_lock(lock: str, name: str, why: str) -> ForeignName:
    """The one-line refusal of a foreign lock: what it is and what an admin does."""
    return ForeignName(
        f"registry lock {lock!r} is not edgeproof's ({why}): promotions of {name} are "
        f"held while it exists; an MLflow admin deletes that registered model (and asks "
        f"who created it)"
    )


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
    wait = poll_seconds
    vetted: set[str | None] = set()  # tokens of holders this identity may manage
    while not store.create_model_if_absent(lock, tags, _DESCRIPTION.format(name=name)):
        found = store.registered_model(lock)
        held = None if found is None else dict(found.tags)
        if held is not None:  # None: released between our create and our read
            if held.get(tagnames.LOCK_TOKEN) == token:  # our create landed; its answer was lost
                break
            _refuse_foreign(store, lock, name, held, vetted)
            if _holder_age(held) > stale_seconds and _break(store, lock, held):
                notes.append(f"broke a stale registry lock held by {_who(held)}")
                wait = poll_seconds
        if time.monotonic() > deadline:
            raise RegistryConflict(
                f"registry lock {lock!r} is held by {_who(held or {})}; try again later, "
                f"or delete that registered model if its run is gone"
            )
        time.sleep(min(wait * random.uniform(0.5, 1.0), max(deadline - time.monotonic(), 0)))
        wait = min(wait * 1.5, MAX_POLL_SECONDS)
    try:
        yield notes
    finally:
        if store.registered_model_tags(lock).get(tagnames.LOCK_TOKEN) == token:
            store.delete_model(lock)


def _refuse_foreign(
    store: MlflowStore, lock: str, name: str, held: dict[str, str], vetted: set[str | None]
) -> None:
    """Raise ``ForeignName`` if the lock holding ``held`` is not one edgeproof may wait on.

    The permission is asked once per holder; a "no" counts only if the same lock still
    exists afterwards (a released lock's name answers with the default permission)."""
    why = not_edgeproofs(held)
    if why is None:
        holder = held.get(tagnames.LOCK_TOKEN)
        if holder in vetted:
            return
        if can_manage(store, lock):
            vetted.add(holder)
            return
        if not _still(store, lock, held):
            return  # released or replaced meanwhile: the next attempt decides
        why = created_by_another(store)
    raise foreign_lock(lock, name, why)


def _break(store: MlflowStore, lock: str, held: dict[str, str]) -> bool:
    """Delete a stale lock if it is still the one read (re-read just before deleting)."""
    if not _still(store, lock, held):
        return False
    store.delete_model(lock)
    return True


def _still(store: MlflowStore, lock: str, held: dict[str, str]) -> bool:
    """Whether the lock exists with the very tags read before."""
    found = store.registered_model(lock)
    return found is not None and dict(found.tags) == held


def _who(tags: dict[str, str]) -> str:
    since = tags.get(tagnames.LOCK_SINCE)
    when = ""
    if since:
        with suppress(ValueError):
            when = " since " + datetime.fromtimestamp(float(since), UTC).isoformat(
                timespec="seconds"
            )
    return tags.get(tagnames.LOCK_OWNER, "an unknown process") + when
