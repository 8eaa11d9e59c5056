"""Momentum's benchmarks: ``make bench`` (full) or ``python -m bench --quick`` (smoke)."""
