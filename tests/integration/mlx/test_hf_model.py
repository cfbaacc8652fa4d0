"""Checking a Hugging Face-layout folder without loading it: a folder transformers saved is
accepted with the right figures; every kind of damage is a one-line ``InputError`` naming
it, and the target's baseline step writes nothing for a bad folder."""

from __future__ import annotations

import json
import shutil
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edgeproof.errors import InputError
from edgeproof.targets.llama_cpp.gguf_model import N_VOCAB
from edgeproof.targets.mlx.config import MlxTargetConfig
from edgeproof.targets.mlx.hf_model import (
    check_hf_model,
    read_safetensors_header,
    write_hf_folder,
    write_safetensors,
)
from edgeproof.targets.mlx.target import MlxLm, mlx_availability
from tests.integration.mlx.conftest import HIDDEN, INTERMEDIATE, KV_HEADS, LAYERS


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_config(folder: Path, **changes: object) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config))


def test_a_transformers_folder_is_accepted(hf_llama: Path) -> None:
    info = check_hf_model(hf_llama)
    head_dim = HIDDEN // 4
    per_layer = 2 * HIDDEN + 2 * HIDDEN * HIDDEN + 2 * HIDDEN * KV_HEADS * head_dim
    per_layer += 3 * HIDDEN * INTERMEDIATE
    assert info.n_params == 2 * N_VOCAB * HIDDEN + HIDDEN + LAYERS * per_layer
    assert info.precision == "f32" and info.quantization is None
    assert info.bits_per_weight == pytest.approx(32.0)
    assert [f.name for f in info.files] == ["model.safetensors", "config.json"]


def test_safetensors_round_trip(tmp_path: Path) -> None:
    tensors = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.ones(5, dtype=np.float16),
    }
    path = write_safetensors(tmp_path / "x.safetensors", tensors, {"format": "pt"})
    table = read_safetensors_header(path)
    assert {k: (v.dtype, v.shape) for k, v in table.items()} == {
        "a": ("F32", (2, 3)),
        "b": ("F16", (5,)),
    }
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
    assert (8 + n) % 8 == 0  # data 8-byte aligned


def _truncate(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])


def _garbage_header(folder: Path) -> None:
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:40] = b"\xff" * 32
    weights.write_bytes(bytes(data))


