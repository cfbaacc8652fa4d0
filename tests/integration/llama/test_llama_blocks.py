"""llama.cpp building blocks on a random tiny GGUF made here in well under a second.

Quantize (Q8_0, Q4_0, Q2_K, and Q4_0 with an importance matrix), evaluate fidelity against
the F32 baseline, measure speed, and check that bad files, hangs and unknown types become
clear one-line errors while valid candidates keep working. Every llama.cpp call runs in a
subprocess, so the test process itself never loads a GGUF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeproof.errors import ConfigError
from edgeproof.gates.lm_fidelity import fidelity, scored_targets, speed_estimates
from edgeproof.targets.llama_cpp.gguf_model import (
    N_VOCAB,
    byte_windows,
    gguf_info,
    tiny_random_gguf,
)
from edgeproof.targets.llama_cpp.quantize import UnknownQuantType, quantize
from edgeproof.targets.llama_cpp.runner import (
    LlamaRunError,
    compute_logits,
    measure_speed,
    run_module,
)

WINDOW, N_WINDOWS = 128, 8
QTYPES = ("Q8_0", "Q4_0", "Q2_K")
# llama.cpp's AMX kernels segfault on some AMX CPUs (llama.cpp#20824; the dev machine is
# one): the tests use the plain CPU path so they mean the same on every runner.
PLAIN = {"extra_buffer_types": False}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Baseline F32 GGUF, its quantized candidates, and held-out token windows (.npy)."""
    folder = tmp_path_factory.mktemp("llama")
    from pydoc_data.topics import topics

    heldout = folder / "heldout.npy"
    np.save(heldout, byte_windows(topics["assignment"].encode(), WINDOW, N_WINDOWS))
    paths = {"heldout": heldout, "F32": tiny_random_gguf(folder / "base-f32.gguf", seed=0)}
    for qtype in QTYPES:
        paths[qtype] = quantize(paths["F32"], folder / f"base-{qtype}.gguf", qtype).path
    return paths


