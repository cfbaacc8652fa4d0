"""Process environment defaults for air-gapped runners: telemetry off, short retries.

Called by the CLI and the flows before MLflow, Prefect, OpenVINO or Olive are used (never
at import). Only unset variables are filled: a user's explicit setting always wins.

Prefect logs every failed task or flow run with its traceback (and MLflow a failed
database session). An ``EdgeproofError`` is an expected failure with a one-line message
that the CLI prints once, so outside ``--debug`` those tracebacks are dropped from the log
records: the log lines themselves stay.
"""

from __future__ import annotations

import logging
import os

from edgeproof.errors import EdgeproofError

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


# what `edgeproof run` turns down while its own progress lines say what happens
# (``--debug`` keeps it all): third-party progress bars (tqdm reads TQDM_* when imported:
# DVC's hashing, Great Expectations' metrics, NNCF) and MLflow's INFO lines
PROGRESS_QUIET = {"TQDM_DISABLE": "1", "MLFLOW_LOGGING_LEVEL": "WARNING"}


def quiet_third_party_progress() -> None:
    """Turn down other libraries' progress output, unless the user set these variables;
    call before they are imported."""
    for key, value in PROGRESS_QUIET.items():
        os.environ.setdefault(key, value)


# loggers whose records carry tracebacks of failures that reach the CLI as one line:
# Prefect's run loggers (a failed task or flow run) and MLflow's database session, which
# logs an OperationalError (e.g. a read-only sqlite file) before re-raising it
QUIET_TRACEBACK_LOGGERS: dict[str, type[BaseException]] = {
    "prefect.flow_runs": EdgeproofError,
    "prefect.task_runs": EdgeproofError,
    "mlflow.store.db.utils": Exception,
}


class TracebackFilter(logging.Filter):
    """Keeps a log record but drops its traceback when the exception is a ``hidden`` one."""

    def __init__(self, hidden: type[BaseException]) -> None:
        super().__init__()
        self.hidden = hidden

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, self.hidden):
            record.exc_info = None
            record.exc_text = None
        return True


def hide_expected_tracebacks() -> None:
    """Install a ``TracebackFilter`` on each of ``QUIET_TRACEBACK_LOGGERS`` (once)."""
    for name, hidden in QUIET_TRACEBACK_LOGGERS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, TracebackFilter) for f in logger.filters):
            logger.addFilter(TracebackFilter(hidden))
