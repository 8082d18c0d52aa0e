"""PII scrubbing of mirrored text."""
