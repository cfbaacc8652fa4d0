"""The team's own metric: loaded from a project file, called per candidate, checked; and the
shipped example metric (CTC character error rate) on hand-made recognizer outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeproof.config import MetricConfig
from edgeproof.errors import ConfigError, MeasurementError
from edgeproof.evaluate.custom_metric import load_metric
from tests.helpers import ROOT

CER_FILE = ROOT / "examples" / "metrics" / "ocr_cer.py"
CER = MetricConfig(function="ocr_cer.py:character_error_rate", name="cer", higher_is_better=False)


def _ctc(paths: list[list[int]], classes: int = 8) -> np.ndarray:
    """One-hot 'probabilities' (items, steps, classes) whose best path is ``paths``."""
    out = np.full((len(paths), len(paths[0]), classes), 0.01, dtype=np.float32)
    for item, path in enumerate(paths):
        out[item, np.arange(len(path)), path] = 0.93
    return out


def test_the_shipped_cer_metric_decodes_ctc_and_counts_edits(tmp_path: Path) -> None:
    shutil.copy(CER_FILE, tmp_path / "ocr_cer.py")
    metric = load_metric(tmp_path, CER)
    labels = np.array([[5, 6, 5, -1], [5, 6, 5, -1], [3, 4, -1, -1]])
    baseline = _ctc(
        [[0, 5, 5, 0, 6, 6, 0, 5, 0], [5, 0, 6, 0, 5, 5, 0, 0, 0], [3, 4, 4, 0, 0, 0, 0, 0, 0]]
    )
    candidate = _ctc(
        [[0, 5, 5, 0, 6, 6, 0, 5, 0], [5, 0, 7, 0, 5, 5, 0, 0, 0], [3, 0, 0, 0, 0, 0, 0, 0, 0]]
    )
    cand, base, drop = metric.scores("q", {"p": candidate}, {"p": baseline}, labels)
    np.testing.assert_allclose(base, [0.0, 0.0, 0.0])  # 5 5 _ 6 6 _ 5 -> 5 6 5
    np.testing.assert_allclose(cand, [0.0, 1 / 3, 1 / 2])  # a substitution; a deletion
    np.testing.assert_allclose(drop, cand - base)  # lower is better: a drop is an increase


@pytest.mark.parametrize(
    ("function", "setup", "message"),
    [
        ("missing.py:f", None, "file not found"),
        ("../outside.py:f", "outside", "must be inside the project"),
        ("broken.py:f", "import nope_not_a_module\n", "import failed: ModuleNotFoundError"),
        ("ocr_cer.py:no_such_function", "copy", "has no function 'no_such_function'"),
    ],
)
def test_a_metric_that_cannot_be_loaded_is_one_config_error(
    tmp_path: Path, function: str, setup: str | None, message: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    if setup == "outside":
        (tmp_path / "outside.py").write_text("def f(a, b, c):\n    return a\n")
    elif setup == "copy":
        shutil.copy(CER_FILE, project / "ocr_cer.py")
    elif setup is not None:
        (project / function.split(":")[0]).write_text(setup)
    with pytest.raises(ConfigError) as info:
        load_metric(project, MetricConfig(function=function))
    text = str(info.value)
    assert text.startswith(f"params.yaml: model.metric: {function}") and message in text
    assert "\n" not in text


def test_a_metric_returning_the_wrong_shape_or_failing_is_that_candidates_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.py").write_text(
        "import numpy as np\n"
        "def short(o, b, t):\n    return np.zeros(1)\n"
        "def boom(o, b, t):\n    raise KeyError('logits')\n"
    )
    outputs = {"y": np.zeros((4, 2))}
    short = load_metric(tmp_path, MetricConfig(function="m.py:short"))
    with pytest.raises(MeasurementError, match=r"returned shape \(1,\) for q, needs .*\(4,\)"):
        short.scores("q", outputs, outputs, None)
    boom = load_metric(tmp_path, MetricConfig(function="m.py:boom"))
    with pytest.raises(MeasurementError, match=r"m.py:boom failed on q: KeyError: 'logits'"):
        boom.scores("q", outputs, outputs, None)
