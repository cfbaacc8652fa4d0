"""The current champion of a target as a ``Candidate``, fetched from the MLflow registry.

Its model files are downloaded from the run that registered it, so it can be measured beside
this run's winner on this machine, never compared with numbers recorded elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeproof.config import RegistryConfig
from edgeproof.errors import TrackingError
from edgeproof.gates.champion_policy import SourceKey
from edgeproof.records import Candidate
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.evidence import sha256_file
from edgeproof.tracking.mlflow_model import MLFLOW_MODEL_FILES
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.run_log import MODEL_ARTIFACT_DIR


@dataclass(frozen=True)
class ChampionModel:
    """The champion of a registered model: where it is, and its files as a candidate."""

    registered_model: str
    version: str
    run_id: str  # the candidate run that logged its files (and its evidence.json)
    candidate: Candidate
    source: SourceKey | None = None  # what it was made from (None: registered before)


def source_tags(key: SourceKey) -> dict[str, str]:
    """A version's source as model version tags."""
    return {f"{tagnames.SOURCE_PREFIX}{k}": v for k, v in key.as_dict().items()}


def source_from_tags(tags: dict[str, str]) -> SourceKey | None:
    """The source recorded by ``source_tags``; None when it is missing or incomplete."""
    prefix = tagnames.SOURCE_PREFIX
    return SourceKey.from_dict(
        {k[len(prefix) :]: v for k, v in tags.items() if k.startswith(prefix)}
    )


def fetch_champion(
    store: MlflowStore,
    registry: RegistryConfig,
    model: str,
    target: str,
    suffix: str,
    workdir: Path,
    is_baseline: bool = True,
) -> ChampionModel | None:
    """The champion of ``model`` on ``target``, downloaded into ``workdir``; None if unset.

    ``suffix`` names its primary file (e.g. ``.onnx``, ``.xml``); ``is_baseline`` is how it
    is measured: as the baseline beside a winner, or as a candidate against its baseline.
    """
    name = registry.registered_name(model, target)
    version = store.alias_version(name, registry.champion_alias)
    if version is None:
        return None
    run_id = store.version_run_id(name, version=version)
    tags = store.version_tags(name, version) or {}
    candidate = run_candidate(
        store,
        run_id,
        target,
        suffix,
        name=f"champion-v{version}",
        recipe={"registered_model": name, "version": version},
        precision=tags.get(tagnames.PRECISION, "unknown"),
        workdir=workdir,
        is_baseline=is_baseline,
    )
    return ChampionModel(name, version, run_id, candidate, source_from_tags(tags))


def run_candidate(
    store: MlflowStore,
    run_id: str,
    target: str,
    suffix: str,
    *,
    name: str,
    recipe: dict[str, str],
    precision: str,
    workdir: Path,
    is_baseline: bool = True,
) -> Candidate:
    """The model files a candidate run logged, downloaded, as a ``Candidate`` (the first
    file with ``suffix`` is the primary one; the MLflow Model's own files are not model
    files)."""
    folder = store.download(run_id, MODEL_ARTIFACT_DIR, workdir / name)
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.name not in MLFLOW_MODEL_FILES),
        key=lambda p: (p.suffix != suffix, p.name),
    )
    if not files:
        raise TrackingError(f"{name}: no model files in MLflow run {run_id}")
    return Candidate(
        target=target,
        name=name,
        files=tuple(files),
        recipe=recipe,
        precision=precision,
        is_baseline=is_baseline,
    )


def file_digests(candidate: Candidate) -> list[str]:
    """The sha256 of each of a candidate's files, sorted: equal lists = the same bytes."""
    return sorted(map(sha256_file, candidate.files))
