"""Target ``tflite-cpu``: ONNX -> TFLite (LiteRT), float and int8, on the CPU."""
