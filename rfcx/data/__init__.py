"""Data: what recordings, labels, folds, windows and their caches are (and the synthetic dataset)."""
