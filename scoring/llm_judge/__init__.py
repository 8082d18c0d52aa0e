"""The optional LLM judge (`scoring.judge`): an OpenAI-compatible model asked whether the
candidate's answer is a regression, acceptable or an improvement, for the pairs the config
selects, under a shared budget. Its verdict is stored with the score; reviewers see it and a
rollout guardrail may use it, beside the others.

Not to be confused with `scoring.judge`, the rollout judge (canary against production)."""
