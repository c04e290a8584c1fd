"""Event and rollup models (they arrive with the analytics feature)."""
