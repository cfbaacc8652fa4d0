"""MLflow pyfunc loader for candidates in a runtime other than ONNX Runtime.

``mlflow.pyfunc.load_model`` calls :func:`_load_pyfunc` with the model file's path; the
``edgeproof`` flavor in the ``MLmodel`` beside it names the target's backend and config, and
the candidate runs in the same runtime session the gate measured (``Target.open_session``,
with the target config's ``threads``). ``predict`` takes a mapping of input name -> array
(items on the batch axis) and returns a mapping of output name -> array. A language model
(a GGUF in llama.cpp, an MLX folder in mlx-lm) takes ``tokens`` (n, ctx + 1) token ids and
returns ``logits``: the gate's logits of the second half of each window.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.records import Candidate
from edgeproof.targets.base import Session
from edgeproof.targets.registry import target_from_refs
from edgeproof.tracking.mlflow_model import EDGEPROOF_FLAVOR, MLMODEL_FILE


class SessionModel:
    """A runtime session behind MLflow's ``predict``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def predict(self, data: Mapping[str, Any], params: dict[str, Any] | None = None) -> Any:
        feeds = {name: np.asarray(value) for name, value in dict(data).items()}
        return dict(zip(self.session.output_names, self.session.run(feeds), strict=True))


def _load_pyfunc(data_path: str) -> SessionModel:
    from mlflow.models import Model

    folder = Path(data_path).parent
    conf = Model.load(str(folder / MLMODEL_FILE)).flavors[EDGEPROOF_FLAVOR]
    target = target_from_refs(conf["backend"], conf["config_model"], conf["target_config"])
    candidate = Candidate(
        target=conf["target"],
        name=conf["candidate"],
        files=tuple(folder / name for name in conf["files"]),
        recipe={},
        precision=conf["precision"],
    )
    threads = int(conf["target_config"].get("threads", 1))
    return SessionModel(target.open_session(candidate, threads=threads))
