"""Data-quality checks: the leakage audit, data info, splits and target boxes."""