@pytest.fixture(scope="module")
def logits(work: dict[str, Path]) -> dict[str, np.ndarray]:
    """Held-out logits of the baseline and every candidate (one subprocess each)."""
    out = {}
    for name in ("F32", *QTYPES):
        npy = work["F32"].parent / f"logits-{name}.npy"
        run = compute_logits(work[name], _windows(work), npy, **PLAIN)
        assert run.shape == (N_WINDOWS, WINDOW // 2, N_VOCAB)
        assert run.peak_rss_mb and run.peak_rss_mb > 0
        out[name] = np.load(npy)
    return out


def _windows(work: dict[str, Path]) -> np.ndarray:
    return np.load(work["heldout"])


def _targets(work: dict[str, Path]) -> np.ndarray:
    return scored_targets(_windows(work))


def test_quantized_files_shrink_with_the_type(work: dict[str, Path]) -> None:
    infos = {name: gguf_info(work[name]) for name in ("F32", *QTYPES)}
    assert len({info.n_params for info in infos.values()}) == 1
    bpw = [infos[name].bits_per_weight for name in ("F32", *QTYPES)]
    assert bpw == sorted(bpw, reverse=True), bpw
    assert 31 < bpw[0] <= 32 and 8 < bpw[1] < 9
    assert infos["Q8_0"].tensor_types.get("Q8_0", 0) >= 7
    assert infos["Q2_K"].tensor_types.get("Q2_K", 0) >= 1
    assert infos["F32"].metadata["general.architecture"] == "llama"


def test_kl_orders_the_quantization_types(
    work: dict[str, Path], logits: dict[str, np.ndarray]
) -> None:
    targets = _targets(work)
    fid = {q: fidelity(logits["F32"], logits[q], targets, resamples=500) for q in QTYPES}
    kls = [fid[q].mean_kl.value for q in QTYPES]
    assert 0 < kls[0] < kls[1] < kls[2], kls
    assert fid["Q8_0"].mean_kl.high < fid["Q2_K"].mean_kl.low  # CIs apart, not just points
    assert fid["Q8_0"].top1_agreement.value > fid["Q2_K"].top1_agreement.value
    for f in fid.values():
        assert f.n_windows == N_WINDOWS and f.n_tokens == N_WINDOWS * WINDOW // 2
        assert f.mean_kl.low <= f.mean_kl.value <= f.mean_kl.high
        assert f.kl_p99 <= f.kl_max
        assert f.ppl_ratio.low <= f.ppl_ratio.value <= f.ppl_ratio.high


def test_baseline_against_itself(work: dict[str, Path], logits: dict[str, np.ndarray]) -> None:
    again = work["F32"].parent / "logits-F32-again.npy"
    compute_logits(work["F32"], _windows(work), again, **PLAIN)
    for other in (logits["F32"], np.load(again)):  # same array, and a second fresh process
        f = fidelity(logits["F32"], other, _targets(work), resamples=200)
        assert f.mean_kl.value == 0.0 and f.kl_max == 0.0
        assert f.top1_agreement.value == 1.0
        assert f.ppl_ratio.value == 1.0
        assert f.baseline_ppl.value == f.candidate_ppl.value > 1.0


def test_speed_has_positive_rates_with_cis(work: dict[str, Path]) -> None:
    run = measure_speed(
        work["Q4_0"], pp_tokens=64, tg_tokens=16, warmup=1, repetitions=8, threads=1, **PLAIN
    )
    assert len(run.pp_seconds) == len(run.tg_seconds) == len(run.tg_token_seconds) == 8
    assert {len(rep) for rep in run.tg_token_seconds} == {16}
    assert run.peak_rss_mb and run.peak_rss_mb > 0 and run.system_info
    est = speed_estimates(run.pp_seconds, run.pp_tokens, run.tg_seconds, run.tg_tokens)
    for e in (est.pp_tokens_per_s, est.tg_tokens_per_s):
        assert 0 < e.low <= e.value <= e.high
    assert est.pp_tokens_per_s.value == pytest.approx(64 / np.median(run.pp_seconds))


def _one_line_failure(model: Path, windows: np.ndarray, tmp_path: Path) -> str:
    with pytest.raises(LlamaRunError) as info:
        compute_logits(model, windows, tmp_path / "x.npy", **PLAIN)
    message = str(info.value)
    assert "\n" not in message and model.name in message
    return message


def test_bad_files_fail_clearly_and_valid_ones_still_run(
    work: dict[str, Path], tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(np.random.default_rng(1).bytes(200_000))
    data = work["F32"].read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) // 2])
    for bad in (corrupt, truncated):
        message = _one_line_failure(bad, _windows(work), tmp_path)
        assert "during load" in message, message
    missing = _one_line_failure(tmp_path / "absent.gguf", _windows(work), tmp_path)
    assert "no model file" in missing
    run = compute_logits(work["Q8_0"], _windows(work)[:2], tmp_path / "ok.npy", **PLAIN)
    assert run.shape[0] == 2


def test_a_hang_is_killed_at_the_deadline(work: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(LlamaRunError, match=r"hung .*more than 0\.05 s and was killed"):
        compute_logits(work["F32"], _windows(work), tmp_path / "x.npy", timeout=0.05, **PLAIN)


def test_unknown_quant_type_is_a_clear_error(work: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UnknownQuantType, match=r"unknown llama\.cpp quantization type 'Q9_9'"):
        quantize(work["F32"], tmp_path / "x.gguf", "Q9_9")
    assert issubclass(UnknownQuantType, ConfigError) and issubclass(UnknownQuantType, ValueError)
    assert not (tmp_path / "x.gguf").exists()
    assert quantize(work["F32"], tmp_path / "y.gguf", " q4_k_m ").qtype == "Q4_K_M"


def test_quantize_with_an_importance_matrix(work: dict[str, Path], tmp_path: Path) -> None:
    info = gguf_info(work["F32"])
    assert info.n_params > 0
    rng = np.random.default_rng(0)
    names = {"output.weight": 256}
    for i in range(2):
        for key in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up"):
            names[f"blk.{i}.{key}.weight"] = 256
        names[f"blk.{i}.ffn_down.weight"] = 512
    imatrix = tmp_path / "imatrix.npz"
    np.savez(imatrix, **{k: rng.random(n).astype(np.float32) + 0.1 for k, n in names.items()})
    result = quantize(work["F32"], tmp_path / "imx.gguf", "Q4_0", imatrix=imatrix)
    assert result.imatrix_entries == len(names)
    assert gguf_info(result.path).tensor_types.get("Q4_0", 0) >= 1
    with pytest.raises(ConfigError, match="needs an importance matrix"):
        quantize(work["F32"], tmp_path / "iq.gguf", "IQ2_XS")


def test_an_abort_becomes_a_one_line_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a failed GGML_ASSERT looks like from outside: a message on stderr, then SIGABRT."""
    (tmp_path / "fake_abort.py").write_text(
        "import os, sys\n"
        "sys.stderr.write('[edgeproof] phase: load\\n')\n"
        "sys.stderr.write('ggml.c:1234: GGML_ASSERT(ne % 256 == 0) failed\\n')\n"
        "sys.stderr.flush()\n"
        "os.abort()\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(LlamaRunError) as info:
        run_module("fake_abort", {}, timeout=30, label="bad.gguf logits")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "bad.gguf logits: process killed by signal SIGABRT (llama.cpp abort, e.g. a failed "
        "GGML_ASSERT)"
    )
    assert "during load" in message and "GGML_ASSERT(ne % 256 == 0) failed" in message
    assert "RSS" in message
