"""Moving the ``champion`` alias: compare-and-set, audited, and rollback.

Every move happens under the model's registry lock: re-read the alias, compare it with
what the caller expects (the champion when its run started), refuse and record the refusal
if it differs, else move it and record the event. A champion moved outside edgeproof (the
MLflow UI, the API, a run that died between its move and its record) is noticed at the next
move and recorded as ``unrecorded`` before anything else happens.
"""

from __future__ import annotations

from edgeproof.config import RegistryConfig
from edgeproof.errors import RegistryConflict, RegistryRefused
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.alias_lock import alias_lock
from edgeproof.tracking.audit import (
    MOVES,
    Action,
    AliasEvent,
    append_event,
    current_actor,
    last_recorded,
    read_history,
)
from edgeproof.tracking.mlflow_store import MlflowStore


def move_champion(
    store: MlflowStore,
    registry: RegistryConfig,
    name: str,
    *,
    to_version: str,
    expected: str | None,
    action: Action,
    run: str | None,
    reason: str,
) -> AliasEvent:
    """Point ``champion`` of ``name`` at ``to_version`` if it still points at ``expected``."""
    alias = registry.champion_alias
    owner = run or current_actor()
    with alias_lock(
        store, name, owner, registry.lock_timeout_seconds, registry.lock_stale_seconds
    ) as notes:
        current = store.alias_version(name, alias)
        recorded = last_recorded(read_history(store, name), alias)
        if current != recorded:
            append_event(
                store,
                name,
                action="unrecorded",
                alias=alias,
                from_version=recorded,
                to_version=current,
                run=None,
                reason="moved outside edgeproof (MLflow UI or API), or by a run that "
                "died before recording it; noticed now",
            )
        suffix = f" ({'; '.join(notes)})" if notes else ""
        if current != expected:
            why = (
                f"{alias} moved from {_v(expected)} to {_v(current)} while this run worked; "
                f"not moving it to {to_version}: re-run to compare with the new {alias}"
            )
            append_event(
                store,
                name,
                action="refused",
                alias=alias,
                from_version=current,
                to_version=to_version,
                run=run,
                reason=f"{reason}; refused: {why}{suffix}",
            )
            raise RegistryConflict(f"{name}: {why}")
        store.set_alias(name, alias, to_version)
        return append_event(
            store,
            name,
            action=action,
            alias=alias,
            from_version=current,
            to_version=to_version,
            run=run,
            reason=reason + suffix,
        )


def keep_champion(
    store: MlflowStore,
    registry: RegistryConfig,
    name: str,
    *,
    champion: str,
    run: str | None,
    reason: str,
) -> AliasEvent:
    """Record that this run's winner left ``champion`` where it is (no alias moves)."""
    alias = registry.champion_alias
    with alias_lock(
        store,
        name,
        run or current_actor(),
        registry.lock_timeout_seconds,
        registry.lock_stale_seconds,
    ):
        return append_event(
            store,
            name,
            action="kept",
            alias=alias,
            from_version=champion,
            to_version=champion,
            run=run,
            reason=reason,
        )


def _v(version: str | None) -> str:
    return f"version {version}" if version else "unset"


def previous_champion(history: list[AliasEvent], alias: str, current: str) -> str | None:
    """The champion before ``current`` was promoted (undoing a rollback is not "previous")."""
    moves = [e for e in history if e.alias == alias and e.action in MOVES]
    into_current = [e for e in moves if e.to_version == current]
    promoted = [e for e in into_current if e.action in ("promote", "unrecorded")]
    chosen = (promoted or into_current or [None])[-1]
    return chosen.from_version if chosen else None


def rollback(
    store: MlflowStore,
    registry: RegistryConfig,
    name: str,
    *,
    reason: str,
    to_version: str | None = None,
    force: bool = False,
    run: str | None = None,
) -> AliasEvent:
    """Move ``champion`` back to the previous champion, or to ``to_version``."""
    alias = registry.champion_alias
    if not reason.strip():
        raise RegistryRefused("a rollback needs a reason (--reason)")
    current = store.alias_version(name, alias)
    if current is None:
        raise RegistryRefused(f"{name} has no {alias!r} alias to roll back")
    if to_version is None:
        to_version = previous_champion(read_history(store, name), alias, current)
        if to_version is None:
            raise RegistryRefused(
                f"{name}: no champion before version {current} is recorded; pass --to VERSION"
            )
    tags = store.version_tags(name, to_version)
    if tags is None:
        raise RegistryRefused(f"{name} has no version {to_version}")
    if to_version == current:
        raise RegistryRefused(f"{name}: version {to_version} is the {alias} already")
    gates = tags.get(tagnames.GATES)
    if gates != "pass" and not force:
        raise RegistryRefused(
            f"{name}: version {to_version} never passed its gates "
            f"({tagnames.GATES}={gates or 'unset'}); use --force to roll back to it anyway"
        )
    note = "" if gates == "pass" else f" (forced: {tagnames.GATES}={gates or 'unset'})"
    return move_champion(
        store,
        registry,
        name,
        to_version=to_version,
        expected=current,
        action="rollback",
        run=run,
        reason=reason.strip() + note,
    )
