"""Simulated trust benchmark of winner selection and early verdicts (pure numpy, seeded).

Run: ``python benchmarks/trust_sim.py [--reps 3000] [--out benchmarks/results]``; writes
``trust_sim.md`` and ``trust_sim.json``; about 30 s of CPU on one core.

Noise model (log scale, per block of 25 samples; the harness interleaves one baseline and
one candidate block per pair, in random order):

- between windows: each candidate is measured in its own window, and the machine's speed
  in that window is ``exp(N(0, window_sd))``, shared by the candidate and its baseline
  blocks (0.10: absolute medians of two windows differ by 10-30%, as in issue 21);
- within a window: a random walk of the machine's speed, step ``drift_sd`` per block
  pair, shared by the two blocks of a pair;
- per block: the median of 25 lognormal samples (``sample_sd``) is drawn as
  ``N(0, 1.2533 * sample_sd / 5)`` (the median's asymptotic sd), plus independent
  block noise ``N(0, block_sd)`` and, with probability ``burst_p``, a burst of another
  process slowing that block alone by ``U(0.05, burst_max)``.

The candidate's speedup estimate is ``exp(mean d)`` with a Student-t 99% CI over the
block log-ratios ``d``, sampled as the harness does: until the CI half-width is <= 2%
(``precise_enough``), at least 4 and at most 120 block pairs. (The engine's speedup is the
ratio of medians with a block-bootstrap CI; both estimate the same ratio here, and the
t interval keeps this simulation fast.)

(a) Selection: two passing candidates, the faster at 2.5x, the slower ``gap`` slower;
the slower is listed first and smaller, so every tie goes to it (the worst case for the
stated tie rule). Old rule: the lower absolute median of the two windows; new rule:
``select_paired``; with head-to-head (what a run does): ``select_paired`` with the gates'
1% tie tolerance (``gates.speed_tie_tolerance``), and when it reports a tie measured only
via the baseline, the pair is timed head-to-head (the same stopping rule) and selected
again.

(b) Early verdicts: the speed gate ``speedup >= 0.95`` (the trust benchmark's regression
gate) and issue 21's gate ``speedup >= 1.2``, decided by ``speed_look`` at looks
4, 8, 16, 32, 64, 120 block pairs (Pocock-type and O'Brien-Fleming-type spending, 99%),
against the fixed-sample rule (the harness's precision stop, then the plain 99% CI) and
naive peeking (the plain CI at each look). Also the proportion and mean gates at their
limit (the worst case for their error rates).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from edgeproof.config import GatesConfig
from edgeproof.gates.paired_selection import Entrant, HeadToHead, select_paired
from edgeproof.gates.sequential import (
    SequentialDesign,
    Spending,
    looks_schedule,
    mean_look,
    proportion_look,
    wilson,
)
from edgeproof.gates.stats import speedup_ci
from edgeproof.records import Estimate

BLOCK = 25
MIN_BLOCKS, MAX_BLOCKS = 4, 120
CONF = 0.99
SPEED_TOL = GatesConfig().speed_tie_tolerance  # a lead within it is a tie (the default)
REL_HALF = 0.02


@dataclass(frozen=True)
class Noise:
    name: str
    window_sd: float = 0.10
    drift_sd: float = 0.02
    sample_sd: float = 0.15
    block_sd: float = 0.03
    burst_p: float = 0.05
    burst_max: float = 0.4


# typical: the precision stop after ~30-60 block pairs, as the real trust benchmark's A/A
# runs (benchmarks/results/trust.md: ~5 s per verdict); noisy: a 2-core runner shared
# with other jobs, where 120 block pairs give a ~2.5% half-width
PROFILES = (
    Noise("typical", sample_sd=0.10, block_sd=0.02, burst_p=0.02, burst_max=0.2),
    Noise("noisy"),
)


def _block_noise(rng: np.random.Generator, noise: Noise, shape: tuple[int, ...]) -> np.ndarray:
    med_sd = 1.2533 * noise.sample_sd / math.sqrt(BLOCK)
    x = rng.normal(0.0, math.hypot(med_sd, noise.block_sd), shape)
    burst = rng.random(shape) < noise.burst_p
    return x + burst * rng.uniform(0.05, noise.burst_max, shape)


def paired_blocks(
    rng: np.random.Generator,
    noise: Noise,
    reps: int,
    log_a: float,
    log_b: float,
    blocks: int = MAX_BLOCKS,
) -> tuple[np.ndarray, np.ndarray]:
    """Log block medians of two models interleaved in one window each replicate."""
    shape = (reps, blocks)
    window = rng.normal(0.0, noise.window_sd, (reps, 1))
    drift = np.cumsum(rng.normal(0.0, noise.drift_sd, shape), axis=1)
    a = log_a + window + drift + _block_noise(rng, noise, shape)
    b = log_b + window + drift + _block_noise(rng, noise, shape)
    return a, b


def _t_half(d: np.ndarray, n: np.ndarray | int, conf: float = CONF) -> np.ndarray:
    return stats.t.ppf(0.5 + conf / 2.0, np.asarray(n) - 1) * d


def stop_blocks(d: np.ndarray) -> np.ndarray:
    """Blocks the harness's precision rule takes: first n >= 4 with a 99% t half-width
    of the mean log-ratio <= log(1.02), else all of ``d``'s columns (120)."""
    n = np.arange(1, d.shape[1] + 1)
    s1, s2 = np.cumsum(d, axis=1), np.cumsum(d * d, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (s2 - s1 * s1 / n) / (n - 1)
        half = _t_half(np.sqrt(np.maximum(var, 0.0)) / np.sqrt(n), n)
    ok = (n >= MIN_BLOCKS) & (half <= math.log1p(REL_HALF))
    ok[:, -1] = True
    return ok.argmax(axis=1) + 1


def t_estimate(d: np.ndarray) -> Estimate:
    n = d.size
    m = float(d.mean())
    h = float(_t_half(d.std(ddof=1) / math.sqrt(n), n))
    return Estimate(value=math.exp(m), low=math.exp(m - h), high=math.exp(m + h), confidence=CONF)


# ---------------------------------------------------------------- (a) selection


def selection(rng: np.random.Generator, noise: Noise, reps: int, gap: float) -> dict[str, Any]:
    base = math.log(1.5)
    fast = base - math.log(2.5)
    slow = fast + math.log1p(gap)
    out = {"old": 0, "paired": 0, "head_to_head": 0, "h2h_runs": 0, "blocks": 0.0}
    # each candidate in its own window, against the shared baseline
    bf, cf = paired_blocks(rng, noise, reps, base, fast)
    bs, cs = paired_blocks(rng, noise, reps, base, slow)
    df, ds = bf - cf, bs - cs
    nf, ns = stop_blocks(df), stop_blocks(ds)
    ha, hb = paired_blocks(rng, noise, reps, slow, fast)  # head-to-head, when wanted
    nh = stop_blocks(ha - hb)
    for r in range(reps):
        med_fast = float(np.median(cf[r, : nf[r]]))
        med_slow = float(np.median(cs[r, : ns[r]]))
        out["old"] += med_slow < med_fast or (med_slow == med_fast)
        slow_e = Entrant("slow", t_estimate(ds[r, : ns[r]]), 1.0, 100.0)  # listed first,
        fast_e = Entrant("fast", t_estimate(df[r, : nf[r]]), 1.3, 100.0)  # smaller: ties
        sel = select_paired([slow_e, fast_e])
        out["paired"] += sel.winner == "slow"
        out["blocks"] += nf[r] + ns[r]
        # what a run does: the gates' tie tolerance, and head-to-head timing of a tie
        sel = select_paired([slow_e, fast_e], speed_tol=SPEED_TOL)
        if sel.wanted_head_to_head:
            out["h2h_runs"] += 1
            k = nh[r]
            pair = HeadToHead(np.exp(ha[r, :k]), np.exp(hb[r, :k]))
            sel = select_paired(
                [slow_e, fast_e], head_to_head={("slow", "fast"): pair}, speed_tol=SPEED_TOL
            )
        out["head_to_head"] += sel.winner == "slow"
    res = {k: out[k] / reps for k in ("old", "paired", "head_to_head")}
    res["flip_old"] = 2 * res["old"] * (1 - res["old"])
    res["flip_paired"] = 2 * res["paired"] * (1 - res["paired"])
    res["flip_head_to_head"] = 2 * res["head_to_head"] * (1 - res["head_to_head"])
    res["head_to_head_share"] = out["h2h_runs"] / reps
    res["mean_blocks_per_candidate"] = out["blocks"] / (2 * reps)
    return res


def bootstrap_check(
    rng: np.random.Generator, noise: Noise, reps: int, gap: float, blocks: int = 48
) -> dict[str, Any]:
    """(a) with the engine's own speedup estimator: raw samples (25 per block, lognormal
    ``sample_sd`` around the block's level), ``gates.stats.speedup_ci`` (ratio of medians,
    paired block bootstrap, 500 resamples) at a fixed ``blocks`` pairs per candidate."""
    base = math.log(1.5)
    fast = base - math.log(2.5)
    slow = fast + math.log1p(gap)
    wins = 0
    for r in range(reps):
        est = {}
        for name, log_m in (("slow", slow), ("fast", fast)):
            window = rng.normal(0.0, noise.window_sd)
            drift = np.cumsum(rng.normal(0.0, noise.drift_sd, blocks))
            levels = []
            for log_x in (base, log_m):
                burst = rng.random(blocks) < noise.burst_p
                level = log_x + window + drift + rng.normal(0.0, noise.block_sd, blocks)
                level += burst * rng.uniform(0.05, noise.burst_max, blocks)
                samples = level[:, None] + rng.normal(0.0, noise.sample_sd, (blocks, BLOCK))
                levels.append(np.exp(samples).ravel())
            est[name] = speedup_ci(levels[0], levels[1], BLOCK, CONF, resamples=500, seed=r)
        sel = select_paired(
            [Entrant("slow", est["slow"], 1.0, 100.0), Entrant("fast", est["fast"], 1.3, 100.0)]
        )
        wins += sel.winner == "slow"
    return {
        "noise": noise.name,
        "gap": gap,
        "blocks": blocks,
        "reps": reps,
        "slower_wins": wins / reps,
    }


# ---------------------------------------------------------------- (b) early verdicts


def rci_rule(
    d: np.ndarray,
    limit: float,
    design: SequentialDesign,
    looks: tuple[int, ...],
    precision: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized ``speed_look`` over replicates: decision codes (1 pass, -1 fail,
    0 inconclusive) and the block pairs used."""
    reps = d.shape[0]
    decision = np.zeros(reps, dtype=int)
    used = np.full(reps, looks[-1])
    open_ = np.ones(reps, dtype=bool)
    lim = math.log(limit)
    for k, n in enumerate(looks, start=1):
        x = d[:, :n]
        m, se = x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(n)
        c = stats.t.isf(stats.norm.sf(design.constant(looks[:k])), n - 1)
        passed, failed = open_ & (m - c * se >= lim), open_ & (m + c * se < lim)
        decision[passed], decision[failed] = 1, -1
        stop = passed | failed
        if precision is not None:
            stop |= open_ & (c * se <= math.log1p(precision))  # precise: inconclusive
        used[stop] = n
        open_ &= ~stop
    return decision, used


def naive_rule(
    d: np.ndarray, limit: float, looks: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The plain 99% CI at every look, stopping at the first decisive one."""
    reps = d.shape[0]
    decision, used = np.zeros(reps, dtype=int), np.full(reps, looks[-1])
    open_ = np.ones(reps, dtype=bool)
    lim = math.log(limit)
    for n in looks:
        x = d[:, :n]
        m, h = x.mean(axis=1), _t_half(x.std(axis=1, ddof=1) / math.sqrt(n), n)
        passed, failed = open_ & (m - h >= lim), open_ & (m + h < lim)
        decision[passed], decision[failed] = 1, -1
        used[passed | failed] = n
        open_ &= ~(passed | failed)
    return decision, used


def fixed_rule(d: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Today's harness: sample to the precision stop, then the plain 99% CI once."""
    n = stop_blocks(d)
    decision = np.zeros(d.shape[0], dtype=int)
    lim = math.log(limit)
    for r in range(d.shape[0]):
        x = d[r, : n[r]]
        m, h = x.mean(), _t_half(x.std(ddof=1) / math.sqrt(n[r]), n[r])
        decision[r] = 1 if m - h >= lim else -1 if m + h < lim else 0
    return decision, n


RULES = (
    "pocock",
    "pocock+precision",
    "obrien-fleming",
    "naive_peeking",
    "fixed_precision_stop",
)


def _rates(decision: np.ndarray, used: np.ndarray) -> dict[str, float]:
    return {
        "pass": float((decision == 1).mean()),
        "fail": float((decision == -1).mean()),
        "inconclusive": float((decision == 0).mean()),
        "mean_blocks": float(used.mean()),
        "p90_blocks": float(np.quantile(used, 0.9)),
    }


SPEED_CASES = (  # name, true speedup, gate, candidate latency for seconds
    ("A/A (identical)", 1.0, 0.95),
    ("at the limit (0.95x)", 0.95, 0.95),
    ("10% slower", 1 / 1.10, 0.95),
    ("20% slower", 1 / 1.20, 0.95),
    ("issue 21: 0.11x vs min 1.2x", 0.11, 1.2),
    ("2.5x vs min 1.2x", 2.5, 1.2),
)


def early_verdicts(
    rng: np.random.Generator, noise: Noise, reps: int, max_blocks: int = MAX_BLOCKS
) -> list[dict[str, Any]]:
    looks = looks_schedule(MIN_BLOCKS, max_blocks)
    designs: dict[str, Spending] = {"pocock": "pocock", "obrien-fleming": "obrien-fleming"}
    rows = []
    base_ms = 1.5
    for name, speedup, gate in SPEED_CASES:
        b, c = paired_blocks(
            rng, noise, reps, math.log(base_ms), math.log(base_ms / speedup), max_blocks
        )
        d = b - c
        row: dict[str, Any] = {"case": name, "true_speedup": speedup, "min_speedup": gate}
        for label, spending in designs.items():
            design = SequentialDesign(max_blocks, 1 - CONF, spending, MIN_BLOCKS)
            row[label] = _rates(*rci_rule(d, gate, design, looks))
        pocock = SequentialDesign(max_blocks, 1 - CONF, "pocock", MIN_BLOCKS)
        row["pocock+precision"] = _rates(*rci_rule(d, gate, pocock, looks, REL_HALF))
        row["naive_peeking"] = _rates(*naive_rule(d, gate, looks))
        row["fixed_precision_stop"] = _rates(*fixed_rule(d, gate))
        pair_ms = BLOCK * (base_ms + base_ms / speedup) / 1000.0  # seconds per block pair
        row["seconds_per_block_pair"] = pair_ms
        rows.append(row)
    return rows


def other_gates(rng: np.random.Generator, reps: int) -> dict[str, Any]:
    """Proportion and mean gates with the truth exactly at the limit: P(pass) <= alpha/2.

    Calls ``proportion_look`` and ``mean_look`` themselves, look by look."""
    looks = (100, 200, 400, 800, 1000)
    design = SequentialDesign(1000, 1 - CONF, "pocock", 100)
    out: dict[str, Any] = {"looks": list(looks), "alpha_over_2": (1 - CONF) / 2}
    lim_p, lim_kl = 0.98, 0.05
    cases: tuple[tuple[str, Callable[[np.ndarray, list[int]], Any]], ...] = (
        ("top1", lambda x, lk: proportion_look(x, lk, design, lim_p, "min")),
        ("kl", lambda x, lk: mean_look(x, lk, design, lim_kl, "max")),
    )
    for name, look in cases:
        if name == "top1":
            data = rng.random((reps, 1000)) < lim_p
        else:
            data = rng.gamma(0.5, lim_kl / 0.5, (reps, 1000))  # right-skewed, mean = limit
        passed = failed = 0
        items = 0.0
        for r in range(reps):
            for k in range(1, len(looks) + 1):
                res = look(data[r], list(looks[:k]))
                if res.decision != "continue":
                    break
            passed += res.decision == "pass"
            failed += res.decision == "fail"
            items += res.n
        out[name] = {"pass": passed / reps, "fail": failed / reps, "mean_items": items / reps}
    return out


# ---------------------------------------------------------------- report


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _wilson_hi(p: float, n: int) -> str:
    lo, hi = wilson(round(p * n), n, 1.96)
    return f"[{lo * 100:.2f}, {hi * 100:.2f}]"


def _row(result: dict[str, Any], noise: str, case: str) -> dict[str, Any]:
    prof = next(p for p in result["early"] if p["noise"] == noise)
    return next(r for r in prof["rows"] if r["case"] == case)


def summary(result: dict[str, Any]) -> list[str]:
    """The goals of issue 21, checked."""
    out = ["## Goals", ""]
    for row in result["selection"]:
        if row["gap"] == 0.15:
            out.append(
                f"- {row['noise']}: 15% apart, the slower wins {_pct(row['paired'])} "
                f"(paired), {_pct(row['head_to_head'])} (with head-to-head); goal <= 1%; "
                f"old rule {_pct(row['old'])}"
            )
    for prof in result["early"]:
        noise = prof["noise"]
        aa = _row(result, noise, "A/A (identical)")["pocock"]
        slow = _row(result, noise, "10% slower")["pocock"]
        fixed = _row(result, noise, "10% slower")["fixed_precision_stop"]
        gross = _row(result, noise, "issue 21: 0.11x vs min 1.2x")
        out.append(
            f"- {noise}: A/A false-fail {_pct(aa['fail'])} (goal <= 1%); 10% slowdown "
            f"caught {_pct(slow['fail'])} (goal >= 99%; fixed-sample rule "
            f"{_pct(fixed['fail'])}) after {slow['mean_blocks']:.0f} block pairs on "
            f"average (fixed: {fixed['mean_blocks']:.0f}); the 0.11x candidate fails after "
            f"{gross['pocock']['mean_blocks']:.0f} pairs "
            f"(fixed: {gross['fixed_precision_stop']['mean_blocks']:.0f})"
        )
    return out


def render(result: dict[str, Any]) -> str:
    reps = result["reps"]
    lines = [
        "# Simulated trust benchmark: selection and early verdicts",
        "",
        f"`benchmarks/trust_sim.py`, seed {result['seed']}, {reps} replicates per cell, "
        f"{result['cpu_seconds']:.0f} s of CPU ({result['seconds']:.0f} s wall). "
        "Noise model and rules: the script's docstring. "
        "Rates are shares of replicates, with 95% Wilson intervals where it matters.",
        "",
        *summary(result),
        "",
        "## (a) Selection error: how often the slower of two passing candidates wins",
        "",
        "The slower one is listed first and smaller, so every tie within noise goes to it "
        "(worst case for the tie rule). At gap 0% the 'slower' one is the tie rule's pick: "
        "a high rate there means a stable winner. Flip = P(two unchanged runs pick "
        "different winners) = 2p(1-p).",
        "",
        "| noise | gap | old rule (absolute medians) | paired | paired + head-to-head "
        "| head-to-head needed | flip old | flip paired | flip paired+h2h "
        "| block pairs / candidate |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["selection"]:
        lines.append(
            f"| {row['noise']} | {row['gap']:.0%} | {_pct(row['old'])} | {_pct(row['paired'])} "
            f"{_wilson_hi(row['paired'], reps)} | {_pct(row['head_to_head'])} "
            f"{_wilson_hi(row['head_to_head'], reps)} | {_pct(row['head_to_head_share'])} | "
            f"{_pct(row['flip_old'])} | {_pct(row['flip_paired'])} | "
            f"{_pct(row['flip_head_to_head'])} | "
            f"{row['mean_blocks_per_candidate']:.0f} |"
        )
    boot = result["selection_speedup_ci"]
    lines += [
        "",
        "The same with the engine's own estimator (raw samples, `gates.stats.speedup_ci`: "
        f"ratio of medians, paired block bootstrap), typical noise, {boot[0]['blocks']} "
        f"block pairs per candidate, {boot[0]['reps']} replicates: the slower one wins "
        + ", ".join(f"{_pct(b['slower_wins'])} at {b['gap']:.0%}" for b in boot)
        + ".",
    ]
    lines += [
        "",
        "## (b) Early verdicts of the speed gate (99%; looks at 4, 8, 16, 32, 64, 120 block "
        "pairs, or 4, 8, ..., 128, 240)",
        "",
        "pass / fail / inconclusive rates and mean (p90) block pairs to a verdict. "
        "'fixed' = today's harness: sample to the 2% precision stop (<= 120 pairs), then "
        "the plain 99% CI; 'naive' = the plain CI at each look (no error spending); "
        "'pocock+precision' also stops, inconclusive, once the RCI half-width is <= 2%. "
        "Seconds: block pairs x 25 x (baseline 1.5 ms + candidate ms), timing only.",
        "",
        "| noise | case | gate | rule | pass | fail | inconclusive | block pairs mean (p90) "
        "| ~seconds mean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for prof in result["early"]:
        for row in prof["rows"]:
            for rule in RULES:
                r = row[rule]
                secs = r["mean_blocks"] * row["seconds_per_block_pair"]
                lines.append(
                    f"| {prof['noise']} | {row['case']} | >= {row['min_speedup']:.2f}x | "
                    f"{rule} | {_pct(r['pass'])} | {_pct(r['fail'])} | "
                    f"{_pct(r['inconclusive'])} | {r['mean_blocks']:.1f} "
                    f"({r['p90_blocks']:.0f}) | {secs:.1f} |"
                )
    og = result["other_gates"]
    a2 = _pct(og["alpha_over_2"])
    lines += [
        "",
        "## Proportion and mean gates with the truth at the limit (worst case)",
        "",
        f"Pocock-type, 99%, looks at {og['looks']} items; a pass is the error here "
        f"(wanted <= {a2}).",
        "",
        "| gate | truth | pass (error) | fail | mean items |",
        "|---|---|---|---|---|",
        f"| top-1 agreement >= 98% | share 98% | {_pct(og['top1']['pass'])} | "
        f"{_pct(og['top1']['fail'])} | {og['top1']['mean_items']:.0f} |",
        f"| mean KL <= 0.05 (Hall-corrected) | gamma(0.5), mean 0.05 | "
        f"{_pct(og['kl']['pass'])} | {_pct(og['kl']['fail'])} | "
        f"{og['kl']['mean_items']:.0f} |",
        "",
    ]
    return "\n".join(lines)


def run(reps: int, seed: int, progress: Callable[[str], None] = print) -> dict[str, Any]:
    t0, c0 = time.monotonic(), time.process_time()
    rng = np.random.default_rng(seed)
    sel_rows = []
    for noise in PROFILES:
        for gap in (0.0, 0.05, 0.15):
            progress(f"selection {noise.name} gap {gap:.0%}")
            sel_rows.append({"noise": noise.name, "gap": gap, **selection(rng, noise, reps, gap)})
    boot = []
    for gap in (0.0, 0.05, 0.15):
        progress(f"selection with speedup_ci, gap {gap:.0%}")
        boot.append(bootstrap_check(rng, PROFILES[0], max(reps // 30, 20), gap))
    early = []
    for noise in PROFILES:
        progress(f"early verdicts {noise.name}")
        early.append({"noise": noise.name, "rows": early_verdicts(rng, noise, reps)})
    # the noisy runner with twice the block budget (looks 4, 8, ..., 128, 240)
    progress("early verdicts noisy, 240 block pairs")
    rows = early_verdicts(rng, PROFILES[1], reps, 2 * MAX_BLOCKS)
    early.append({"noise": "noisy, max 240 pairs", "rows": rows})
    progress("proportion and mean gates")
    other = other_gates(rng, reps)
    return {
        "seed": seed,
        "reps": reps,
        "profiles": [vars(p) for p in PROFILES],
        "selection": sel_rows,
        "selection_speedup_ci": boot,
        "early": early,
        "other_gates": other,
        "seconds": time.monotonic() - t0,
        "cpu_seconds": time.process_time() - c0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    result = run(args.reps, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trust_sim.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "trust_sim.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
