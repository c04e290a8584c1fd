"""Pure helpers of the campaigns app: rendering, message building, DKIM, tracking tokens, DSN parsing."""
