"""Target ``openvino-cpu``: OpenVINO IR, NNCF post-training quantization and accuracy control."""
