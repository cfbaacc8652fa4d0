"""The registry names a project needs, claimed by the CI identity and checked before work.

For each (model, target) edgeproof needs ``<model>.<target>`` (versions, aliases, the audit
tags) and its lock ``<model>.<target>.edgeproof-lock`` (which exists only while a run moves
the aliases: its creation is the mutex, so it cannot be made in advance). On a server with
MLflow's auth app, any user allowed to create registered models can create either name
first and hold MANAGE on it; then CI cannot register versions, or every promotion waits.

The experiment ``<model>`` (where runs are logged) is a name too. ``claim_names``
(``edgeproof registry init``, and ``deploy/stack.sh start``) creates it and every absent
``<model>.<target>`` as the calling identity, so they are CI's before anyone else's;
``check_names`` (at the start of every run, before any work) refuses in one line a name
that exists and is not CI's, with what an admin does about it.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeproof.config import RegistryConfig
from edgeproof.tracking.access import ForeignName, identity, permission
from edgeproof.tracking.alias_lock import (
    created_by_another,
    foreign_lock,
    lock_name,
    not_edgeproofs,
)
from edgeproof.tracking.mlflow_store import MlflowStore, mlflow_errors

_DESCRIPTION = "edgeproof: versions and aliases of {model} on {target} (claimed by CI)."


@dataclass(frozen=True)
class NameState:
    """One registry name and what was found (or done) about it."""

    name: str
    state: str  # created | ours | absent | held | foreign
    detail: str


def required_names(registry: RegistryConfig, model: str, targets: list[str]) -> list[str]:
    """Every registered model name the targets of ``model`` need, locks included."""
    names = [registry.registered_name(model, target) for target in targets]
    return [n for name in names for n in (name, lock_name(name))]


def foreign_model(store: MlflowStore, name: str) -> ForeignName | None:
    """The refusal for an existing ``name`` this identity cannot manage; None if it can
    (or it does not exist)."""
    found = permission(store, name)
    if found is None or found == "MANAGE" or store.registered_model(name) is None:
        return None
    who = identity(store)
    return ForeignName(
        f"registered model {name!r} exists and {who} cannot manage it ({found}): another "
        f"user created it first; an MLflow admin deletes it, or grants {who} MANAGE on it "
        f"and takes MANAGE from its creator"
    )


def check_names(
    store: MlflowStore, registry: RegistryConfig, model: str, targets: list[str]
) -> None:
    """Raise ``ForeignName`` for the first name of ``model``'s targets that is not CI's."""
    for state in _states(store, registry, model, targets, claim=False):
        if state.state == "foreign":
            raise ForeignName(state.detail)


def claim_names(
    store: MlflowStore, registry: RegistryConfig, model: str, targets: list[str]
) -> list[NameState]:
    """Create the experiment ``<model>`` and every absent ``<model>.<target>`` as this
    identity; the state of each name."""
    return _states(store, registry, model, targets, claim=True)


def _states(
    store: MlflowStore, registry: RegistryConfig, model: str, targets: list[str], claim: bool
) -> list[NameState]:
    states = [_experiment_state(store, model, claim)]
    for target in targets:
        name = registry.registered_name(model, target)
        states.append(_model_state(store, name, model, target, claim))
        states.append(_lock_state(store, name))
    return states


def _experiment_state(store: MlflowStore, model: str, claim: bool) -> NameState:
    """The experiment runs of ``model`` are logged to: this identity must write runs to it."""
    label = f"experiment {model!r}"
    with mlflow_errors(f"read experiment {model!r}"):
        found = store.client.get_experiment_by_name(model)
    if found is None:
        if not claim:
            return NameState(label, "absent", "created by this run")
        store.experiment(model)
        return NameState(label, "created", f"created as {identity(store)} (MANAGE)")
    granted = permission(store, found.experiment_id, kind="experiment")
    if granted in (None, "EDIT", "MANAGE"):
        return NameState(label, "ours", f"{identity(store)} writes runs to it")
    who = identity(store)
    return NameState(
        label,
        "foreign",
        f"experiment {model!r} exists and {who} cannot write runs to it ({granted}): another "
        f"user created it first; an MLflow admin deletes it, or grants {who} EDIT on it",
    )


def _model_state(store: MlflowStore, name: str, model: str, target: str, claim: bool) -> NameState:
    if store.registered_model(name) is None:
        if not claim:
            return NameState(name, "absent", "created by this run's first registration")
        description = _DESCRIPTION.format(model=model, target=target)
        if store.create_model_if_absent(name, {}, description):
            return NameState(name, "created", f"created as {identity(store)} (MANAGE)")
    refused = foreign_model(store, name)
    if refused is not None:
        return NameState(name, "foreign", str(refused))
    return NameState(name, "ours", f"{identity(store)} manages it")


def _lock_state(store: MlflowStore, name: str) -> NameState:
    lock = lock_name(name)
    found = store.registered_model(lock)
    if found is None:
        return NameState(lock, "absent", "exists only while a run moves the aliases")
    why = not_edgeproofs(dict(found.tags))
    if why is None and foreign_model(store, lock) is not None:
        why = created_by_another(store)
    if why is not None:
        return NameState(lock, "foreign", str(foreign_lock(lock, name, why)))
    return NameState(lock, "held", "held by a run moving the aliases now")
