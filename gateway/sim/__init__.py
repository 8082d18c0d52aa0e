"""Simulated OpenAI-compatible model servers and the one-machine demo."""
