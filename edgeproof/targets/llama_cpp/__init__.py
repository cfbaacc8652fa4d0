"""llama.cpp target building blocks: GGUF files, quantization, a crash-safe worker, fidelity."""
