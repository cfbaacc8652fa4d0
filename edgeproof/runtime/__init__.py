"""Processes and the machine: one-shot subprocesses, runtime settings, peak RSS."""
