"""shadowgate gateway: data plane, control plane, shadow mirroring and the CLI."""

__version__ = "0.1.0"
