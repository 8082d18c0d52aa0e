"""Config loading: defaults, ${ENV} substitution, and one clear line for every mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import apply_environment, load_config, parse_config
from gateway.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
BASE = {"upstreams": {"production": {"url": "http://127.0.0.1:9001"}}}


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_config_loads(path: Path) -> None:
    config = load_config(path, env={})
    assert config.upstreams.production.url.startswith("http")


def test_defaults_fill_everything_but_production() -> None:
    config = parse_config(BASE, env={})
    assert config.listen.port == 8080
    assert config.shadow.max_in_flight == 64
    assert config.traffic.unit_key == ["header:x-user-id", "body:user", "auth"]
    assert config.redis.url is None


def test_environment_variables_are_substituted() -> None:
    data = {"upstreams": {"production": {"url": "${PROD}", "api_key": "${KEY:-none}"}}}
    config = parse_config(data, env={"PROD": "https://llm.internal:8443/"})
    assert config.upstreams.production.url == "https://llm.internal:8443"
    assert config.upstreams.production.api_key is not None
    assert config.upstreams.production.api_key.get_secret_value() == "none"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"traffic": {"shadow_percent": 150}}, "traffic.shadow_percent: Input should be less"),
        ({"traffic": {"canary_percent": -1}}, "traffic.canary_percent"),
        ({"listen": {"prot": 1}}, "listen.prot: unknown field"),
        ({"listen": {"port": "eighty"}}, "listen.port"),
        ({"upstreams": {"production": {"url": "ftp://x"}}}, "upstreams.production.url: scheme"),
        ({"upstreams": {"production": {"url": "http://"}}}, "upstreams.production.url"),
        ({"upstreams": {"production": {"url": "${MISSING}"}}}, "environment variable MISSING"),
        ({"traffic": {"shadow_percent": 5}}, "upstreams.candidate: required"),
        ({"traffic": {"unit_key": ["cookie:x"]}}, "traffic.unit_key"),
        ({"redis": {"url": "http://redis"}}, "redis.url: must start with"),
        ({"scrub": {"custom": [{"name": "T", "pattern": "("}]}}, "scrub.custom.0.pattern"),
        ({"shadow": {"paths": ["v1/chat"]}}, "shadow.paths"),
    ],
)
def test_bad_config_names_the_field(overrides: dict[str, object], message: str) -> None:
    data: dict[str, object] = {**BASE, **overrides}
    if "upstreams" in overrides:
        data["upstreams"] = overrides["upstreams"]
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_production_upstream_is_reported() -> None:
    with pytest.raises(ConfigError, match="upstreams: required field is missing"):
        parse_config({}, env={})


def test_tokens_come_from_the_environment_when_unset() -> None:
    config = apply_environment(
        parse_config(BASE, env={}),
        env={"SHADOWGATE_ADMIN_TOKEN": "a", "SHADOWGATE_REVIEWER_TOKEN": "r"},
    )
    assert config.control.admin_token is not None
    assert config.control.admin_token.get_secret_value() == "a"
    assert config.control.reviewer_token is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("traffic:\n  shadow_percent: 101\nupstreams: {production: {url: 'http://x'}}\n",
         "traffic.shadow_percent"),
        ("upstreams: [\n", "not valid YAML at line"),
        ("- a list\n", "top level must be a mapping"),
    ],
)  # fmt: skip
def test_serve_with_bad_config_exits_2_with_one_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("shadowgate: config error:")
    assert message in lines[0]


def test_serve_with_missing_file_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "cannot read config" in result.stderr


_JUDGE = {"enabled": True, "url": "https://llm.example/v1", "model": "judge", "api_key": "sk-1"}


@pytest.mark.parametrize(
    ("judge", "scoring", "message"),
    [
        ({**_JUDGE, "url": None}, {}, "scoring.judge: url: required when the judge is enabled"),
        ({**_JUDGE, "model": ""}, {}, "scoring.judge: model: required"),
        (_JUDGE, {}, "scoring.judge: price: required to keep to usd_per_day"),
        ({**_JUDGE, "usd_per_day": None, "timeout_s": 60}, {},
         "scoring: claim_idle_ms: must be above twice judge.timeout_s"),
        ({**_JUDGE, "usd_per_day": None, "select": {"excess_above": -1}}, {},
         "scoring.judge.select.excess_above"),
    ],
)  # fmt: skip
def test_an_incomplete_judge_config_is_one_line_without_its_key(
    judge: dict[str, object], scoring: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**BASE, "scoring": {"judge": judge, **scoring}}, env={})
    assert message in str(info.value)
    assert "sk-1" not in str(info.value)


def test_the_judge_is_off_by_default_and_its_key_comes_from_the_environment() -> None:
    assert not parse_config(BASE, env={}).scoring.judge.enabled
    judge = {**_JUDGE, "api_key": "${JUDGE_KEY}", "usd_per_day": None}
    config = parse_config({**BASE, "scoring": {"judge": judge}}, env={"JUDGE_KEY": "from-env"})
    assert config.scoring.judge.api_key is not None
    assert config.scoring.judge.api_key.get_secret_value() == "from-env"
