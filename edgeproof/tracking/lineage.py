"""Where a run's inputs came from: git revision and the DVC content hashes of its files.

DVC records an md5 for every stage output and dependency in ``dvc.lock``; tagging the
parent run with them (plus the git sha and a hash of params.yaml) pins exactly which model
and data were gated. Outside a git checkout or without a dvc.lock the fields are None /
empty rather than guessed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import subprocess
from pathlib import Path

import yaml

from edgeproof.records import Lineage


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def dvc_lock_md5s(lock_file: Path) -> dict[str, str]:
    """path -> md5 of every dep and out recorded in dvc.lock (empty if absent)."""
    try:
        lock = yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    found: dict[str, str] = {}
    for stage in (lock.get("stages") or {}).values():
        for entry in (stage.get("deps") or []) + (stage.get("outs") or []):
            if isinstance(entry, dict) and "path" in entry and "md5" in entry:
                found[str(entry["path"])] = str(entry["md5"])
    return dict(sorted(found.items()))


def collect_lineage(repo: Path, params_file: Path) -> Lineage:
    """Git sha, branch, dirty flag, DVC md5s and the params hash for ``repo``."""
    sha = _git(repo, "rev-parse", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no") if sha else None
    return Lineage(
        git_sha=sha,
        git_branch=_git(repo, "rev-parse", "--abbrev-ref", "HEAD") if sha else None,
        git_dirty=None if status is None else bool(status),
        params_sha256=hashlib.sha256(params_file.read_bytes()).hexdigest(),
        dvc_md5=dvc_lock_md5s(repo / "dvc.lock"),
    )


def content_md5(*paths: Path) -> str:
    """md5 of the contents of ``paths``: for one file, the md5 DVC records for it; a
    folder (an HF model) or several files hash their relative names and file md5s in order.
    """
    files: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_dir():
            files += sorted((str(f.relative_to(path)), f) for f in path.rglob("*") if f.is_file())
        else:
            files.append((path.name, path))
    digests = [(name, file_digest(f, "md5")) for name, f in files]
    if len(paths) == 1 and not paths[0].is_dir():
        return digests[0][1]
    return hashlib.md5("\n".join(f"{n} {d}" for n, d in digests).encode()).hexdigest()


def project_relative(path: Path, root: Path) -> str:
    """``path`` inside the project at ``root`` as a relative POSIX path, else absolute."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes with ``hashlib`` algorithm ``algorithm``, read in chunks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dvc_changes(project: Path) -> list[str] | None:
    """Outputs of the project's own pipeline (``project/dvc.yaml``) that differ from its
    dvc.lock ("path: deleted"); None without one. The DVC repository may be an ancestor
    (an example in a sub-folder); other pipelines of that repository are not looked at.
    """
    pipeline = project / "dvc.yaml"
    if not (project / "dvc.lock").is_file() or not pipeline.is_file():
        return None
    dvc_root = next((d for d in (project, *project.parents) if (d / ".dvc").is_dir()), None)
    if dvc_root is None:
        return None
    from dvc.repo import Repo

    # DVC draws hashing progress bars on a terminal's stderr: a buffer is no terminal
    with contextlib.redirect_stderr(io.StringIO()), Repo(str(dvc_root)) as dvc_repo:
        status = dvc_repo.status(targets=[str(pipeline)])
    changes = []
    for stage, entries in status.items():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                for path, state in (entry.get("changed outs") or {}).items():
                    changes.append(f"{path}: {state} (stage {stage.split(':')[-1]})")
    return sorted(changes)


def lineage_tags(lineage: Lineage) -> dict[str, str]:
    """The lineage as MLflow tags (``git.*``, ``dvc.md5.<path>``, ``params.sha256``)."""
    tags = {"params.sha256": lineage.params_sha256}
    if lineage.git_sha:
        tags["git.sha"] = lineage.git_sha
        tags["mlflow.source.git.commit"] = lineage.git_sha
    if lineage.git_branch:
        tags["git.branch"] = lineage.git_branch
    if lineage.git_dirty is not None:
        tags["git.dirty"] = str(lineage.git_dirty).lower()
    for path, md5 in lineage.dvc_md5.items():
        tags[f"dvc.md5.{path}"] = md5
    return tags
