"""All side effects of the consultation process; each activity is idempotent."""
