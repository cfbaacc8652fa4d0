"""The engine's shape: no import cycle anywhere, one top-level package in the wheel, and
references written before the modules moved into packages (registered models' MLmodel
files, measurement jobs) still resolve."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import grimp
import pytest

from edgeproof.runtime.refs import MOVED, import_ref
from edgeproof.targets.registry import catalogue


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph.modules:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    imported = sorted(graph.find_modules_directly_imported_by(child))
                    work.append((child, iter(imported)))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("edgeproof")
    assert _cycles(graph) == []


def test_the_wheel_installs_one_top_level_package(tmp_path: Path) -> None:
    """flows/ and gates/ at the top of the repository are links into edgeproof/: the wheel
    holds them as edgeproof.flows and edgeproof.gates, nothing that could collide in
    site-packages."""
    repo = Path(__file__).resolve().parents[3]
    for name in ("flows", "gates"):
        link = repo / name
        assert link.is_symlink() and link.resolve() == repo / "edgeproof" / name
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(repo)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("edgeproof-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"edgeproof"}
    assert {"edgeproof/gates/checks.py", "edgeproof/flows/quality_gate.py"} <= set(names)


def test_a_made_up_cycle_is_found() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in (("a.x", "a.y"), ("a.y", "a.z"), ("a.z", "a.x"), ("a.z", "a.w")):
        graph.add_import(importer=importer, imported=imported)
    assert _cycles(graph) == [["a.x", "a.y", "a.z"]]


@pytest.mark.parametrize(
    "old",
    [
        "edgeproof.targets.onnxruntime_cpu:OnnxRuntimeCpu",
        "edgeproof.targets.openvino_cpu:OpenVinoTargetConfig",
        "edgeproof.targets.tflite_cpu:TfliteCpu",
        "edgeproof.targets.llama_cpp:LlamaCppTargetConfig",
        "edgeproof.targets.mlx:MlxTargetConfig",
        "edgeproof.serving:_load_pyfunc",
    ],
)
def test_references_from_before_the_move_resolve(old: str) -> None:
    module, _, name = old.partition(":")
    assert import_ref(old) is import_ref(f"{MOVED[module]}:{name}")


def test_every_target_is_found_through_its_entry_point() -> None:
    specs = catalogue()
    assert list(specs)[:7] == [
        "onnxruntime-cpu", "openvino-cpu", "olive", "tflite-cpu", "edgetpu", "llama-cpp", "mlx",
    ]  # fmt: skip
    for name, spec in specs.items():
        assert spec.name == name
        assert spec.backend.__module__.startswith(f"edgeproof.targets.{name.replace('-', '_')}")
