"""Loads the configuration: YAML in, `${VAR}` and `${VAR:-default}` substituted inside string
values, then validated into the `Config` tree; every failure is a one-line ConfigError that
names the field (a missing variable is reported with the path of the field that asked for it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from gateway.config._yaml import load_yaml
from gateway.config.root import Config
from gateway.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(value: Any, path: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, f"{path}.{k}" if path else str(k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{path}[{i}]", env) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set")

    return _ENV_REF.sub(replace, value)


def format_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field and what is wrong with it."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or error.get("ctx", {}).get(
            "field", "config"
        )
        if error["type"] == "extra_forbidden":
            parts.append(f"{field}: unknown field")
        elif error["type"] == "missing":
            parts.append(f"{field}: required field is missing")
        elif error["type"] in ("candidate_required", "backlog_above_cap", "conflict"):
            parts.append(f"{field}: {error['msg']}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            parts.append(f"{field}: {message} (got {error.get('input')!r})")
    return "; ".join(parts)


def parse_config(data: Any, env: Mapping[str, str] | None = None) -> Config:
    """Validate an already-parsed YAML document (a mapping) into a Config."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("config: the top level must be a mapping of fields")
    data = _substitute(data, "", os.environ if env is None else env)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate a YAML config file; every failure is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_config(data, env)


def apply_environment(config: Config, env: Mapping[str, str] | None = None) -> Config:
    """Fill the control tokens from SHADOWGATE_ADMIN_TOKEN / SHADOWGATE_REVIEWER_TOKEN when
    the file leaves them unset. Called once, at the entry point."""
    env = os.environ if env is None else env
    control = config.control
    updates: dict[str, Any] = {}
    if control.admin_token is None and env.get("SHADOWGATE_ADMIN_TOKEN"):
        updates["admin_token"] = SecretStr(env["SHADOWGATE_ADMIN_TOKEN"])
    if control.reviewer_token is None and env.get("SHADOWGATE_REVIEWER_TOKEN"):
        updates["reviewer_token"] = SecretStr(env["SHADOWGATE_REVIEWER_TOKEN"])
    if not updates:
        return config
    return config.model_copy(update={"control": control.model_copy(update=updates)})
