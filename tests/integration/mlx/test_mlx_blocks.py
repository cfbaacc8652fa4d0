"""MLX building blocks on the real MLX CPU backend, with a tiny random llama that
transformers saved: MLX computes transformers' logits; 8/4/2-bit and mixed quantizations
order by KL as they must; speed runs time pp and tg; the harness gives the llama.cpp
harness's result shape, which ``gates.summarize_lm`` summarizes unchanged; a broken
candidate fails alone with a one-line reason; a failed quantization leaves nothing.

Quantizing random weights gives KLs that do not depend on the machine (no training).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeproof.config import MeasureConfig
from edgeproof.errors import InputError
from edgeproof.gates.lm_fidelity import fidelity, scored_targets
from edgeproof.gates.summarize_lm import summarize_language_model
from edgeproof.targets.llama_cpp.gguf_model import N_VOCAB
from edgeproof.targets.mlx.config import MlxTargetConfig
from edgeproof.targets.mlx.harness import measure_mlx_models
from edgeproof.targets.mlx.hf_model import check_hf_model
from edgeproof.targets.mlx.quantize import quantize
from edgeproof.targets.mlx.runner import MlxRunError, compute_logits, measure_speed
from edgeproof.targets.mlx.target import MlxLm
from edgeproof.targets.registry import measure_job
from tests.integration.mlx.conftest import N_WINDOWS, WINDOW, transformers_logits

RECIPES = [
    {"name": "q8", "bits": 8, "group_size": 64},
    {"name": "q4", "bits": 4, "group_size": 64},
    {"name": "mixed-3-6", "mixed": "mixed_3_6", "group_size": 32},
    {"name": "q2", "bits": 2, "group_size": 128},
]
# 2 rounds x 2 repetitions x 25 tokens: the fewest per-token timings the config accepts
SMALL = {"pp_tokens": 16, "tg_tokens": 25, "warmup": 1, "repetitions": 2, "rounds": 2}


@pytest.fixture(scope="module")
def target(hf_llama: Path) -> MlxLm:
    section = {"threads": 1, "hf_model": hf_llama, "recipes": RECIPES, **SMALL}
    return MlxLm(MlxTargetConfig.model_validate(section))


@pytest.fixture(scope="module")
def built(target: MlxLm, hf_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The baseline candidate and one candidate per recipe."""
    work = tmp_path_factory.mktemp("mlx-work")
    baseline = target.baseline(hf_llama / "model.gguf", work)  # hf_model is read
    out = {"baseline": baseline}
    for name in target.recipes():
        out[name] = target.optimize(name, baseline, None, work)  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def logits(built: dict, windows: np.ndarray) -> dict[str, np.ndarray]:
    """Held-out logits of every candidate (one MLX subprocess each)."""
    out = {}
    for name, cand in built.items():
        npy = cand.model_file.parent.parent / f"{name}.npy"
        run = compute_logits(cand.model_file.parent, windows, npy, threads=1)
        assert run.shape == (N_WINDOWS, WINDOW // 2, N_VOCAB)
        assert run.peak_rss_mb and run.peak_rss_mb > 0
        out[name] = np.load(npy)
    return out


def test_mlx_computes_the_transformers_logits(
    hf_llama: Path, windows: np.ndarray, logits: dict[str, np.ndarray]
) -> None:
    expected = transformers_logits(hf_llama, windows)
    got = logits["baseline"]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3 * np.abs(expected).max()
    assert (got.argmax(-1) == expected.argmax(-1)).mean() == 1.0


def test_quantized_folders_record_their_recipe(built: dict) -> None:
    q4 = built["q4"]
    config = json.loads((q4.model_file.parent / "config.json").read_text())
    assert config["quantization"]["bits"] == 4 and config["quantization"]["group_size"] == 64
    assert q4.precision == "q4-g64" and q4.recipe["float_layers"] == 0
    # 4 bits + a scale and a bias per 64 weights, float32 as the baseline's: 5 bits
    assert 4.95 < q4.recipe["bits_per_weight"] < 5.1
    assert 8.95 < built["q8"].recipe["bits_per_weight"] < 9.1
    assert built["mixed-3-6"].precision == "mixed_3_6-g32"
    mixed = json.loads((built["mixed-3-6"].model_file.parent / "config.json").read_text())
    per_layer = {k: v["bits"] for k, v in mixed["quantization"].items() if isinstance(v, dict)}
    assert set(per_layer.values()) == {3, 6} and per_layer["lm_head"] == 6
    sizes = {name: cand.size_bytes() for name, cand in built.items()}
    assert sizes["q2"] < sizes["q4"] < sizes["q8"] < sizes["baseline"]
    with pytest.raises(InputError, match="already quantized"):
        check_hf_model(q4.model_file.parent)  # a quantized folder is no baseline


def test_kl_orders_the_quantizations(logits: dict[str, np.ndarray], windows: np.ndarray) -> None:
    targets = scored_targets(windows)
    fid = {
        name: fidelity(logits["baseline"], logits[name], targets, resamples=200)
        for name in ("q8", "q4", "mixed-3-6", "q2")
    }
    kl = {name: f.mean_kl.value for name, f in fid.items()}
    assert kl["q8"] < kl["q4"] < kl["mixed-3-6"] < kl["q2"], kl
    assert kl["q8"] < 1e-3 and kl["q2"] > 0.05, kl
    assert fid["q8"].top1_agreement.value > 0.9  # random logits have many near-ties (0.96 here)
    assert fid["q2"].top1_agreement.value < fid["q4"].top1_agreement.value
    assert 0.99 < fid["q8"].ppl_ratio.value < 1.01


def test_speed_run(built: dict, windows: np.ndarray) -> None:
    run = measure_speed(
        built["q4"].model_file.parent,
        pp_tokens=16,
        tg_tokens=4,
        warmup=0,
        repetitions=2,
        threads=1,
        windows=windows,
    )
    assert len(run.pp_seconds) == 2 and all(s > 0 for s in run.pp_seconds)
    assert [len(rep) for rep in run.tg_token_seconds] == [4, 4]
    assert run.device.startswith("Device(cpu") and run.versions["mlx"] != "absent"
    assert run.peak_rss_mb and run.mlx_peak_memory_mb and run.load_seconds > 0


def _broken_copy(cand_dir: Path, dest: Path) -> Path:
    shutil.copytree(cand_dir, dest)
    weights = dest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return dest


def test_a_truncated_candidate_is_a_one_line_run_error(
    built: dict, windows: np.ndarray, tmp_path: Path
) -> None:
    folder = _broken_copy(built["q4"].model_file.parent, tmp_path / "broken")
    with pytest.raises(MlxRunError) as err:
        compute_logits(folder, windows, tmp_path / "x.npy", threads=1, timeout=120)
    message = str(err.value)
    assert message.startswith("broken logits: failed during load:") and "\n" not in message
    assert not (tmp_path / "x.npy").exists()


def test_a_failed_quantization_writes_nothing(hf_llama: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(hf_llama, tmp_path / "model")
    (folder / "config.json").write_text("{")
    with pytest.raises(InputError, match=r"config\.json"):
        quantize(folder, tmp_path / "q4", bits=4, group_size=64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_harness_result_is_what_summarize_lm_reads(
    built: dict, target: MlxLm, windows: np.ndarray, tmp_path: Path
) -> None:
    eval_data = tmp_path / "eval.npz"
    np.savez(eval_data, tokens=windows)
    broken = built["q8"].model_copy(
        update={
            "name": "broken",
            "files": (
                _broken_copy(built["q8"].model_file.parent, tmp_path / "b") / "model.safetensors",
            ),
        }
    )
    job = measure_job("mlx", target.config, eval_data, "labels", tmp_path / "outputs")
    measure = MeasureConfig(bootstrap_resamples=200, on_busy="warn")
    measured = measure_mlx_models(built["baseline"], [built["q4"], broken], job, measure)
    assert set(measured.raw) == {"baseline", "q4"} and set(measured.errors) == {"broken"}
    assert "broken logits: failed during load" in measured.errors["broken"]
    raw = measured.raw["q4"]
    lang = raw.environment["language"]
    assert set(lang) == {"pp_tokens", "tg_tokens", "pp_seconds", "tg_seconds", "processes"}
    assert lang["processes"] == 2 and len(lang["pp_seconds"]) == 2 * SMALL["repetitions"]
    assert len(raw.latency_ms) == len(raw.paired_baseline_ms) == 2 * 2 * 25
    assert raw.environment["session"]["runtime"] == "mlx"
    assert raw.size_mb == pytest.approx(built["q4"].size_bytes() / 1e6)
    base_logits = np.load(measured.outputs["baseline"])
    summary = summarize_language_model(
        "q4",
        built["q4"].precision,
        False,
        raw,
        base_logits,
        np.load(measured.outputs["q4"]),
        windows,
        built["q4"].recipe["bits_per_weight"],
        built["q4"].recipe["n_params"],
        measure,
    )
    assert summary.language is not None and summary.mean_kl is not None
    assert 0 < summary.mean_kl.value < 0.1 and summary.language.tg_tokens_per_s.value > 0


def test_rope_theta_only_in_rope_parameters_reaches_mlx(
    hf_llama: Path, windows: np.ndarray, tmp_path: Path
) -> None:
    """transformers 5 writes rope_theta only inside rope_parameters, where mlx-lm's llama
    does not look (it would use 10000): the worker passes it on."""
    from tests.integration.mlx.conftest import tiny_hf_llama

    folder = tiny_hf_llama(tmp_path / "theta", rope_theta=5e5)  # same weights as hf_llama
    assert "rope_theta" not in json.loads((folder / "config.json").read_text())
    compute_logits(folder, windows, tmp_path / "theta.npy", threads=1)
    got = np.load(tmp_path / "theta.npy")
    expected = transformers_logits(folder, windows)
    assert np.abs(got - expected).max() < 1e-3 * np.abs(expected).max()
    assert np.abs(expected - transformers_logits(hf_llama, windows)).max() > 0.1


def test_dtype_casts_before_quantizing(tmp_path: Path, windows: np.ndarray) -> None:
    """A float16 model quantized as stored keeps float16 scales (slow on MLX's Linux CPU
    backend); with dtype float32 the scales, config and activations are float32."""
    from tests.integration.mlx.conftest import tiny_hf_llama

    f16 = tiny_hf_llama(tmp_path / "f16", dtype="float16")
    assert check_hf_model(f16).precision == "f16"
    stored = quantize(f16, tmp_path / "q8", bits=8, group_size=64, threads=1)
    cast = quantize(f16, tmp_path / "q8-f32", bits=8, group_size=64, dtype="float32", threads=1)
    scales = "model.layers.0.mlp.down_proj.scales"
    assert stored.info.tensors[scales].dtype == "F16"
    assert cast.info.tensors[scales].dtype == "F32"
    assert cast.info.tensors["model.norm.weight"].dtype == "F32"
    assert cast.info.config["dtype"] == "float32" and stored.info.config["dtype"] == "float16"
    compute_logits(f16, windows[:2], tmp_path / "f16.npy", threads=1)
    compute_logits(cast.run.path, windows[:2], tmp_path / "cast.npy", threads=1)
    fid = fidelity(
        np.load(tmp_path / "f16.npy"),
        np.load(tmp_path / "cast.npy"),
        scored_targets(windows[:2]),
        resamples=100,
    )
    assert fid.mean_kl.value < 1e-3
    with pytest.raises(ValueError, match="dtype must be one of"):
        quantize(f16, tmp_path / "x", bits=4, dtype="float64")


def test_a_broken_baseline_stops_the_target(
    built: dict, target: MlxLm, windows: np.ndarray, tmp_path: Path
) -> None:
    from edgeproof.errors import MeasurementError

    np.savez(tmp_path / "eval.npz", tokens=windows)
    folder = _broken_copy(built["baseline"].model_file.parent, tmp_path / "base")
    broken = built["baseline"].model_copy(update={"files": (folder / "model.safetensors",)})
    job = measure_job("mlx", target.config, tmp_path / "eval.npz", "labels", tmp_path / "outputs")
    with pytest.raises(MeasurementError, match=r"^baseline logits: failed during load"):
        measure_mlx_models(broken, [built["q4"]], job, MeasureConfig())
    assert list((tmp_path / "outputs").iterdir()) == []


def test_layers_whose_width_does_not_fit_the_group_stay_float(tmp_path: Path) -> None:
    from tests.integration.mlx.conftest import LAYERS, tiny_hf_llama

    folder = tiny_hf_llama(tmp_path / "ff96", intermediate=96)  # down_proj reads 96 values
    done = quantize(folder, tmp_path / "q4", bits=4, group_size=64, threads=1)
    assert done.run.float_layers == LAYERS  # one down_proj per layer
    assert done.info.tensors["model.layers.0.mlp.down_proj.weight"].dtype == "F32"
    assert "model.layers.0.mlp.down_proj.scales" not in done.info.tensors
    assert done.info.tensors["model.layers.0.mlp.up_proj.weight"].dtype == "U32"
