"""Reliability: bad inputs, faults and untrusted files, each run through the real CLI."""
