#!/usr/bin/env bash
# Start, stop or show edgeproof's production stack (PostgreSQL, MLflow with basic auth,
# Prefect) on 127.0.0.1: deploy/stack.sh start|stop|status. See deploy/stack.py and
# docs/production.md. EDGEPROOF_PYTHON picks the interpreter (default: the repo's .venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${EDGEPROOF_PYTHON:-$here/../.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true PREFECT_SERVER_ANALYTICS_ENABLED=false
exec "$python" "$here/stack.py" "$@"
