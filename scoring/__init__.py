"""shadowgate scoring: embeddings, divergence signals, the worker and the rollout judge."""
