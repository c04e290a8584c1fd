"""Pure helpers for operations, with no Django state."""
