"""params.yaml parsing: the shipped file is valid, every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgeproof.errors import ConfigError
from edgeproof.params.model import load_params, parse_params
from tests.helpers import ROOT


def _raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_shipped_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.model.name == "digits-cnn"
    assert list(params.targets.enabled()) == [
        "onnxruntime-cpu",
        "openvino-cpu",
        "olive",
        "tflite-cpu",
        "edgetpu",
    ]
    recipes = [r.name for r in params.targets.onnxruntime_cpu.recipes]
    assert {"dynamic-int8", "static-qdq-minmax", "static-qdq-percentile"} <= set(recipes)
    assert params.targets.openvino_cpu is not None
    methods = [r.method for r in params.targets.openvino_cpu.recipes]
    assert methods == ["precision", "nncf-ptq", "nncf-accuracy-control"]


def test_accuracy_control_takes_max_drop_from_the_accuracy_gate() -> None:
    raw = _raw()
    raw["gates"]["accuracy"]["max_drop_abs"] = 0.004
    recipes = raw["targets"]["openvino-cpu"]["recipes"]
    recipes.append({"name": "own-drop", "method": "nncf-accuracy-control", "max_drop": 0.02})
    by_name = {r.name: r for r in parse_params(raw).targets.openvino_cpu.recipes}
    assert by_name["nncf-int8-accuracy-control"].max_drop == 0.004
    assert by_name["own-drop"].max_drop == 0.02  # an explicit value wins
    assert by_name["nncf-int8"].max_drop is None  # other methods are left alone

    raw["gates"]["accuracy"]["max_drop_abs"] = None  # gate off and no max_drop of its own
    with pytest.raises(ConfigError, match="nncf-int8-accuracy-control: nncf-accuracy-control"):
        parse_params(raw)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("gates", "latency", "min_sppedup"), 2.0, "gates.latency.min_sppedup: unknown key"),
        (("gates", "latency", "min_speedup"), -1.0, "gates.latency.min_speedup: "),
        (("gates", "accuracy", "max_drop_abs"), 1.5, "gates.accuracy.max_drop_abs: "),
        (("measure", "confidence"), 1.2, "measure.confidence: "),
        (("gates", "on_inconclusive"), "maybe", "gates.on_inconclusive: "),
        (("targets", "tpu-x"), {}, "targets.tpu-x: unknown key"),
        (("model", "task"), "detection", "model.task: "),
        (("registry", "challenger_alias"), "champion", "champion_alias and challenger_alias"),
        (("gates", "weights"), {"speed": 1.0}, "gates.weights.speed.[key]: Input should be"),
        (("gates", "weights"), {"latency": 0.0}, "gates.weights: at least one weight"),
        (("gates", "weights"), {"latency": -1.0}, "gates.weights.latency: "),
    ],
)
def test_bad_values_name_the_key(path: tuple[str, ...], value: object, message: str) -> None:
    raw = _raw()
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as info:
        parse_params(raw)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_duplicate_recipes_and_no_enabled_target() -> None:
    raw = _raw()
    recipes = raw["targets"]["onnxruntime-cpu"]["recipes"]
    recipes.append(dict(recipes[0]))
    with pytest.raises(ConfigError, match="duplicate name 'dynamic-int8'"):
        parse_params(raw)
    raw = _raw()
    for section in raw["targets"].values():
        section["enabled"] = False
    with pytest.raises(ConfigError, match="no target is enabled"):
        parse_params(raw)


def test_unreadable_params_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        load_params(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_params(bad)
