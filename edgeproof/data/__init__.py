"""Data files: load and feed them to a model, streaming state, the data gate."""
