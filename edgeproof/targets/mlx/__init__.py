"""Apple MLX (mlx-lm) building blocks for language models: check a Hugging Face-layout folder,
quantize it with MLX, and measure it in one-shot subprocesses.

Nothing here imports ``mlx`` or ``mlx_lm`` at import time: MLX is an optional extra, and
``mlx_lm.utils`` changes the process's open-file limit when imported, so MLX is only ever
loaded inside the worker subprocesses (``edgeproof.targets.mlx.worker``).
"""
