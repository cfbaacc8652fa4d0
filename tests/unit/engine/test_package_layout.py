"""The engine's shape: no import cycle anywhere, and references written before the modules
moved into packages (registered models' MLmodel files, measurement jobs) still resolve."""

from __future__ import annotations

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
    graph = grimp.build_graph("edgeproof", "gates", "flows")
    assert _cycles(graph) == []


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
