"""A stable champion: only evidence, not noise, moves the ``champion`` alias.

Three unchanged runs must not move the champion back and forth. When this run's inputs are
the champion's own (same model and data content, same params), the challenger is a
re-roll of the same recipes, and "not worse beyond noise" is what *every* equal candidate
gets, so it would move the alias on noise alone. The policy:

- identical bytes (the challenger *is* the champion): keep, nothing to decide;
- clearly worse (the whole CI of a gain below ``1 - max_slowdown``, or the accuracy drop
  CI wholly above ``max_accuracy_drop``): keep;
- **same source**: move only when *clearly better*: the whole CI of the paired gain above
  ``1 + tolerance`` (``gates.objectives.clearly_better``; default
  ``SAME_SOURCE_TOLERANCE``, 3%), and accuracy not clearly worse. With a true gain of 1
  this happens with probability <= alpha / 2 (the CI's upper error), far less with the
  3% margin, so an unchanged repository keeps its champion;
- **source changed** (another model or data md5, or changed model / data / gates params):
  "not worse beyond noise" suffices: the old champion answers an old question, so a new
  candidate that is as good takes over (the previous behaviour);
- no champion yet: the challenger becomes the first.

``gain`` is the paired comparison of the challenger with the champion, oriented so that
> 1 is better: champion median / challenger median (both timed interleaved in this run),
or champion p90 / challenger p90, size or peak RSS ratios (points). A champion without a
recorded ``SourceKey`` (registered before it existed) counts as another source.

Before any of this, within one run: the champion's twin (this run's candidate with the
champion's bytes) keeps a tie with the winner (``incumbent_ties``, no tolerance).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from edgeproof.gates.objectives import (
    OBJECTIVES,
    SAME_SOURCE_TOLERANCE,
    TWIN_TOLERANCE,
    Objective,
    clearly_better,
    interval,
    interval_clearly_better,
)
from edgeproof.gates.paired_selection import ratio_of_ratios
from edgeproof.records import CandidateSummary, Estimate, Record

Action = Literal[
    "promote-first",
    "promote-better",
    "promote-new-source",
    "keep-identical",
    "keep-worse",
    "keep-not-clearly-better",
]


@dataclass(frozen=True)
class SourceKey:
    """What a champion was made from: DVC md5s of model and data, digests of the params.

    ``model_md5`` / ``data_md5``: the DVC content hashes (``dvc.lock`` md5s; several data
    files can be joined in a stable order). ``*_params``: ``params_digest`` of the
    ``model``, ``data`` and ``gates`` sections (optimization recipes live with the target
    params and belong in ``model_params`` or ``gates_params`` as the engine sees fit).
    """

    model_md5: str
    data_md5: str
    model_params: str
    data_params: str
    gates_params: str

    def as_dict(self) -> dict[str, str]:
        """For the registry (model version tags) and the history."""
        return {
            "model_md5": self.model_md5,
            "data_md5": self.data_md5,
            "model_params": self.model_params,
            "data_params": self.data_params,
            "gates_params": self.gates_params,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> SourceKey | None:
        """The key read back from tags; None if any field is missing."""
        fields = ("model_md5", "data_md5", "model_params", "data_params", "gates_params")
        if not all(isinstance(d.get(f), str) and d.get(f) for f in fields):
            return None
        return cls(**{f: str(d[f]) for f in fields})


def params_digest(section: Any) -> str:
    """sha256 of a params section as canonical JSON (sorted keys): equal content, equal digest."""
    text = json.dumps(section, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def source_changes(now: SourceKey, champion: SourceKey | None) -> tuple[str, ...]:
    """The fields that differ between this run's source and the champion's (empty: same).

    ``("unknown",)`` when the champion has no recorded key.
    """
    if champion is None:
        return ("unknown",)
    a, b = now.as_dict(), champion.as_dict()
    return tuple(k for k in a if a[k] != b[k])


def same_source(now: SourceKey, champion: SourceKey | None) -> bool:
    return not source_changes(now, champion)


class ChampionDecision(Record):
    """Whether ``challenger`` takes the ``champion`` alias, and why (for the history)."""

    challenger: str
    champion_version: str | None
    move: bool
    action: Action
    same_source: bool
    source_changes: tuple[str, ...]
    gain: Estimate | None  # challenger vs champion on the objective, > 1 better
    tolerance: float
    reason: str


def _ci(e: Estimate) -> str:
    if e.low == e.high:
        return f"{e.value:.3f}x"
    return f"{e.value:.3f}x [{e.low:.3f}, {e.high:.3f}]"


def decide_champion(
    challenger: str,
    champion_version: str | None,
    now: SourceKey,
    champion_source: SourceKey | None,
    gain: Estimate | None,
    quantity: str = "median latency",
    accuracy_drop: Estimate | None = None,
    identical: bool = False,
    tolerance: float = SAME_SOURCE_TOLERANCE,
    max_slowdown: float = 0.02,
    max_accuracy_drop: float = 0.0,
) -> ChampionDecision:
    """Move ``champion`` to ``challenger`` or keep it (see the module doc for the rule).

    ``gain``: the paired challenger-vs-champion estimate on the objective, > 1 better
    (e.g. the winner's speedup with the champion as baseline); None when not comparable
    (then only a changed source can move the alias). ``quantity``: what ``gain`` measures,
    for the reason. ``accuracy_drop``: champion accuracy
    minus challenger accuracy on the same items (positive = worse), if labelled.
    ``identical``: the challenger's bytes equal the champion's.
    """
    if tolerance < 0 or not 0 <= max_slowdown < 1:
        raise ValueError("tolerance must be >= 0 and max_slowdown in [0, 1)")
    changes = source_changes(now, champion_source) if champion_version is not None else ()
    same = champion_version is not None and not changes

    def out(move: bool, action: Action, reason: str) -> ChampionDecision:
        return ChampionDecision(
            challenger=challenger,
            champion_version=champion_version,
            move=move,
            action=action,
            same_source=same,
            source_changes=changes,
            gain=gain,
            tolerance=tolerance,
            reason=reason,
        )

    if champion_version is None:
        return out(True, "promote-first", f"{challenger} is the first champion")
    v = f"champion v{champion_version}"
    if identical:
        return out(False, "keep-identical", f"{challenger} is byte-identical to {v}: kept")
    what = f"{quantity} gain {_ci(gain)}" if gain is not None else f"no paired {quantity}"
    worse: list[str] = []
    if gain is not None and gain.high < 1.0 - max_slowdown:
        worse.append(f"{what} wholly below {1.0 - max_slowdown:.2f}x")
    if accuracy_drop is not None and accuracy_drop.low > max_accuracy_drop:
        worse.append(
            f"accuracy drop {accuracy_drop.value * 100:.2f} pt "
            f"[{accuracy_drop.low * 100:.2f}, {accuracy_drop.high * 100:.2f}] "
            f"> {max_accuracy_drop * 100:.2f} pt"
        )
    if worse:
        return out(False, "keep-worse", f"{challenger} is worse than {v}: {'; '.join(worse)}")
    if not same:
        why = "no recorded source" if changes == ("unknown",) else "changed " + ", ".join(changes)
        return out(
            True,
            "promote-new-source",
            f"source differs from {v} ({why}) and {challenger} is not worse beyond noise "
            f"({what}): promoted",
        )
    floor = 1.0 + tolerance
    if gain is not None and clearly_better(gain, tolerance=tolerance):
        return out(
            True,
            "promote-better",
            f"same source as {v}; {challenger} is clearly better: {what} wholly above "
            f"{floor:.2f}x: promoted",
        )
    return out(
        False,
        "keep-not-clearly-better",
        f"same source as {v}; {challenger} is not clearly better ({what}, needs the whole "
        f"CI above {floor:.2f}x): {v} kept",
    )


def incumbent_ties(
    winner: CandidateSummary, incumbent: CandidateSummary, objective: Objective
) -> bool:
    """True when the winner is not clearly better than the incumbent on ``objective``.

    The incumbent (this run's candidate that is byte-identical to the current champion) is
    kept unless the winner is clearly better, so a winner picked by noise among equals does
    not register a new version on every push. For median latency the speedups over the
    shared baseline are compared (each was measured interleaved with it, so load drifting
    between the two candidates' turns cancels out): clearly better = the whole CI of the
    ratio of the two speedups above 1 (``gates.paired_selection.ratio_of_ratios``).
    Otherwise the objective's own intervals (lower is better); a deterministic quantity
    must simply be lower. No tolerance either way (``TWIN_TOLERANCE``).
    """
    if objective == "median_latency" and winner.speedup and incumbent.speedup:
        gain = ratio_of_ratios(winner.speedup, incumbent.speedup)
        return not clearly_better(gain, tolerance=TWIN_TOLERANCE)
    axis = OBJECTIVES[objective]
    return not interval_clearly_better(
        interval(winner, axis), interval(incumbent, axis), rel_tol=TWIN_TOLERANCE
    )
