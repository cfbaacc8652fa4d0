"""The MLflow loader module named by models registered before 0.1's package layout.

Their ``MLmodel`` files say ``loader_module: edgeproof.serving``; MLflow imports that name to
load them, so it stays importable and hands on to ``edgeproof.device.serving``. Models
registered since name ``edgeproof.device.serving`` directly.
"""

from edgeproof.device.serving import _load_pyfunc  # noqa: F401
