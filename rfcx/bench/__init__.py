"""Benchmarks that measure rfcx against the reference recipe side by side, in one run on the same data."""
