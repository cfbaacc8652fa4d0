"""params.yaml read and validated against the installed plug-ins: the one entry to typed config.

``edgeproof.config`` defines the sections; the ``targets:`` section's fields come from the
target plug-ins (``edgeproof.targets.registry``) and the task kinds' own ``gates`` sections
from the task kinds (``edgeproof.tasks.registry``), so every caller loads params here. An
unknown ``model.task`` is refused here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeproof.config import Params, read_params
from edgeproof.config import parse_params as parse_with
from edgeproof.targets.registry import target_models
from edgeproof.tasks.registry import gate_models, task_kind


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-loaded mapping; raises ConfigError with one line."""
    params = parse_with(raw, target_models(), source, gate_models())
    task_kind(params.model.task)  # an unknown task: refused before anything else
    return params


def load_params(path: Path) -> Params:
    """Read and validate params.yaml; relative paths in it stay relative to its folder."""
    return parse_params(read_params(path), source=str(path.name))
