"""The device side of the registry: pull a champion, serve a registered model."""
