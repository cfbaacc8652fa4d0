"""Target ``olive``: Microsoft Olive's quantization passes, run by ONNX Runtime."""
