"""The canary rollout controller and its command line."""
