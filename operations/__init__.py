"""Operators' side of Herald: health and readiness endpoints, and later metrics, alerts and backups."""
