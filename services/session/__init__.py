"""Sessions, the ban list, cache, notifications and rate limits on Redis."""
