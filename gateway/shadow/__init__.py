"""Mirrors: admission, the candidate call, and the pair's hand-off to Redis."""
