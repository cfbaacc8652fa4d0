"""The measurement subprocess: loads one candidate and answers timing requests.

Run as ``python -m edgeproof.measure.worker``. It reads one JSON request per line on stdin
and writes one JSON reply per line on a private copy of stdout; the real fd 1 is pointed
at stderr first, so a native runtime printing to stdout cannot corrupt the protocol.
One process per candidate and long-lived: the parent interleaves blocks of the baseline
and the candidate (A B A B) so slow drift of the machine hits both alike.
A latency sample is the runtime's own inference call, timed as its benchmark tool times it
(``TimedSession.timed_run`` on inputs prepared once: ONNX Runtime's Python ``run``,
OpenVINO's ``InferRequest.latency``, LiteRT's ``invoke``; a plug-in session without it:
its whole ``run``); a throughput run times whole ``run`` calls on a batch
(``perf_counter_ns``). Peak RSS is the kernel's high-water mark (VmHWM) of this process, so
it includes loading the runtime.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.dataset import Dataset, load_dataset
from edgeproof.data.feed import FeedLayout, stream_calls
from edgeproof.measure.energy import POWERCAP, RaplCounter, measure_energy
from edgeproof.measure.session import Session, TimedSession
from edgeproof.records import Candidate
from edgeproof.runtime.proc_status import process_status_mb


def read_status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB; ru_maxrss as fallback."""
    found = process_status_mb("self", field)
    if found is not None:
        return found
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed_runs(session: Session, batch: dict[str, np.ndarray], runs: int) -> list[float]:
    """Wall seconds of ``runs`` calls on one batch."""
    return [_timed_whole(session, batch) / 1e3 for _ in range(runs)]


CYCLED_ITEMS = 64  # timing cycles through the first items of the eval set


def _timed_whole(session: Session, feeds: dict[str, np.ndarray]) -> float:
    """Milliseconds of one whole ``run`` (a session without ``timed_run``)."""
    start = time.perf_counter_ns()
    session.run(feeds)
    return (time.perf_counter_ns() - start) / 1e6


