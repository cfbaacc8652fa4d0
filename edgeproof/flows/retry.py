"""Which failures a retried task tries again: only those that may pass on a second attempt.

Tracking tasks are retried so that an MLflow server that is briefly away costs a retry, not
the run. A refusal (a registry name CI cannot manage, a foreign lock, evidence that does not
verify) or bad input fails the same way every time: retrying it only repeats the error
(twice more in the log, ~6 s later), so it is not retried.
"""

from __future__ import annotations

from typing import Any

from edgeproof.errors import (
    ConfigError,
    EvidenceRefused,
    InputError,
    RegistryRefused,
    SigningError,
)

FINAL_ERRORS = (ConfigError, InputError, RegistryRefused, EvidenceRefused, SigningError)


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: retry unless the failure is a final one."""
    try:
        state.result()
    except FINAL_ERRORS:
        return False
    except Exception:
        return True
    return True


# the retry settings of every task that talks to the tracking server
TRACKING_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": 3,
    "retry_condition_fn": transient_only,
}
