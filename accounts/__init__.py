"""Workspaces (the platform's clients), their members and roles, and login."""
