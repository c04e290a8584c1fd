"""Template, campaign and delivery-ledger models (they arrive with the campaigns feature)."""
