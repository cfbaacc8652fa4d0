"""Who may manage a registered model, asked of MLflow's auth app (``--app-name basic-auth``).

MLflow 3.17's auth app answers ``GET /api/2.0/mlflow/users/current`` (who the caller is) and
``GET /api/3.0/mlflow/users/permissions/get`` (a user's effective permission on a resource,
resolved as a real request would be; any user may ask about itself). A server without the
auth app answers 404 and a local store has no users: there every name is manageable.

Any user allowed to create registered models may create any name, and MLflow gives the
creator MANAGE on it; so a name edgeproof needs can exist and not be the CI identity's. Such
a name is ``ForeignName``: one line naming it and what an admin does, never broken, never
waited on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeproof.errors import RegistryRefused
from edgeproof.tracking.mlflow_store import MlflowStore, mlflow_errors

CURRENT_USER = "/api/2.0/mlflow/users/current"
USER_PERMISSION = "/api/3.0/mlflow/users/permissions/get"


class ForeignName(RegistryRefused):
    """A registry name edgeproof needs exists and is not the CI identity's to manage."""


@dataclass(frozen=True)
class User:
    """The identity a store's requests act as, on a server with MLflow's auth app."""

    name: str
    is_admin: bool


_USERS: dict[tuple[str, str | None], User | None] = {}


def current_user(store: MlflowStore) -> User | None:
    """Who this store acts as; None when there is no access control (asked once per
    server and user name)."""
    if not store.uri.startswith(("http://", "https://")):
        return None
    from mlflow.utils.credentials import read_mlflow_creds

    key = (store.uri, read_mlflow_creds().username)
    if key not in _USERS:
        with mlflow_errors("ask the tracking server who this client is"):
            response = _get(store.uri, CURRENT_USER, {})
            if response.status_code == 404:  # no auth app on this server
                _USERS[key] = None
            else:
                _check(response, CURRENT_USER)
                user = response.json()["user"]
                _USERS[key] = User(str(user["username"]), bool(user.get("is_admin")))
    return _USERS[key]


def permission(store: MlflowStore, name: str, kind: str = "registered_model") -> str | None:
    """This identity's permission on registered model ``name`` (or on the experiment whose
    id is ``name``, ``kind="experiment"``): ``READ``, ``EDIT``, ``MANAGE``...; None when the
    store has no access control."""
    user = current_user(store)
    if user is None:
        return None
    if user.is_admin:
        return "MANAGE"
    params = {"username": user.name, "resource_type": kind, "resource_id": name}
    with mlflow_errors(f"read the permission of {user.name!r} on {kind} {name!r}"):
        response = _get(store.uri, USER_PERMISSION, params)
        _check(response, USER_PERMISSION)
        return str(response.json().get("permission") or "NO_PERMISSIONS")


def can_manage(store: MlflowStore, name: str) -> bool:
    """Whether this identity holds MANAGE on ``name`` (True without access control)."""
    found = permission(store, name)
    return found is None or found == "MANAGE"


def identity(store: MlflowStore) -> str:
    """The user name a message should name ("this identity" without access control)."""
    user = current_user(store)
    return repr(user.name) if user else "this identity"


def _get(uri: str, endpoint: str, params: dict[str, str]) -> Any:
    """One GET of the auth app (a ``requests.Response``), with the store's credentials."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    return http_request(
        get_default_host_creds(uri), endpoint, "GET", params=params, max_retries=2, timeout=30
    )


def _check(response: Any, endpoint: str) -> None:
    from mlflow.utils.rest_utils import verify_rest_response

    verify_rest_response(response, endpoint)