class Worker:
    """State of one measurement subprocess: a session and the data it runs on."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self.data: Dataset | None = None
        self._cursor = 0
        self._timed: tuple[Callable[[Any], float], list[Any]] | None = None

    def load(self, req: dict[str, Any]) -> dict[str, Any]:
        from edgeproof.runtime.refs import rebuild_target

        target = rebuild_target(req["backend"], req["config_model"], req["target_config"])
        candidate = Candidate.model_validate(req["candidate"])
        # labels are not needed here: any numeric labels (classes or targets) are accepted
        self.data = load_dataset(
            Path(req["data"]),
            req.get("labels_key", "labels"),
            label_kind="values",
            layout=FeedLayout.from_json(req.get("feed")),
        )
        rss_before = read_status_mb("VmRSS")
        start = time.perf_counter()
        self.session = target.open_session(candidate, int(req["threads"]))
        load_seconds = time.perf_counter() - start
        self._timed = None
        missing = {spec.name for spec in self.session.inputs} - set(self.data.batch(0, 1))
        if missing:
            raise ValueError(f"data has no array for model input(s) {sorted(missing)}")
        return {
            "load_seconds": load_seconds,
            "rss_before_mb": rss_before,
            "rss_after_mb": read_status_mb("VmRSS"),
            "info": self.session.info,
            "items": len(self.data),
        }

    def _next_item(self) -> dict[str, np.ndarray]:
        assert self.data is not None
        feeds = self.data.batch(self._cursor, 1)
        self._advance()
        return feeds

    def _advance(self) -> None:
        """The next of the first ``CYCLED_ITEMS`` eval items, round and round."""
        assert self.data is not None
        self._cursor = (self._cursor + 1) % min(len(self.data), CYCLED_ITEMS)

    def warmup(self, req: dict[str, Any]) -> dict[str, Any]:
        """At least ``n`` runs, then chunks until two chunk medians agree within tolerance."""
        session = self._session()
        for _ in range(int(req["n"])):
            session.run(self._next_item())
        runs, limit = int(req["n"]), int(req.get("max_runs", req["n"]))
        chunk, tolerance = int(req.get("chunk", 10)), float(req.get("tolerance", 0.05))
        medians: list[float] = []
        while runs + chunk <= limit:
            medians.append(float(np.median(self.latency({"n": chunk})["samples_ms"])))
            runs += chunk
            if len(medians) >= 2 and abs(medians[-1] - medians[-2]) <= tolerance * medians[-2]:
                return {"runs": runs, "stable": True, "chunk_medians_ms": medians}
        return {"runs": runs, "stable": False, "chunk_medians_ms": medians}

    def latency(self, req: dict[str, Any]) -> dict[str, Any]:
        session = self._session()
        for _ in range(int(req.get("discard", 0))):
            session.run(self._next_item())
        timed, items = self._timer()
        samples = []
        for _ in range(int(req["n"])):
            samples.append(timed(items[self._cursor]))
            self._advance()
        return {"samples_ms": samples}

    def throughput(self, req: dict[str, Any]) -> dict[str, Any]:
        session, data = self._session(), self._data()
        size = _batch_size(int(req["batch"]), data)
        if len(data) < size:
            data = data.with_inputs(
                {k: np.concatenate([v] * -(-size // len(data))) for k, v in data.inputs.items()}
            )
        batch = data.batch(0, size)
        session.run(batch)  # warm the larger shapes
        runs = int(req["runs"])
        probe = RaplCounter.discover(Path(os.environ.get("EDGEPROOF_POWERCAP", POWERCAP)))
        if probe.counter is None:
            seconds = _timed_runs(session, batch, runs)
            return {"seconds": seconds, "energy": {"none": probe.reason}, "batch": size}
        with measure_energy(probe.counter) as window:
            seconds = _timed_runs(session, batch, runs)
            window.inferences = runs * size
        reading = window.reading
        assert reading is not None
        energy = {
            "mj_per_inference": reading.mj_per_inference,
            "joules": reading.joules,
            "window_s": reading.window_s,
            "inferences": reading.inferences,
            "source": reading.source,
        }
        return {"seconds": seconds, "energy": energy, "batch": size}

    def outputs(self, req: dict[str, Any]) -> dict[str, Any]:
        """Every output tensor over the eval items (items first), as float32, in one .npz
        (key = name). A streaming model runs item by item with its state carried.
        ``limit``: the first items only."""
        session, data = self._session(), self._data()
        if req.get("limit"):
            data = data.head(int(req["limit"]))
        names = list(session.output_names)
        layout = data.layout
        batches = data.batches(_batch_size(int(req["batch"]), data))
        if layout.states:
            chunks = list(stream_calls(session.run, names, batches, layout, data.streams))
        else:
            chunks = [session.run(feeds) for feeds in batches]
        result = {
            name: layout.output_items(
                name, np.concatenate([c[i] for c in chunks], axis=layout.output_axis(name))
            ).astype(np.float32, copy=False)
            for i, name in enumerate(names)
        }
        path = Path(req["path"])
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **result)
        os.replace(tmp, path)
        return {"shapes": {name: list(a.shape) for name, a in result.items()}}

    def stats(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"peak_rss_mb": read_status_mb("VmHWM"), "rss_mb": read_status_mb("VmRSS")}

    def _timer(self) -> tuple[Callable[[Any], float], list[Any]]:
        """The session's own timing of one item, and the items it cycles through, each
        prepared once as the runtime's inputs; a plug-in session without ``timed_run``
        has its whole ``run`` timed on the items as they are."""
        if self._timed is None:
            session, data = self._session(), self._data()
            items = [data.batch(i, 1) for i in range(min(len(data), CYCLED_ITEMS))]
            if isinstance(session, TimedSession):
                self._timed = session.timed_run, [session.prepare(item) for item in items]
            else:
                self._timed = partial(_timed_whole, session), items
        return self._timed

    def _session(self) -> Session:
        if self.session is None:
            raise RuntimeError("no model loaded: send 'load' first")
        return self.session

    def _data(self) -> Dataset:
        if self.data is None:
            raise RuntimeError("no data loaded: send 'load' first")
        return self.data


def _batch_size(wanted: int, data: Dataset) -> int:
    """``wanted``, or 1 for a model that takes one item per call (streaming, batch 1)."""
    return min(wanted, data.layout.max_batch or wanted)


COMMANDS = ("load", "warmup", "latency", "throughput", "outputs", "stats")


def serve(requests: Any, replies: Any) -> None:
    """Answer JSON-lines requests until 'quit' or end of input."""
    worker = Worker()
    for line in requests:
        req = json.loads(line)
        cmd = req.get("cmd")
        if cmd == "quit":
            break
        try:
            if cmd not in COMMANDS:
                raise ValueError(f"unknown command {cmd!r}")
            reply = {"ok": True, **getattr(worker, cmd)(req)}
        except Exception as exc:  # reported to the parent, which decides
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            traceback.print_exc(file=sys.stderr)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main() -> None:
    replies = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin, replies)


if __name__ == "__main__":
    main()
