"""Pure helpers of the analytics app (no Django models): user agents, charts, CSV cells."""
