"""Lists, subscribers, segments, imports, consent, suppression and unsubscribes."""
