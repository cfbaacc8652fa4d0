"""Train the example byte-level llama (~3.5M parameters) offline and write it as GGUF.

The llama.cpp target needs a language model whose quantization effects are real but that
builds on any runner without a download: a llama-architecture transformer trained for a
few minutes on 2 cores on text that ships with Python (``pydoc_data.topics``, ~466 KB of
the Python reference manual). Topics are split ~90/10 by bytes along whole topics, so
held-out text is whole documents the model never saw.

Shape (docs/architecture.md, "Runtime facts"): vocab 259 (3 specials + 256 bytes, byte b =
id 3 + b), n_embd 256, n_ff 768, 4 layers, 4 heads, context 256. Widths are multiples of
256 so llama.cpp's K-quants apply to every matrix. Conventions that llama.cpp's ``llama``
arch needs and this model is trained with: RMSNorm (eps 1e-5), SwiGLU feed-forward, rope
type 0 (rotate adjacent pairs 2i, 2i+1, base 10000), attention scale 1/sqrt(head_dim),
untied output. Trained that way, q/k weights are written unpermuted and ``nn.Linear`` weights as-is.

Training stops at a wall-clock budget (AdamW, cosine decay over the budget). A random
model's perplexity is ~256 per byte; DESIGN measured 3.58 after 285 s. ``build`` checks the
written GGUF against PyTorch with llama.cpp in a subprocess (top-1 agreement on held-out
windows) before reporting success, like the CNN example checks its ONNX export.

With ``hf_dir``, ``build`` also writes the same trained weights as a Hugging Face-layout
folder (``LlamaForCausalLM`` config.json + model.safetensors, the GGUF's precision) for the
MLX target. HF Llama applies rope with rotate-half (pairs i, i + d/2), not to adjacent pairs
as this model is trained: each head's q and k rows are permuted (2i -> i, 2i+1 -> i + d/2,
the inverse of the permute in llama.cpp's HF converter). Attention scores are q.k over a
head, which the same permutation of q and k leaves unchanged, so the folder computes the
same logits. ``build`` checks it with MLX in a subprocess (top-1 agreement with PyTorch and
with llama.cpp) when MLX is installed, and records why not otherwise.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import LlamaExampleConfig
from edgeproof.errors import EdgeproofError
from edgeproof.targets.llama_cpp.gguf_model import (
    N_VOCAB,
    LlamaHParams,
    byte_windows,
    write_llama_gguf,
)

HPARAMS = LlamaHParams(n_embd=256, n_ff=768, n_layer=4, n_head=4, n_head_kv=4, n_ctx=256)


def corpus_split(heldout_share: float = 0.1) -> tuple[bytes, bytes]:
    """(train, held-out) UTF-8 bytes of ``pydoc_data.topics``, split by whole topics.

    Topics in sorted name order; the last ones are held out until they hold at least
    ``heldout_share`` of the bytes (10.8% at 0.1 on Python 3.11: typesmapping..yield).
    """
    from pydoc_data.topics import topics

    keys = sorted(topics)
    total = sum(len(topics[k].encode()) for k in keys)
    cut, held = len(keys), 0
    while cut > 1 and held < heldout_share * total:
        cut -= 1
        held += len(topics[keys[cut]].encode())
    train = "\n\n".join(topics[k] for k in keys[:cut]).encode()
    return train, "\n\n".join(topics[k] for k in keys[cut:]).encode()


def build_model(hp: LlamaHParams = HPARAMS) -> Any:
    """A llama-architecture ``nn.Module`` that maps (batch, seq) ids to (batch, seq, vocab)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class RMSNorm(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(dim))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + hp.rms_eps) * self.weight

    def rope(x: torch.Tensor) -> torch.Tensor:
        """Rope type 0: rotate adjacent pairs (2i, 2i+1) of each head by pos * base^(-2i/d)."""
        seq, dim = x.shape[-2], x.shape[-1]
        inv = hp.rope_theta ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
        angle = torch.arange(seq, dtype=torch.float32)[:, None] * inv[None, :]
        cos, sin = angle.cos(), angle.sin()
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d, kv = hp.n_embd, hp.n_head_kv * hp.head_dim
            self.attn_norm, self.ffn_norm = RMSNorm(d), RMSNorm(d)
            self.q = nn.Linear(d, d, bias=False)
            self.k = nn.Linear(d, kv, bias=False)
            self.v = nn.Linear(d, kv, bias=False)
            self.o = nn.Linear(d, d, bias=False)
            self.gate = nn.Linear(d, hp.n_ff, bias=False)
            self.up = nn.Linear(d, hp.n_ff, bias=False)
            self.down = nn.Linear(hp.n_ff, d, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, s, _ = x.shape
            h = self.attn_norm(x)

            def heads(t: torch.Tensor, n: int) -> torch.Tensor:
                return t.view(b, s, n, hp.head_dim).transpose(1, 2)

            q = rope(heads(self.q(h), hp.n_head))
            k = rope(heads(self.k(h), hp.n_head_kv))
            v = heads(self.v(h), hp.n_head_kv)
            att = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, enable_gqa=hp.n_head != hp.n_head_kv
            )
            x = x + self.o(att.transpose(1, 2).reshape(b, s, hp.n_embd))
            h = self.ffn_norm(x)
            return x + self.down(F.silu(self.gate(h)) * self.up(h))

    class TinyLlama(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok_emb = nn.Embedding(hp.n_vocab, hp.n_embd)
            self.blocks = nn.ModuleList(Block() for _ in range(hp.n_layer))
            self.norm = RMSNorm(hp.n_embd)
            self.output = nn.Linear(hp.n_embd, hp.n_vocab, bias=False)
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Embedding):
                    nn.init.normal_(module.weight, std=0.02)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            x = self.tok_emb(ids)
            for block in self.blocks:
                x = block(x)
            return self.output(self.norm(x))

    return TinyLlama()


