"""Herald's test suite (see tests/harness.py for how it gets its Postgres and Redis)."""
