"""The ``openvino-cpu`` package split into modules with one job each (config, convert,
quantize, session, target): references written before the split still resolve, and
importing any of them loads neither OpenVINO nor NNCF (a runner needs only its own)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeproof.runtime.refs import import_ref
from edgeproof.targets.openvino_cpu.config import OpenVinoTargetConfig
from edgeproof.targets.openvino_cpu.target import SPEC, OpenVinoCpu
from edgeproof.targets.registry import target_spec


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        # an MLflow flavor or a measurement job written before the split
        ("edgeproof.targets.openvino_cpu.target:OpenVinoTargetConfig", OpenVinoTargetConfig),
        ("edgeproof.targets.openvino_cpu.target:OpenVinoCpu", OpenVinoCpu),
        # before targets were packages (runtime.refs.MOVED)
        ("edgeproof.targets.openvino_cpu:OpenVinoTargetConfig", OpenVinoTargetConfig),
        # as the registry writes them now
        (SPEC.config_ref, OpenVinoTargetConfig),
        (SPEC.backend_ref, OpenVinoCpu),
    ],
)
def test_references_resolve(ref: str, expected: type) -> None:
    assert import_ref(ref) is expected


def test_the_entry_point_names_the_spec() -> None:
    assert target_spec("openvino-cpu") is SPEC
    assert SPEC.config_ref == "edgeproof.targets.openvino_cpu.config:OpenVinoTargetConfig"


def test_importing_the_package_loads_no_runtime() -> None:
    modules = ", ".join(
        f"edgeproof.targets.openvino_cpu.{m}"
        for m in ("config", "convert", "quantize", "session", "target")
    )
    code = (
        f"import sys, {modules}\n"
        "loaded = sorted(m for m in ('openvino', 'nncf') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
