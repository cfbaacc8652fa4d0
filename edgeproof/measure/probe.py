"""A search's probe run: a candidate's outputs on a few items, in a one-shot child process.

A probe is not timed: it only asks what a quantized mix returns, beside the baseline's
outputs on the same items. It runs like a measurement, in a fresh process that rebuilds the
target from its references (a runtime that aborts takes down the probe, not the search):

    python -m edgeproof.measure.probe REQUEST.json RESULT.json

Each item is one call (its feeds saved by the parent); each output of a call is flattened,
so ``outputs[name]`` is ``(calls, values)`` whatever the model's item axis: the fidelity of
a probe compares call with call.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.errors import MeasurementError
from edgeproof.records import Candidate
from edgeproof.runtime.oneshot import phase, run_module, serve

PROBE_TIMEOUT = 600.0


def save_calls(calls: Sequence[dict[str, np.ndarray]], path: Path) -> Path:
    """The probe items' feeds, one call each, as one ``.npz`` (``<call>/<input>``)."""
    np.savez(
        path, **{f"{i}/{name}": a for i, feeds in enumerate(calls) for name, a in feeds.items()}
    )
    return path


def probe_outputs(
    refs: tuple[str, str, dict[str, Any]],
    candidate: Candidate,
    calls: Path,
    out: Path,
    threads: int,
) -> dict[str, np.ndarray]:
    """``candidate``'s outputs on the calls in ``calls``; ``refs``: the target's backend,
    config model and config (as in a ``MeasureJob``)."""
    backend, config_model, target_config = refs
    request = {
        "backend": backend,
        "config_model": config_model,
        "target_config": target_config,
        "candidate": candidate.model_dump(mode="json"),
        "calls": str(calls),
        "out": str(out),
        "threads": threads,
    }
    run_module(
        "edgeproof.measure.probe",
        request,
        timeout=PROBE_TIMEOUT,
        label=f"probe of {candidate.name}",
        error=MeasurementError,
    )
    with np.load(out, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _serve_probe(request: dict[str, Any]) -> dict[str, Any]:
    from edgeproof.runtime.refs import rebuild_target

    phase("load")
    target = rebuild_target(request["backend"], request["config_model"], request["target_config"])
    session = target.open_session(
        Candidate.model_validate(request["candidate"]), int(request["threads"])
    )
    phase("run")
    with np.load(request["calls"], allow_pickle=False) as npz:
        calls: dict[int, dict[str, np.ndarray]] = {}
        for key in npz.files:
            index, _, name = key.partition("/")
            calls.setdefault(int(index), {})[name] = npz[key]
    results = [session.run(calls[i]) for i in sorted(calls)]
    names = session.output_names
    outputs = {
        name: np.stack([np.asarray(r[j]).reshape(-1) for r in results])
        for j, name in enumerate(names)
    }
    np.savez(request["out"], **outputs)
    return {}


if __name__ == "__main__":
    sys.exit(serve(_serve_probe))
