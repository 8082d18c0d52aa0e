"""Outside tools the deployment tests run (kubectl, kubernetes-validate, promtool,
prometheus): missing ones skip a local run and fail CI, where .ci/run installs them."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """The path of `name`; a skip where it is not installed, a failure when CI=true."""
    path = shutil.which(name)
    if path is not None:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed (.ci/run installs it)")
    pytest.skip(f"{name} is not installed")


def require_module(name: str) -> None:
    """Like require_tool, for a command run as `python -m name` (a test extra)."""
    if importlib.util.find_spec(name) is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed (it is in the test extra)")
    pytest.skip(f"{name} is not installed")
