"""Target ``onnxruntime-cpu``: ONNX Runtime int8 (dynamic, static QDQ) on the CPU."""
