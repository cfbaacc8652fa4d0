"""Entry points: the ``edgeproof`` command (Typer) and its process wrapper."""