def _huge_header(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(struct.pack("<Q", 1 << 40) + weights.read_bytes()[8:])


def _empty_weights(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"")


def _bad_json(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "llama", ')


def _drop_tensor(folder: Path) -> None:
    from safetensors.numpy import load_file, save_file

    weights = folder / "model.safetensors"
    tensors = load_file(weights)
    tensors.pop("model.layers.1.mlp.up_proj.weight")
    save_file(tensors, weights)


def _wrong_shape(folder: Path) -> None:
    _edit_config(folder, intermediate_size=INTERMEDIATE * 2)


BAD_FOLDERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (_truncate, "model.safetensors is not a valid safetensors file (file truncated"),
    "garbage header": (_garbage_header, "header is not JSON"),
    "huge header": (_huge_header, "header length 1099511627776 does not fit"),
    "empty weights": (_empty_weights, "has no header"),
    "config not JSON": (_bad_json, "config.json Expecting"),
    "config not llama": (
        lambda f: _edit_config(f, model_type="gpt2"),
        "model_type 'gpt2' is not one of llama, mistral",
    ),
    "config size missing": (
        lambda f: _edit_config(f, hidden_size=None),
        "hidden_size must be a positive integer",
    ),
    "remote code": (lambda f: _edit_config(f, model_file="evil.py"), "custom model code"),
    "two rope thetas": (
        lambda f: _edit_config(
            f, rope_theta=1e4, rope_parameters={"rope_type": "default", "rope_theta": 5e5}
        ),
        "rope_parameters.rope_theta 500000.0 differs from rope_theta 10000.0",
    ),
    "rope type": (
        lambda f: _edit_config(f, rope_parameters={"rope_type": "yarn", "rope_theta": 1e4}),
        "rope type 'yarn' is not supported",
    ),
    "tie unknown": (
        lambda f: _edit_config(f, tie_word_embeddings=None),
        "does not set tie_word_embeddings",
    ),
    "missing tensor": (_drop_tensor, "tensor 'model.layers.1.mlp.up_proj.weight' is missing"),
    "wrong shape": (_wrong_shape, "has shape [256, 128], expected [512, 128]"),
    "already quantized": (
        lambda f: _edit_config(f, quantization={"bits": 4, "group_size": 64}),
        "already quantized",
    ),
    "no weights": (lambda f: (f / "model.safetensors").unlink(), "no model*.safetensors"),
    "no config": (lambda f: (f / "config.json").unlink(), "no config.json"),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_a_bad_folder_is_a_one_line_error_and_nothing_is_written(
    case: str, hf_llama: Path, tmp_path: Path
) -> None:
    damage, expected = BAD_FOLDERS[case]
    folder = _copy(hf_llama, tmp_path / "model")
    damage(folder)
    with pytest.raises(InputError) as err:
        check_hf_model(folder)
    message = str(err.value)
    assert expected in message and "\n" not in message and str(folder) in message
    target = MlxLm(MlxTargetConfig(hf_model=folder, tg_tokens=32, repetitions=2, rounds=2))
    workdir = tmp_path / "work"
    with pytest.raises(InputError):
        target.baseline(tmp_path / "model.gguf", workdir)
    assert not workdir.exists()


def test_not_a_folder(tmp_path: Path, hf_llama: Path) -> None:
    with pytest.raises(InputError, match="model folder not found"):
        check_hf_model(tmp_path / "nowhere")
    with pytest.raises(InputError, match="must be a folder"):
        check_hf_model(hf_llama / "model.safetensors")


def test_write_hf_folder_refuses_weights_that_do_not_fit_and_leaves_nothing(
    hf_llama: Path, tmp_path: Path
) -> None:
    from safetensors.numpy import load_file

    config = json.loads((hf_llama / "config.json").read_text())
    weights = load_file(hf_llama / "model.safetensors")
    weights["model.norm.weight"] = np.ones(HIDDEN + 1, dtype=np.float32)
    with pytest.raises(InputError, match=r"model\.norm\.weight"):
        write_hf_folder(tmp_path / "out", config, weights, "float16")
    assert list(tmp_path.iterdir()) == []
    del weights["model.norm.weight"]
    weights["model.norm.weight"] = np.ones(HIDDEN, dtype=np.float32)
    folder = write_hf_folder(tmp_path / "out", config, weights, "float16")
    assert check_hf_model(folder).precision == "f16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_baseline_links_the_folder(hf_llama: Path, tmp_path: Path) -> None:
    target = MlxLm(MlxTargetConfig(hf_model=hf_llama, tg_tokens=32, repetitions=2, rounds=2))
    cand = target.baseline(tmp_path / "model.gguf", tmp_path / "work")  # the GGUF is not read
    assert cand.is_baseline and cand.precision == "f32" and cand.name == "baseline"
    assert cand.model_file == tmp_path / "work" / "baseline" / "model.safetensors"
    assert cand.recipe["n_params"] == check_hf_model(hf_llama).n_params
    assert cand.size_bytes() == sum(f.stat().st_size for f in check_hf_model(hf_llama).files)


def test_recipe_config() -> None:
    from pydantic import ValidationError

    from edgeproof.targets.mlx.config import MlxRecipe
    from edgeproof.targets.mlx.target import _precision

    assert MlxRecipe(name="m", mixed="mixed_4_6").low_bits == 4
    assert MlxRecipe(name="q3", bits=3, group_size=32).low_bits == 3
    assert _precision(MlxRecipe(name="a", bits=4, dtype="float32"), "q4-g64") == "q4-g64-f32"
    assert _precision(MlxRecipe(name="b", mixed="mixed_3_6"), "mixed") == "mixed_3_6-g64"
    for bad in (
        {"name": "x"},
        {"name": "x", "bits": 7},
        {"name": "x", "bits": 4, "group_size": 16},
        {"name": "x", "bits": 2, "mixed": "mixed_4_6"},
        {"name": "x", "mixed": "mixed_5_8"},
    ):
        with pytest.raises(ValidationError):
            MlxRecipe.model_validate(bad)
    with pytest.raises(ValidationError, match="duplicate name 'a'"):
        MlxTargetConfig(hf_model="m", recipes=[{"name": "a", "bits": 4}, {"name": "a", "bits": 8}])
    with pytest.raises(ValidationError, match="duplicate name 'baseline'"):
        MlxTargetConfig(hf_model="m", recipes=[{"name": "baseline", "bits": 4}])
    with pytest.raises(ValidationError, match="per-token timings"):
        MlxTargetConfig(hf_model="m", tg_tokens=4, repetitions=2, rounds=2)


def test_unavailable_without_mlx(monkeypatch: pytest.MonkeyPatch) -> None:
    assert mlx_availability().ok  # installed here (the [mlx] extra)
    for name in [m for m in sys.modules if m == "mlx" or m.startswith("mlx.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlx", None)  # what an absent package looks like
    config = MlxTargetConfig(hf_model="m", tg_tokens=32, repetitions=2, rounds=2)
    available = MlxLm(config).available()
    assert not available.ok and "mlx is not installed" in (available.reason or "")


def test_the_package_imports_without_loading_mlx() -> None:
    import subprocess

    code = (
        "import sys, edgeproof.targets.mlx.harness, edgeproof.targets.mlx.target, "
        "edgeproof.targets.mlx.quantize;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'mlx_lm')))"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert done.stdout.strip() == "[]"
