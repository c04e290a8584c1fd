"""Subscriber, list and import models (they arrive with the subscribers feature)."""
