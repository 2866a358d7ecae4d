"""Measurement scripts, run from the repository root as `python -m scripts.<name>` (see docs/results.md)."""
