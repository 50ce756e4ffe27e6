"""Core: what every stage shares and nothing else: settings, the error tree, atomic file writes,
time zones and the worker pool."""
