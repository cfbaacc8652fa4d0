"""Gate checks: a candidate's summary + the baseline's + thresholds -> ``Verdict``.

One ``Check`` per enabled threshold (``None`` disables it), in this order: accuracy.max_drop_abs,
accuracy.max_drop_rel, fidelity.min_top1_agreement, fidelity.max_kl (or, in their place, the
task kind's own checks: ``KindChecks``, e.g. a language model's), latency.p90_budget_ms,
latency.min_speedup, memory.max_peak_rss_mb, memory.min_reduction, size.max_mb,
op_coverage.min_accelerator_share (compiled accelerator candidates only; a miss names the
first op left on the CPU), energy.max_mj_per_inference, energy.min_reduction (skipped,
saying why, on a runner without an energy counter).

Sampled quantities are decided three ways from their confidence interval: **pass** when the
whole interval clears the limit (a bound equal to the limit clears it), **fail** when it
lies wholly on the wrong side, **inconclusive** otherwise. Peak RSS and size are
deterministic: pass or fail. Unlabelled eval data skips the accuracy checks. The baseline
gets only the absolute checks (p90 budget, peak RSS, size); relative ones are "skipped"
with message "baseline". A non-baseline candidate without paired baseline timings gets an
*inconclusive* min_speedup check (no evidence is not a pass).

Steady clocks: ``clocks`` is the measurement's ``environment["clocks"]`` record
(``measure.device_state``: how many of its timed blocks ran at unsteady clocks, and why).
When any did, each latency check that was decided (pass, fail or inconclusive) becomes
**inconclusive** under ``gates.latency.require_steady_clocks``, its message ending "N of M
blocks at unsteady clocks: <reasons>"; without the option the same words are only a note
in its message. A record that could read nothing (no cpufreq, thermal zones or throttle
state) has no unsteady blocks and changes nothing.

Verdict status (the literal "inconclusive" verdict status is never emitted here; it is left
to callers): "fail" if any check fails; else, if any check is inconclusive, it depends on
``gates.on_inconclusive``: "fail" and "rerun" give "fail" ("rerun": the flow measures such
candidates again before calling this for the final decision), "warn" gives "pass";
``gates.latency.on_inconclusive`` overrides it for the speed checks alone. ``reasons``
lists every failing and inconclusive check in check order, as ``"<name>: <message>"``,
``"<name>: inconclusive: <message>"`` or, under "warn", ``"<name>: warning: inconclusive:
<message>"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from edgeproof.config import GatesConfig
from edgeproof.gates.stats import min_samples_for_quantile
from edgeproof.records import CandidateSummary, Check, Estimate, Status, Verdict

Side = Literal["max", "min"]

CHECK_NAMES = (
    "accuracy.max_drop_abs",
    "accuracy.max_drop_rel",
    "fidelity.min_top1_agreement",
    "fidelity.max_kl",
    "latency.p90_budget_ms",
    "latency.min_speedup",
    "memory.max_peak_rss_mb",
    "memory.min_reduction",
    "size.max_mb",
    "op_coverage.min_accelerator_share",
    "energy.max_mj_per_inference",
    "energy.min_reduction",
    "regression.max_mae_increase",
    "regression.max_mae_increase_rel",
    "metric.max_drop_abs",
    "metric.max_drop_rel",
    "metric.max_worst_slice_drop_abs",
    "metric.max_worst_slice_drop_rel",
)


@dataclass(frozen=True)
class KindChecks:
    """A task kind's own checks, after the accuracy and fidelity ones or in their place.

    ``names``: "<section>.<key>" of each threshold in ``gates`` (the kind's own section, e.g.
    ``language_model.max_mean_kl``), in check order; ``check(name, limit, summary)`` decides
    one for a candidate that is not the baseline; ``replaces``: the prefixes of the common
    checks they stand in for (a language model's: accuracy and fidelity; none: added)."""

    names: tuple[str, ...]
    check: Callable[[str, float, CandidateSummary], Check]
    replaces: tuple[str, ...] = ("accuracy.", "fidelity.")

    def order(self) -> tuple[str, ...]:
        """Every check name in order: the kind's just before the latency ones."""
        common = [n for n in CHECK_NAMES if not (self.replaces and n.startswith(self.replaces))]
        at = next(i for i, n in enumerate(common) if n.startswith("latency."))
        return (*common[:at], *self.names, *common[at:])


# label-free tasks: one check per output tensor, named e.g. "fidelity.min_cosine_low[emb]"
OUTPUT_CHECKS = (
    "fidelity.min_cosine_mean",
    "fidelity.min_cosine_low",
    "fidelity.max_rel_l2",
    "fidelity.min_knn_agreement",
)
ABSOLUTE = frozenset(
    {
        "latency.p90_budget_ms",
        "memory.max_peak_rss_mb",
        "size.max_mb",
        "energy.max_mj_per_inference",
    }
)


def _num(x: float, unit: str) -> str:
    """A number in the check's unit, without the unit suffix."""
    if unit in ("%", "pt"):
        return f"{x * 100:.2f}"
    if unit == "x":
        return f"{x:.2f}"
    if unit == "nats":
        return f"{x:.3g}"
    if unit == "cos":  # cosine similarity: the interesting digits are the ones near 1
        return f"{x:.6f}"
    if unit == "":
        return f"{x:.4g}"
    if unit == "ratio":
        return f"{x:.4f}"
    return f"{x:.3f}"


def _fmt(x: float, unit: str) -> str:
    """A number with its unit: 1.20x, 99.50%, 0.50 pt, 2.970 ms."""
    return _num(x, unit) + {"x": "x", "%": "%", "": "", "cos": "", "ratio": ""}.get(
        unit, f" {unit}"
    )


def limit_of(name: str, gates: GatesConfig) -> float | None:
    """The threshold behind a check name (e.g. "size.max_mb"); None when disabled."""
    section, key = name.split(".", 1)
    return getattr(getattr(gates, section), key)


def ci_check(
    name: str,
    what: str,
    est: Estimate,
    limit: float,
    side: Side,
    unit: str,
    baseline: float | None = None,
) -> Check:
    """Three-way check of a CI against a maximum (``side="max"``) or a minimum."""
    if side == "max":
        status: Status = (
            "pass" if est.high <= limit else "fail" if est.low > limit else "inconclusive"
        )
        rel = {"pass": "<=", "fail": ">", "inconclusive": "straddles"}[status]
    else:
        status = "pass" if est.low >= limit else "fail" if est.high < limit else "inconclusive"
        rel = {"pass": ">=", "fail": "<", "inconclusive": "straddles"}[status]
    ci = f"[{_num(est.low, unit)}, {_num(est.high, unit)}]"
    return Check(
        name=name,
        status=status,
        value=est.value,
        low=est.low,
        high=est.high,
        limit=limit,
        baseline=baseline,
        message=f"{what} {_fmt(est.value, unit)} {ci} {rel} {side} {_fmt(limit, unit)}",
    )


def exact_check(
    name: str,
    what: str,
    value: float,
    limit: float,
    side: Side,
    unit: str,
    baseline: float | None = None,
) -> Check:
    """Pass/fail check of a deterministic number against a maximum or a minimum."""
    ok = value <= limit if side == "max" else value >= limit
    rel = ("<=" if ok else ">") if side == "max" else (">=" if ok else "<")
    return Check(
        name=name,
        status="pass" if ok else "fail",
        value=value,
        limit=limit,
        baseline=baseline,
        message=f"{what} {_fmt(value, unit)} {rel} {side} {_fmt(limit, unit)}",
    )


def _relative(est: Estimate, ref: float) -> Estimate:
    """``est`` as a share of a positive reference value."""
    return Estimate(
        value=est.value / ref, low=est.low / ref, high=est.high / ref, confidence=est.confidence
    )


def _skipped(name: str, why: str, limit: float | None = None) -> Check:
    return Check(name=name, status="skipped", limit=limit, message=why)


def _check(name: str, limit: float, s: CandidateSummary, base: CandidateSummary) -> Check:
    """One enabled check of a candidate (not the baseline) or an absolute check."""
    if name.startswith("accuracy."):
        if s.accuracy_drop is None or base.accuracy is None:
            return _skipped(name, "no labels in the eval data: accuracy not checked", limit)
        ref = base.accuracy.value
        if name == "accuracy.max_drop_abs":
            return ci_check(name, "accuracy drop", s.accuracy_drop, limit, "max", "pt", ref)
        if ref <= 0.0:
            return _skipped(name, "baseline accuracy is 0: relative drop undefined", limit)
        rel = _relative(s.accuracy_drop, ref)
        return ci_check(name, "relative accuracy drop", rel, limit, "max", "%", ref)
    if name == "fidelity.min_top1_agreement":
        return ci_check(name, "top-1 agreement", s.top1_agreement, limit, "min", "%")
    if name == "fidelity.max_kl":
        return ci_check(name, "mean KL", s.mean_kl, limit, "max", "nats")
    if name == "latency.p90_budget_ms":
        return ci_check(name, "p90 latency", s.p90_ms, limit, "max", "ms")
    if name == "latency.min_speedup":
        if s.speedup is None:
            return Check(
                name=name,
                status="inconclusive",
                limit=limit,
                baseline=base.median_ms.value,
                message=f"no paired baseline timings: speedup unknown, min {_fmt(limit, 'x')}",
            )
        return ci_check(name, "speedup", s.speedup, limit, "min", "x", base.median_ms.value)
    if name == "memory.max_peak_rss_mb":
        return exact_check(name, "peak RSS", s.peak_rss_mb, limit, "max", "MB")
    if name == "memory.min_reduction":
        if base.peak_rss_mb <= 0.0:
            return _skipped(name, "baseline peak RSS is 0: reduction undefined", limit)
        reduction = 1.0 - s.peak_rss_mb / base.peak_rss_mb
        return exact_check(
            name, "peak RSS reduction", reduction, limit, "min", "%", base.peak_rss_mb
        )
    if name == "size.max_mb":
        return exact_check(name, "size", s.size_mb, limit, "max", "MB")
    if name == "op_coverage.min_accelerator_share":
        return _op_coverage_check(name, limit, s)
    if name.startswith("regression."):
        return _regression_check(name, limit, s, base)
    if name.startswith("metric."):
        return _metric_check(name, limit, s)
    if name.startswith("energy."):
        return _energy_check(name, limit, s, base)
    raise ValueError(f"unknown check {name!r}")


def _regression_check(
    name: str, limit: float, s: CandidateSummary, base: CandidateSummary
) -> Check:
    assert s.mae_increase is not None and base.mae is not None
    ref = base.mae.value
    if name == "regression.max_mae_increase":
        return ci_check(name, "MAE increase", s.mae_increase, limit, "max", "", ref)
    if ref <= 0.0:
        return _skipped(name, "baseline MAE is 0: relative increase undefined", limit)
    return ci_check(
        name, "relative MAE increase", _relative(s.mae_increase, ref), limit, "max", "%", ref
    )


def _metric_check(name: str, limit: float, s: CandidateSummary) -> Check:
    """The team's metric: mean drop (absolute, or relative to the baseline's mean) and the
    worst slice's relative drop; a drop is positive when the candidate is worse."""
    m = s.metric
    assert m is not None
    what = f"{m.name} drop"
    if name == "metric.max_drop_abs":
        return ci_check(name, what, m.drop, limit, "max", "", m.baseline)
    if name == "metric.max_drop_rel":
        if m.baseline == 0.0:
            return _skipped(name, f"baseline {m.name} is 0: relative drop undefined", limit)
        rel = _relative(m.drop, abs(m.baseline))
        return ci_check(name, f"relative {what}", rel, limit, "max", "%", m.baseline)
    if m.worst_slice_drop is None or m.worst_slice_baseline is None:
        return _skipped(name, "no slices in the eval data (a 'slice' array)", limit)
    worst = f"{what} of the worst slice {m.worst_slice!r} (of {m.slices})"
    if name == "metric.max_worst_slice_drop_abs":
        return ci_check(name, worst, m.worst_slice_drop, limit, "max", "", m.worst_slice_baseline)
    if m.worst_slice_baseline == 0.0:
        return _skipped(name, f"worst slice's baseline {m.name} is 0: undefined", limit)
    rel = _relative(m.worst_slice_drop, abs(m.worst_slice_baseline))
    return ci_check(name, f"relative {worst}", rel, limit, "max", "%", m.worst_slice_baseline)


def _op_coverage_check(name: str, limit: float, s: CandidateSummary) -> Check:
    """Share of the graph's ops on the accelerator; a miss names the first op left on the CPU."""
    cov = s.op_coverage
    assert cov is not None
    if cov.share is None:
        return Check(
            name=name, status="inconclusive", limit=limit, message="the compiler gave no op counts"
        )
    what = f"ops on {cov.accelerator}"
    check = exact_check(name, what, cov.share, limit, "min", "%")
    detail = f" ({cov.ops_accelerator} of {cov.ops_total}, {cov.subgraphs} subgraph(s))"
    if cov.first_fallback:
        detail += f"; first op on the CPU: {cov.first_fallback}"
    return check.model_copy(update={"message": check.message + detail})


def _energy_check(name: str, limit: float, s: CandidateSummary, base: CandidateSummary) -> Check:
    mj, base_mj = s.energy_mj_per_inference, base.energy_mj_per_inference
    if mj is None or (name == "energy.min_reduction" and base_mj is None):
        return _skipped(name, "no readable energy counter on this runner", limit)
    if name == "energy.max_mj_per_inference":
        return exact_check(name, "energy", mj, limit, "max", "mJ/inference")
    if not base_mj:
        return _skipped(name, "baseline energy is 0: reduction undefined", limit)
    reduction = 1.0 - mj / base_mj
    return exact_check(name, "energy reduction", reduction, limit, "min", "%", base_mj)


def unsteady_clocks(clocks: Mapping[str, Any] | None) -> str | None:
    """ "N of M blocks at unsteady clocks: <reasons>" from a measurement's clock record, or
    None (no record, nothing readable, or every block steady)."""
    if not clocks:
        return None
    unsteady, blocks = int(clocks.get("unsteady") or 0), int(clocks.get("blocks") or 0)
    if unsteady <= 0:
        return None
    reasons = ", ".join(str(r) for r in clocks.get("reasons") or ())
    text = f"{unsteady} of {blocks} blocks at unsteady clocks"
    return f"{text}: {reasons}" if reasons else text


def steady_clocks_check(
    check: Check, clocks: Mapping[str, Any] | None, gates: GatesConfig
) -> Check:
    """A latency check given its blocks' clock record: inconclusive under
    ``gates.latency.require_steady_clocks`` when any block was unsteady, else noted."""
    why = unsteady_clocks(clocks)
    if why is None or check.status == "skipped" or not check.name.startswith("latency."):
        return check
    if gates.latency.require_steady_clocks:
        message = f"{check.message}; not trusted: {why}"
        return check.model_copy(update={"status": "inconclusive", "message": message})
    return check.model_copy(update={"message": f"{check.message} (note: {why})"})


def run_checks(
    summary: CandidateSummary,
    baseline: CandidateSummary,
    gates: GatesConfig,
    kind: KindChecks | None = None,
    clocks: Mapping[str, Any] | None = None,
) -> list[Check]:
    """Every enabled check of one candidate, in ``CHECK_NAMES`` order (``kind``: the task
    kind's own checks, in place of the accuracy and fidelity ones; ``clocks``: the clock
    record of the blocks its latency came from, ``environment["clocks"]``)."""
    checks: list[Check] = []
    for name in CHECK_NAMES if kind is None else kind.order():
        limit = limit_of(name, gates)
        own = kind is not None and name in kind.names
        if limit is None or not (own or _applies(name, summary)):
            continue
        if summary.is_baseline and name not in ABSOLUTE:
            checks.append(_skipped(name, "baseline", limit))
        elif own:
            assert kind is not None
            checks.append(kind.check(name, limit, summary))
        else:
            checks.append(
                steady_clocks_check(_check(name, limit, summary, baseline), clocks, gates)
            )
    return checks + _output_checks(summary, gates)


def _applies(name: str, s: CandidateSummary) -> bool:
    """Accuracy and top-1 / KL checks are for classifiers, MAE checks for regressions."""
    if name.startswith(("accuracy.", "fidelity.")):
        return s.top1_agreement is not None
    if name.startswith("regression."):
        return s.mae is not None
    if name.startswith("metric."):
        return s.metric is not None
    if name.startswith("op_coverage."):
        return s.op_coverage is not None
    return True


def _output_checks(s: CandidateSummary, gates: GatesConfig) -> list[Check]:
    """Per output tensor fidelity checks of a label-free task (``OUTPUT_CHECKS`` order)."""
    fid = gates.fidelity
    checks: list[Check] = []
    for out in s.outputs:
        for base_name in OUTPUT_CHECKS:
            limit = limit_of(base_name, gates)
            if limit is None or (base_name.endswith("knn_agreement") and out.knn_agreement is None):
                continue
            name = f"{base_name}[{out.output}]"
            if s.is_baseline:
                checks.append(_skipped(name, "baseline", limit))
            elif base_name == "fidelity.min_cosine_mean":
                checks.append(ci_check(name, "mean cosine", out.cosine_mean, limit, "min", "cos"))
            elif base_name == "fidelity.min_cosine_low":
                what = f"p{fid.low_quantile * 100:g} cosine"
                if out.cosine_low is None:
                    need = min_samples_for_quantile(fid.low_quantile, out.cosine_mean.confidence)
                    checks.append(_too_few_items(name, what, limit, s.n_eval_items, need))
                else:
                    checks.append(ci_check(name, what, out.cosine_low, limit, "min", "cos"))
            elif base_name == "fidelity.max_rel_l2":
                checks.append(ci_check(name, "relative L2", out.rel_l2_mean, limit, "max", "%"))
            else:
                assert out.knn_agreement is not None
                what = f"{fid.knn_k}-NN agreement"
                checks.append(ci_check(name, what, out.knn_agreement, limit, "min", "%"))
    return checks


def _too_few_items(name: str, what: str, limit: float, n: int, need: int) -> Check:
    return Check(
        name=name,
        status="inconclusive",
        limit=limit,
        message=f"{what}: {n} eval items are too few for its confidence interval (need {need})",
    )


def decide(
    summary: CandidateSummary,
    baseline: CandidateSummary,
    gates: GatesConfig,
    optimizer_failure: str | None = None,
    kind: KindChecks | None = None,
    clocks: Mapping[str, Any] | None = None,
) -> Verdict:
    """All enabled checks of one candidate and the verdict they add up to (see module doc).

    ``optimizer_failure``: what the optimizer itself reported it could not deliver (e.g. NNCF
    accuracy control that did not reach its max_drop); it fails the candidate as a first
    check named "optimizer", whatever the measurements say. ``kind``: the task kind's own
    checks (``TaskKind.checks``). ``clocks``: the candidate's ``environment["clocks"]``
    (see the module doc: steady clocks).
    """
    checks = run_checks(summary, baseline, gates, kind, clocks)
    if optimizer_failure is not None:
        checks.insert(0, Check(name="optimizer", status="fail", message=optimizer_failure))
    reasons: list[str] = []
    for c in checks:
        if c.status == "fail":
            reasons.append(f"{c.name}: {c.message}")
        elif c.status == "inconclusive":
            prefix = "warning: inconclusive" if _warns(c, gates) else "inconclusive"
            reasons.append(f"{c.name}: {prefix}: {c.message}")
    failed = any(c.status == "fail" for c in checks)
    unsure = any(c.status == "inconclusive" and not _warns(c, gates) for c in checks)
    status = "fail" if failed or unsure else "pass"
    return Verdict(
        candidate=summary.candidate, status=status, checks=tuple(checks), reasons=tuple(reasons)
    )


def _warns(check: Check, gates: GatesConfig) -> bool:
    """An inconclusive ``check`` only warns (``latency.on_inconclusive`` for speed checks,
    else ``gates.on_inconclusive``)."""
    if check.name.startswith("latency.") and gates.latency.on_inconclusive is not None:
        return gates.latency.on_inconclusive == "warn"
    return gates.on_inconclusive == "warn"
