"""MLflow tracking and registry through ``MlflowClient`` with explicit run ids.

The fluent API keeps the active run in thread-local state, which breaks inside Prefect's
task threads (mlflow#15131), so every call here names its run. Layout (docs/architecture.md):
experiment per model; a parent run per pipeline run; nested runs (tag
``mlflow.parentRunId``) per target and per candidate; a registered model per
(model, target) whose versions point at the winning candidate's logged model files.
Every MLflow failure becomes a one-line ``TrackingError``.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgeproof.config import TrackingConfig
from edgeproof.errors import TrackingError
from edgeproof.tracking import tags as tagnames

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_CHARS = 6000


@contextmanager
def mlflow_errors(action: str) -> Iterator[None]:
    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:  # MlflowException, requests and sqlalchemy errors alike
        raise TrackingError(f"MLflow: cannot {action}: {_describe(exc)}") from None


_SERVER = re.compile(r"API request to (https?://[^/\s]+)")
_DBAPI = re.compile(r"\((\w+(?:\.\w+)*Error)\) ([^\n]+)")
_CAUSE = re.compile(r"\[Errno -?\d+\] ([^'\"()]+)|(timed out)")


def _describe(exc: BaseException) -> str:
    """One short line for an MLflow failure.

    An HTTP failure arrives as urllib3's "Max retries exceeded ... (Caused by ...)" whose
    useful part (the OS error) is at the far end: it becomes "server URL unreachable (why)".
    A database error is the DB-API message, e.g. "attempt to write a readonly database".
    """
    text = str(exc).strip()
    server = _SERVER.search(text)
    if server and "Max retries exceeded" in text:
        cause = _CAUSE.search(text)
        why = (cause.group(1) or cause.group(2)).strip() if cause else "no connection"
        return f"tracking server {server.group(1)} unreachable ({why})"
    database = _DBAPI.search(text)
    if database:  # SQLAlchemy puts hints first; the database's own words say what happened
        return f"{database.group(2).strip()[:160]} ({database.group(1)})"
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def run_owner() -> str:
    """``host:pid`` of this process: who must close the runs it opens."""
    return f"{socket.gethostname()}:{os.getpid()}"


def tracking_uri(config: TrackingConfig) -> str:
    """MLFLOW_TRACKING_URI from the environment wins over params.yaml."""
    return os.environ.get("MLFLOW_TRACKING_URI") or config.uri


class MlflowStore:
    """One MLflow tracking server or local store."""

    def __init__(self, config: TrackingConfig) -> None:
        from mlflow import MlflowClient

        self.uri = tracking_uri(config)
        self._local = not self.uri.startswith(("http://", "https://", "databricks"))
        self._artifact_root = config.artifact_location
        with mlflow_errors(f"open tracking store {self.uri}"):
            self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def experiment(self, name: str) -> str:
        """Id of the experiment ``name``, created on first use."""
        with mlflow_errors(f"get or create experiment {name!r}"):
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return found.experiment_id
            location = None
            if self._local:  # a server decides its own artifact root
                location = self._artifact_root.resolve().as_uri()
            return self.client.create_experiment(name, artifact_location=location)

    def start_run(
        self,
        experiment_id: str,
        name: str,
        parent_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        key: str | None = None,
    ) -> str:
        """A new run tagged with its owner (host:pid); with ``key``, the run already
        started under that key is taken up again instead (a retried task logs into the run
        its first attempt opened, never a second one)."""
        all_tags = {tagnames.OWNER: run_owner(), **(tags or {})}
        if parent_id:
            all_tags[PARENT_TAG] = parent_id
        with mlflow_errors(f"start run {name!r}"):
            if key is not None:
                digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # safe in a filter
                all_tags[tagnames.RUN_KEY] = digest
                found = self.client.search_runs(
                    [experiment_id], f"tags.`{tagnames.RUN_KEY}` = '{digest}'", max_results=1
                )
                if found:
                    run_id = found[0].info.run_id
                    if found[0].info.status != "RUNNING":
                        self.client.update_run(run_id, status="RUNNING")
                    return run_id
            return self.client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id

    def running_runs(self, experiment_id: str) -> list[Any]:
        """The experiment's runs whose status is still RUNNING."""
        with mlflow_errors("search running runs"):
            return list(
                self.client.search_runs(
                    [experiment_id], "attributes.status = 'RUNNING'", max_results=1000
                )
            )

    def log(
        self,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float | None] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Params, metrics (None values dropped) and tags in one batch."""
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        with mlflow_errors(f"log to run {run_id}"):
            self.client.log_batch(
                run_id,
                metrics=[
                    Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if v is not None
                ],
                params=[Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in (params or {}).items()],
                tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
            )

    def log_inputs(self, run_id: str, datasets: list[Any]) -> None:
        """MLflow ``DatasetInput`` entities, listed on the run as its datasets."""
        with mlflow_errors(f"log datasets to run {run_id}"):
            self.client.log_inputs(run_id, datasets=datasets)

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        with mlflow_errors(f"log artifact {path.name}"):
            self.client.log_artifact(run_id, str(path), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        with mlflow_errors(f"log {artifact_file}"):
            self.client.log_text(run_id, text, artifact_file)

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        with mlflow_errors(f"end run {run_id}"):
            self.client.set_terminated(run_id, status)

    def artifact_uri(self, run_id: str, path: str) -> str:
        with mlflow_errors(f"read run {run_id}"):
            return f"{self.client.get_run(run_id).info.artifact_uri}/{path}"

    def register(self, name: str, run_id: str, artifact_path: str, tags: Mapping[str, str]) -> str:
        """Register the run's ``artifact_path`` as a new version of ``name``; its number."""
        from mlflow.exceptions import MlflowException

        source = self.artifact_uri(run_id, artifact_path)
        with mlflow_errors(f"register a version of {name!r}"):
            try:
                self.client.create_registered_model(name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            version = self.client.create_model_version(
                name, source=source, run_id=run_id, tags=dict(tags)
            )
            return str(version.version)

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None (no such model or alias).

        Read from the registered model (its aliases come with it), never by an alias read:
        MLflow's auth app answers an alias read of a model that does not exist with 403,
        where a model read says RESOURCE_DOES_NOT_EXIST (a first run has no champion)."""
        with mlflow_errors(f"read alias {alias!r} of {name!r}"):
            model = self._registered_model(name)
            version = None if model is None else model.aliases.get(alias)
            return None if version is None else str(version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        with mlflow_errors(f"set alias {alias!r} of {name!r}"):
            self.client.set_registered_model_alias(name, alias, version)

    def create_model_if_absent(self, name: str, tags: Mapping[str, str], description: str) -> bool:
        """Create registered model ``name``; False when it existed at that moment.

        The insert is atomic in MLflow. When it collides, MLflow's SQL store reads the
        existing model to word its error; if its holder deleted it in between, that read
        answers RESOURCE_DOES_NOT_EXIST: the name was taken when we tried, so False too
        (the caller tries again).
        """
        from mlflow.exceptions import MlflowException

        with mlflow_errors(f"create registered model {name!r}"):
            try:
                self.client.create_registered_model(name, tags=dict(tags), description=description)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
                    return False
                raise
            return True

    def delete_model(self, name: str) -> None:
        """Delete registered model ``name``; nothing when it is gone already."""
        from mlflow.exceptions import MlflowException

        with mlflow_errors(f"delete registered model {name!r}"):
            try:
                self.client.delete_registered_model(name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise

    def download(self, run_id: str, path: str, dest: Path) -> Path:
        """Download artifact ``path`` (file or folder) of a run into ``dest``."""
        with mlflow_errors(f"download {path} of run {run_id}"):
            return Path(self.client.download_artifacts(run_id, path, str(dest)))

    def version_run_id(
        self, name: str, version: str | None = None, alias: str | None = None
    ) -> str:
        """The run that produced version ``version`` (or the one ``alias`` points at)."""
        what = f"{name}@{alias}" if alias else f"{name}/{version}"
        with mlflow_errors(f"find model version {what}"):
            if alias:
                found = self.client.get_model_version_by_alias(name, alias)
            else:
                found = self.client.get_model_version(name, str(version))
            if not found.run_id:
                raise TrackingError(f"MLflow: model version {what} has no source run")
            return str(found.run_id)

    def baseline_beside(self, run_id: str) -> str | None:
        """The baseline candidate run of the same target run as candidate run ``run_id``."""
        with mlflow_errors(f"read run {run_id}"):
            run = self.client.get_run(run_id)
            parent = run.data.tags.get(PARENT_TAG)
            if parent is None:
                return None
            found = self.client.search_runs(
                [run.info.experiment_id],
                f"tags.`{PARENT_TAG}` = '{parent}' and tags.`edgeproof.baseline` = 'true'",
                max_results=1,
            )
            return found[0].info.run_id if found else None

    def registered_model(self, name: str) -> Any | None:
        """Registered model ``name`` (tags, aliases), or None when there is no such model."""
        with mlflow_errors(f"read registered model {name!r}"):
            return self._registered_model(name)

    def _registered_model(self, name: str) -> Any | None:
        """The model, or None. An auth app in workspace mode answers a read of a name that
        does not exist with 403, not 404: then a search (which lists only what the caller
        may read) tells an absent name from one the caller may not read. A name the search
        lists is read once more: the auth app writes its creator's permission just after
        creating it, so a read racing a creation (a registry lock another run of this
        identity just took) can be refused in between."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            if exc.error_code != "PERMISSION_DENIED":
                raise
            if not self._listed(name):
                return None
        return self.client.get_registered_model(name)  # listed: readable now

    def _listed(self, name: str) -> bool:
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        found = self.client.search_registered_models(f"name = '{quoted}'", max_results=1)
        return any(model.name == name for model in found)

    def registered_model_tags(self, name: str) -> dict[str, str]:
        """Tags of the registered model ``name``; empty when there is no such model."""
        model = self.registered_model(name)
        return {} if model is None else dict(model.tags)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        with mlflow_errors(f"tag registered model {name!r}"):
            self.client.set_registered_model_tag(name, key, value)

    def version_tags(self, name: str, version: str) -> dict[str, str] | None:
        """Tags of version ``version`` of ``name``; None when there is no such version."""
        from mlflow.exceptions import MlflowException

        with mlflow_errors(f"read version {version} of {name!r}"):
            try:
                return dict(self.client.get_model_version(name, version).tags)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    return None
                raise
