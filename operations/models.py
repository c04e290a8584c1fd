"""Operations models (none yet: health is computed live, not stored)."""
