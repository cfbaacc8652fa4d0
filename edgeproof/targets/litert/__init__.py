"""LiteRT (TFLite) building blocks: ONNX -> TFLite conversion in a toolchain subprocess, the
layout mapping between ONNX and TFLite tensors, a LiteRT session, the Edge TPU compiler."""
