"""A tracking task is retried on what may pass later, never on a refusal or bad input."""

from __future__ import annotations

import pytest
from prefect.states import Completed, Failed

from edgeproof.errors import ConfigError, RegistryRefused, TrackingError
from edgeproof.flows.retry import transient_only
from edgeproof.tracking.access import ForeignName


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ConnectionError("server away"), True),
        (TrackingError("MLflow: 503"), True),
        (RegistryRefused("cannot register a version"), False),
        (ForeignName("registry lock 'm.t.edgeproof-lock' is not edgeproof's"), False),
        (ConfigError("params.yaml: bad key"), False),
    ],
)
def test_only_transient_failures_are_retried(error: Exception, retried: bool) -> None:
    assert transient_only(None, None, Failed(data=error)) is retried


def test_a_completed_state_is_not_a_final_failure() -> None:
    assert transient_only(None, None, Completed(data=1)) is True
