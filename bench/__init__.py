"""Benchmarks of the scheduler; run each as ``python -m bench.<name>``, never part of ``make test``."""
