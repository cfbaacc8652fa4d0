"""Scoring outputs: accuracy and fidelity against the baseline, the team's own metric."""
