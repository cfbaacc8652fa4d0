"""Every MLflow tag name edgeproof writes or queries, declared once.

Runs: ``LEVEL`` says what a run is (``pipeline`` > ``target`` > ``candidate``, and
``verify-champion``); the others say which target / candidate it is and how it was judged.
Model versions and registered models carry the promotion, lock and audit tags.
"""

from __future__ import annotations

# run levels (values of LEVEL)
PIPELINE_LEVEL = "pipeline"
TARGET_LEVEL = "target"
CANDIDATE_LEVEL = "candidate"
VERIFY_LEVEL = "verify-champion"

# runs
LEVEL = "edgeproof.level"
TRIGGER = "edgeproof.trigger"
TARGETS = "edgeproof.targets"
TARGET = "edgeproof.target"
CANDIDATE = "edgeproof.candidate"
VERDICT = "edgeproof.verdict"
BASELINE = "edgeproof.baseline"
WINNER = "edgeproof.winner"
STATUS = "edgeproof.status"
REASON = "edgeproof.reason"
ERROR = "edgeproof.error"
WARNINGS = "edgeproof.warnings"
DATA_GATE = "edgeproof.data_gate"
DATA_GATE_REUSED = "edgeproof.data_gate.reused"
DEVICE = "edgeproof.device"
DEVICE_NAME = "edgeproof.device_name"
DEVICE_ID = "edgeproof.device_id"  # this board (hashed machine-id or serial), not its kind
CHAMPION_AT_START = "edgeproof.champion_at_start."  # + target
CHAMPION_VERSION = "edgeproof.champion.version"
CHAMPION_COMPARISON = "edgeproof.champion.comparison"
CHAMPION_REASON = "edgeproof.champion.reason"
REGISTERED_MODEL = "edgeproof.registered_model"
OWNER = "edgeproof.owner"  # host:pid of the process that opened the run
RUN_KEY = "edgeproof.run_key"  # digest of the key a retried task finds its run by

# model versions
RUN = "edgeproof.run"
SOURCE_PREFIX = "edgeproof.source."  # + a SourceKey field: what the version was made from
RECIPE = "edgeproof.recipe"
PRECISION = "edgeproof.precision"
GATES = "edgeproof.gates"
FALLBACK = "edgeproof.fallback"  # the version is a baseline registered as a fallback: why

# registered models: the alias lock and the audit log
LOCK_OWNER = "edgeproof.lock.owner"
LOCK_TOKEN = "edgeproof.lock.token"
LOCK_SINCE = "edgeproof.lock.since"
AUDIT_PREFIX = "edgeproof.audit."
