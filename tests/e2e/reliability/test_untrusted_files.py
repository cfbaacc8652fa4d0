"""Untrusted files are never unpickled: a scan of the project's own code.

Models and data come from users and DVC remotes. Every ``np.load`` must pass
``allow_pickle=False``; ``pickle``, ``joblib``, ``cloudpickle``, ``dill`` and
``torch.load`` without ``weights_only=True`` must not appear. (The loaders' behaviour on
a real pickled object array is in the catalogue: case ``eval-object-array``.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

SOURCES = sorted(
    p
    for folder in ("edgeproof", "flows", "gates", "scripts")
    for p in (ROOT / folder).rglob("*.py")
)
UNPICKLERS = {"pickle", "cPickle", "joblib", "cloudpickle", "dill", "shelve", "marshal"}


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                if name and name.split(".")[0] in UNPICKLERS:
                    found.append(f"{path.name}:{node.lineno} imports {name}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if node.func.attr == "load" and owner in ("np", "numpy"):
                flag = _keyword(node, "allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    found.append(f"{path.name}:{node.lineno} np.load without allow_pickle=False")
            if node.func.attr == "load" and owner == "torch":
                flag = _keyword(node, "weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    found.append(f"{path.name}:{node.lineno} torch.load without weights_only=True")
    return found


def test_the_scan_sees_the_code() -> None:
    assert len(SOURCES) > 30 and any(p.name == "data.py" for p in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unpickling_of_untrusted_files(path: Path) -> None:
    assert _problems(path) == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nimport numpy as np\nimport torch\n"
        "np.load('x.npz')\nnp.load('y', allow_pickle=True)\ntorch.load('m.pt')\n"
    )
    assert len(_problems(bad)) == 4