def gguf_weights(model: Any) -> dict[str, np.ndarray]:
    """The model's weights under llama.cpp's tensor names (float32, shapes as in torch)."""
    names = {
        "token_embd.weight": model.tok_emb.weight,
        "output_norm.weight": model.norm.weight,
        "output.weight": model.output.weight,
    }
    for i, blk in enumerate(model.blocks):
        names.update(
            {
                f"blk.{i}.attn_norm.weight": blk.attn_norm.weight,
                f"blk.{i}.attn_q.weight": blk.q.weight,
                f"blk.{i}.attn_k.weight": blk.k.weight,
                f"blk.{i}.attn_v.weight": blk.v.weight,
                f"blk.{i}.attn_output.weight": blk.o.weight,
                f"blk.{i}.ffn_norm.weight": blk.ffn_norm.weight,
                f"blk.{i}.ffn_gate.weight": blk.gate.weight,
                f"blk.{i}.ffn_up.weight": blk.up.weight,
                f"blk.{i}.ffn_down.weight": blk.down.weight,
            }
        )
    return {k: v.detach().float().numpy().copy() for k, v in names.items()}


def rotate_half_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """q/k rows of a model with rope on adjacent pairs, reordered for rotate-half rope:
    within each head, row 2i goes to i and row 2i+1 to i + head_dim/2."""
    out_dim, in_dim = weight.shape
    head_dim = out_dim // n_heads
    return (
        weight.reshape(n_heads, head_dim // 2, 2, in_dim)
        .transpose(0, 2, 1, 3)
        .reshape(out_dim, in_dim)
    )


def hf_weights(model: Any, hp: LlamaHParams = HPARAMS) -> dict[str, np.ndarray]:
    """The model's weights under Hugging Face Llama's names (float32), q/k rows permuted for
    rotate-half rope (see the module docstring)."""
    gguf = gguf_weights(model)
    out = {
        "model.embed_tokens.weight": gguf["token_embd.weight"],
        "model.norm.weight": gguf["output_norm.weight"],
        "lm_head.weight": gguf["output.weight"],
    }
    names = {
        "attn_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    for i in range(hp.n_layer):
        for short, long in names.items():
            weight = gguf[f"blk.{i}.{short}.weight"]
            if short in ("attn_q", "attn_k"):
                weight = rotate_half_rows(weight, hp.n_head if short == "attn_q" else hp.n_head_kv)
            out[f"model.layers.{i}.{long}.weight"] = weight
    return out


def write_hf_model(folder: Path, model: Any, hp: LlamaHParams, dtype: str) -> Path:
    """Write the model as a Hugging Face-layout llama folder (``dtype``: "float16" or
    "float32"), checked before it is renamed into place."""
    from edgeproof.targets.llama_cpp.gguf_model import BOS_ID, EOS_ID
    from edgeproof.targets.mlx.hf_model import llama_config, write_hf_folder

    config = llama_config(
        vocab_size=hp.n_vocab,
        hidden_size=hp.n_embd,
        intermediate_size=hp.n_ff,
        num_hidden_layers=hp.n_layer,
        num_attention_heads=hp.n_head,
        num_key_value_heads=hp.n_head_kv,
        max_position_embeddings=hp.n_ctx,
        rms_norm_eps=hp.rms_eps,
        rope_theta=hp.rope_theta,
        dtype=dtype,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
    )
    return write_hf_folder(folder, config, hf_weights(model, hp), dtype)


def importance_matrix(model: Any, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Mean squared input of every matrix (llama-imatrix's statistic), keyed by GGUF name.

    ``ids``: (n, seq) token windows, e.g. from the training split (never the held-out one).
    """
    import torch

    modules = {
        "output.weight": model.output,
        **{
            f"blk.{i}.{name}.weight": getattr(blk, attr)
            for i, blk in enumerate(model.blocks)
            for name, attr in (
                ("attn_q", "q"), ("attn_k", "k"), ("attn_v", "v"), ("attn_output", "o"),
                ("ffn_gate", "gate"), ("ffn_up", "up"), ("ffn_down", "down"),
            )
        },
    }  # fmt: skip
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(name: str) -> Any:
        def record(_module: Any, inputs: tuple[torch.Tensor, ...], _output: Any) -> None:
            x = inputs[0].reshape(-1, inputs[0].shape[-1]).double()
            sums[name] = sums.get(name, 0) + x.pow(2).sum(0)
            counts[name] = counts.get(name, 0) + x.shape[0]

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        with torch.no_grad():
            for start in range(0, len(ids), 8):
                model(torch.from_numpy(ids[start : start + 8]).long())
    finally:
        for handle in handles:
            handle.remove()
    return {n: (sums[n] / counts[n]).float().numpy() for n in modules}


def _train(model: Any, train: bytes, seconds: float, seed: int, hp: LlamaHParams) -> int:
    """AdamW on random windows until ``seconds`` pass; returns the number of steps.

    Warm-up ends after 30 steps or 5% of the budget, whichever comes first (on a busy
    2-core runner a step can take seconds), then cosine decay to 10% over the budget.
    Batch 8 x 256 bytes: under a fixed time budget more, smaller steps train faster.
    """
    import torch
    from torch.nn import functional as F

    data = torch.from_numpy(np.frombuffer(train, dtype=np.uint8).astype(np.int64) + 3)
    gen = torch.Generator().manual_seed(seed)
    batch, peak_lr, warmup_steps = 8, 3e-3, 30
    opt = torch.optim.AdamW(model.parameters(), lr=peak_lr, betas=(0.9, 0.95), weight_decay=0.1)
    model.train()
    start, step = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        frac = min(1.0, elapsed / seconds)
        warm = min(1.0, max((step + 1) / warmup_steps, frac / 0.05))
        lr = peak_lr * warm * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = lr
        offsets = torch.randint(0, len(data) - hp.n_ctx - 1, (batch,), generator=gen)
        chunk = data[offsets[:, None] + torch.arange(hp.n_ctx + 1)[None, :]]
        logits = model(chunk[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, hp.n_vocab), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
    model.eval()
    return step


def torch_logits(model: Any, windows: np.ndarray) -> np.ndarray:
    """PyTorch logits (float32) for each window's first ``ctx`` ids: (n, ctx, vocab)."""
    import torch

    with torch.no_grad():
        return np.concatenate(
            [
                model(torch.from_numpy(windows[i : i + 8, :-1]).long()).numpy()
                for i in range(0, len(windows), 8)
            ]
        )


def _perplexity(logits: np.ndarray, targets: np.ndarray) -> float:
    from scipy.special import log_softmax

    log_p = log_softmax(logits.astype(np.float64), axis=-1)
    nll = -np.take_along_axis(log_p, targets[..., None].astype(np.int64), axis=-1)
    return float(np.exp(nll.mean()))


def llama_cpp_logits(gguf_path: Path, windows: np.ndarray, threads: int = 2) -> np.ndarray:
    """llama.cpp's logits (subprocess) on the second half of each token window."""
    from edgeproof.targets.llama_cpp.runner import compute_logits

    out = gguf_path.with_name(f".{gguf_path.stem}.verify.npy")
    try:
        compute_logits(
            gguf_path,
            windows,
            out,
            threads=threads,
            extra_buffer_types=False,  # checks the file, not the kernels (AMX: see worker)
        )
        return np.load(out, allow_pickle=False)
    finally:
        out.unlink(missing_ok=True)


def mlx_logits(folder: Path, windows: np.ndarray, threads: int = 2) -> np.ndarray:
    """MLX's logits (subprocess, CPU) of a Hugging Face-layout folder on the second half of
    each token window."""
    from edgeproof.targets.mlx.runner import compute_logits

    out = folder.with_name(f".{folder.name}.verify.npy")
    try:
        compute_logits(folder, windows, out, threads=threads)
        return np.load(out, allow_pickle=False)
    finally:
        out.unlink(missing_ok=True)


def agreement(got: np.ndarray, expected: np.ndarray, prefix: str) -> dict[str, float]:
    """``<prefix>_top1_agreement`` and ``<prefix>_max_abs_logit_diff`` of two logit arrays."""
    return {
        f"{prefix}_top1_agreement": float((got.argmax(-1) == expected.argmax(-1)).mean()),
        f"{prefix}_max_abs_logit_diff": float(np.abs(got - expected).max()),
    }


def verify_with_llama_cpp(
    model: Any, gguf_path: Path, windows: np.ndarray, threads: int = 2
) -> dict[str, float]:
    """Top-1 agreement and max |logit diff| of llama.cpp (subprocess) vs PyTorch on held-out
    token windows (n, ctx + 1)."""
    ctx = windows.shape[1] - 1
    expected = torch_logits(model, windows)[:, ctx // 2 :]
    return agreement(llama_cpp_logits(gguf_path, windows, threads), expected, "llama_cpp")


def verify_hf_with_mlx(
    model: Any, folder: Path, windows: np.ndarray, threads: int = 2, llama_cpp: Any = None
) -> dict[str, Any]:
    """MLX (subprocess) vs PyTorch, and vs ``llama_cpp`` logits when given, on held-out token
    windows; ``{"mlx_check": "skipped: <reason>"}`` where MLX is not installed."""
    from edgeproof.targets.mlx.target import mlx_availability

    available = mlx_availability()
    if not available.ok:
        return {"mlx_check": f"skipped: {available.reason}"}
    ctx = windows.shape[1] - 1
    expected = torch_logits(model, windows)[:, ctx // 2 :]
    got = mlx_logits(folder, windows, threads)
    check: dict[str, Any] = {"mlx_check": available.runtime_version}
    check.update(agreement(got, expected, "mlx"))
    if llama_cpp is not None:
        check.update(agreement(got, llama_cpp, "mlx_vs_llama_cpp"))
    return check


def token_splits(
    train: bytes, heldout: bytes, ctx: int, eval_windows: int, calibration_windows: int
) -> tuple[np.ndarray, np.ndarray]:
    """(eval, calibration) token windows (n, ctx + 1): the first ``eval_windows`` of the
    held-out text, and ``calibration_windows`` spread evenly over the training text."""
    evaluation = byte_windows(heldout, ctx, eval_windows)
    train_windows = byte_windows(train, ctx)
    step = max(1, len(train_windows) // calibration_windows)
    return evaluation, train_windows[::step][:calibration_windows]


def build(
    model_path: Path,
    data_dir: Path,
    metrics_path: Path,
    config: LlamaExampleConfig,
    verify: bool = True,
    hf_dir: Path | None = None,
) -> dict[str, Any]:
    """Train for ``config.seconds`` and write the GGUF at ``model_path``; ``eval.npz`` and
    ``calibration.npz`` (array ``tokens``: (n, ctx + 1) token windows) and ``imatrix.npz``
    into ``data_dir``; with ``hf_dir``, the same weights as a Hugging Face-layout folder
    there; the training and check figures to ``metrics_path``. Returns them."""
    import torch

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    Path(model_path).parent.mkdir(parents=True, exist_ok=True)
    train, heldout = corpus_split()
    model = build_model(HPARAMS)
    start = time.perf_counter()
    steps = _train(model, train, config.seconds, config.seed, HPARAMS)
    train_seconds = time.perf_counter() - start

    ctx = HPARAMS.n_ctx
    windows = byte_windows(heldout, ctx)
    logits = torch_logits(model, windows)
    first = ctx // 2
    evaluation, calibration = token_splits(
        train, heldout, ctx, config.eval_windows, config.calibration_windows
    )
    np.savez(data_dir / "eval.npz", tokens=evaluation)
    np.savez(data_dir / "calibration.npz", tokens=calibration)
    gguf_path = write_llama_gguf(Path(model_path), gguf_weights(model), HPARAMS, config.file_type)
    np.savez(data_dir / "imatrix.npz", **importance_matrix(model, calibration[:, :-1]))
    metrics: dict[str, Any] = {
        "params": int(sum(p.numel() for p in model.parameters())),
        "train_bytes": len(train),
        "heldout_bytes": len(heldout),
        "train_seconds": round(train_seconds, 1),
        "train_steps": steps,
        "eval_windows": len(evaluation),
        "heldout_perplexity_per_byte": _perplexity(logits, windows[:, 1:]),
        "heldout_perplexity_second_half": _perplexity(logits[:, first:], windows[:, first + 1 :]),
        "uniform_perplexity": float(N_VOCAB),
        "gguf_bytes": gguf_path.stat().st_size,
    }
    if hf_dir is not None:
        dtype = "float32" if config.file_type == "F32" else "float16"
        hf_path = write_hf_model(Path(hf_dir), model, HPARAMS, dtype)
        metrics["hf_bytes"] = sum(f.stat().st_size for f in hf_path.iterdir())
    if verify:
        windows8 = evaluation[:8]
        expected = torch_logits(model, windows8)[:, first:]
        by_llama = llama_cpp_logits(gguf_path, windows8, threads=config.threads)
        check = agreement(by_llama, expected, "llama_cpp")
        metrics.update(check)
        if check["llama_cpp_top1_agreement"] < 0.99:
            raise EdgeproofError(
                f"llama.cpp disagrees with PyTorch on {gguf_path.name}: top-1 agreement "
                f"{check['llama_cpp_top1_agreement']:.2%} (expected >= 99%)"
            )
        if hf_dir is not None:
            mlx_check = verify_hf_with_mlx(
                model, Path(hf_dir), windows8, threads=config.threads, llama_cpp=by_llama
            )
            metrics.update(mlx_check)
            if mlx_check.get("mlx_top1_agreement", 1.0) < 0.99:
                raise EdgeproofError(
                    f"MLX disagrees with PyTorch on {Path(hf_dir).name}: top-1 agreement "
                    f"{mlx_check['mlx_top1_agreement']:.2%} (expected >= 99%)"
                )
    Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(metrics_path).with_name(f".{Path(metrics_path).name}.tmp")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, metrics_path)
    return metrics
