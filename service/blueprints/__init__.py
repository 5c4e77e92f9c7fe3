"""One blueprint per module."""
