"""ONNX graphs: the opening check, feed layouts, ONNX Runtime's preparation ladder."""
