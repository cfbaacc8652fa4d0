"""What the measurement harness times: a loaded candidate, as every target's runtime gives it.

A target's ``open_session`` returns a ``Session`` (outputs for evaluation) and, where the
runtime has its own timed inference call, a ``TimedSession`` (the latency the harness
records). The protocols live with the harness that calls them; ``edgeproof.targets.base``
hands them on to target plug-ins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgeproof.records.measurement import InputSpec


class Session(Protocol):
    """A loaded candidate: canonical inputs in (as in the data files), outputs out."""

    inputs: Sequence[InputSpec]
    output_names: Sequence[str]  # in the order ``run`` returns them
    info: dict[str, Any]  # runtime, version, precision, threads, provider...

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch; returns the outputs in the model's output order."""
        ...


@runtime_checkable
class TimedSession(Session, Protocol):
    """A session the latency harness times (``open_session`` of a measured target)."""

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        """One item (canonical inputs) as the runtime's own inputs, converted once before
        timing (for a full-int8 LiteRT model: quantized), for ``timed_run``."""
        ...

    def timed_run(self, prepared: Any) -> float:
        """Run one prepared item; the milliseconds of the runtime's own inference call,
        timed as the runtime's benchmark tool times it (``info["timed"]`` says how).
        Converting and handing the inputs over and reading the outputs are the calling
        program's: in Python they cost tens of microseconds a call, which would pull
        every sub-millisecond speedup toward 1."""
        ...
