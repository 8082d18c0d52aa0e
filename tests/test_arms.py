"""Arm assignment: sticky per unit, shares within binomial noise, slices independent."""

from __future__ import annotations

import math
import random

import pytest

from gateway.proxy.arms import ArmAssigner

USERS = 100_000


def share_within_noise(hits: int, n: int, percent: float) -> bool:
    p = percent / 100
    sigma = math.sqrt(n * p * (1 - p))
    return abs(hits - n * p) <= 4.5 * sigma + 1


@pytest.mark.parametrize(
    ("canary", "shadow"), [(1.0, 10.0), (5.0, 50.0), (25.0, 2.5), (0.5, 100.0)]
)
def test_observed_shares_match_configured_percentages(canary: float, shadow: float) -> None:
    assigner = ArmAssigner(unit_key=["header:x-user-id"], salt="s")
    canary_hits = shadow_hits = both = 0
    for i in range(USERS):
        a = assigner.assign(
            f"header:x-user-id:user-{i}",
            canary_bp=round(canary * 100),
            shadow_bp=round(shadow * 100),
        )
        canary_hits += a.canary
        shadow_hits += a.shadow
        both += a.canary and a.shadow
    assert share_within_noise(canary_hits, USERS, canary)
    assert share_within_noise(shadow_hits, USERS, shadow)
    # Independent hashes: the overlap is the product of the two shares.
    assert share_within_noise(both, USERS, canary * shadow / 100)


def test_same_user_stays_in_same_arm_across_replicas() -> None:
    replicas = [ArmAssigner(unit_key=["auth"], salt="s", rng=random.Random(i)) for i in range(3)]
    for i in range(2000):
        unit = f"auth::Bearer key-{i}"
        first = replicas[0].assign(unit, canary_bp=3000, shadow_bp=3000)
        for other in replicas[1:]:
            assert other.assign(unit, canary_bp=3000, shadow_bp=3000) == first


def test_raising_the_percentage_keeps_existing_canary_users() -> None:
    assigner = ArmAssigner(unit_key=["auth"], salt="s")
    units = [f"u{i}" for i in range(5000)]
    at_5 = {u for u in units if assigner.assign(u, canary_bp=500, shadow_bp=0).canary}
    at_25 = {u for u in units if assigner.assign(u, canary_bp=2500, shadow_bp=0).canary}
    assert at_5 <= at_25


def test_salt_changes_the_assignment() -> None:
    a = ArmAssigner(unit_key=["auth"], salt="one")
    b = ArmAssigner(unit_key=["auth"], salt="two")
    units = [f"u{i}" for i in range(1000)]
    differ = sum(
        a.assign(u, canary_bp=5000, shadow_bp=0) != b.assign(u, canary_bp=5000, shadow_bp=0)
        for u in units
    )
    assert differ > 300


def test_first_present_unit_key_wins() -> None:
    assigner = ArmAssigner(unit_key=["header:x-user-id", "body:user", "auth"], salt="s")
    headers = {"authorization": "Bearer k"}
    assert assigner.unit_value({"x-user-id": "h", **headers}, {"user": "b"}) == "header:x-user-id:h"
    assert assigner.unit_value(headers, {"user": "b"}) == "body:user:b"
    assert assigner.unit_value(headers, None) == "auth::Bearer k"
    assert assigner.unit_value({}, {"other": 1}) is None


def test_unit_hash_is_stable_and_hides_the_value() -> None:
    assigner = ArmAssigner(unit_key=["auth"], salt="s")
    unit = "body:user:alice@example.com"
    assert assigner.assign(unit, canary_bp=0, shadow_bp=10_000).keyed
    assert assigner.unit_hash(unit) == assigner.unit_hash(unit)
    assert "alice" not in assigner.unit_hash(unit)
    assert ArmAssigner(unit_key=["auth"], salt="t").unit_hash(unit) != assigner.unit_hash(unit)


def test_requests_without_a_unit_key_are_assigned_at_random() -> None:
    assigner = ArmAssigner(unit_key=["header:x-user-id"], salt="s", rng=random.Random(7))
    hits = sum(assigner.assign(None, canary_bp=2000, shadow_bp=0).canary for _ in range(20_000))
    assert share_within_noise(hits, 20_000, 20.0)
