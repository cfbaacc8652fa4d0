"""Process environment defaults for air-gapped runners: telemetry off, short retries.

Called by the CLI and the flows before MLflow, Prefect, OpenVINO or Olive are used (never
at import). Only unset variables are filled: a user's explicit setting always wins.
"""

from __future__ import annotations

import os

QUIET_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow usage telemetry
    "DO_NOT_TRACK": "true",  # MLflow and others honouring the convention
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # Prefect server analytics
    "CI": "true",  # OpenVINO/NNCF and Olive skip their telemetry heartbeat under CI
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",  # an unreachable server fails in seconds
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GX_ANALYTICS_ENABLED": "false",  # Great Expectations usage analytics
    # Prefect's temporary server takes ~12 s to start here; its 20 s default flakes (#16397)
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def apply_quiet_defaults() -> None:
    """Turn off telemetry and long network retries unless the user set them."""
    for key, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(key, value)
