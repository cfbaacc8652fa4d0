"""Target ``edgetpu``: full-int8 TFLite compiled for a Coral Edge TPU."""
