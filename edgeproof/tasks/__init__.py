"""Task kinds: what a model does decides how its data is checked, measured and summarized."""
