"""Data: sources, the fitted DataSpec, splits and batches."""
