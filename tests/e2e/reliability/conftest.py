"""Fixtures of the reliability catalogue: a fresh tiny project per test, shared homes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.reliability.project import build_project, seed_store


@pytest.fixture(scope="session")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Prefect home for every run here: its database is migrated once, not per test."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``mlflow.db`` with a champion (copied into catalogue projects)."""
    folder = tmp_path_factory.mktemp("seeded-store")
    seed_store(folder)
    return folder


@pytest.fixture
def project(tmp_path: Path, tiny_model: Path, tiny_data: dict[str, Path]) -> Path:
    """A valid tiny project in ``tmp_path/project`` (no MLflow store yet)."""
    return build_project(tmp_path / "project", tiny_model, tiny_data)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """TMPDIR of the CLI subprocess: where candidate model files would be left."""
    return tmp_path / "scratch"
