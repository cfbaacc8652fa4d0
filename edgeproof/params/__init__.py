"""params.yaml as typed models: the sections of the known targets, and their reference page."""
