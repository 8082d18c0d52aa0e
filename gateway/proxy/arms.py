"""Sticky assignment of a request to an arm (production or canary) and to the shadow slice.

The first unit key present (a header, a top-level body field, or the Authorization header) is
hashed with a keyed BLAKE2b into basis points 0..9999. Canary and shadow use separate hash
domains, so the users in one slice are independent of those in the other. Without any key
the assignment is random per request.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BASIS_POINTS = 10_000


@dataclass(frozen=True, slots=True)
class Assignment:
    canary: bool
    shadow: bool
    keyed: bool
    """Whether a unit key decided the assignment (False: a per-request random draw)."""


def to_basis_points(percent: float) -> int:
    return round(percent * 100)


class ArmAssigner:
    """Maps a request's unit key to its arm; the same key always lands in the same arm."""

    def __init__(self, *, unit_key: Sequence[str], salt: str, rng: random.Random | None = None):
        self._sources = [
            tuple(item.split(":", 1)) if ":" in item else (item, "") for item in unit_key
        ]
        self._key = hashlib.blake2b(salt.encode(), digest_size=32).digest()
        self._rng = rng or random.Random()

    def unit_value(self, headers: Mapping[str, str], body: Any) -> str | None:
        """The first configured unit key present in this request, as a string."""
        for kind, name in self._sources:
            if kind == "header":
                value = headers.get(name)
            elif kind == "auth":
                value = headers.get("authorization")
            elif isinstance(body, dict):
                raw = body.get(name)
                value = raw if isinstance(raw, str) else None if raw is None else str(raw)
            else:
                value = None
            if value:
                return f"{kind}:{name}:{value}"
        return None

    def _bucket(self, domain: bytes, unit: str) -> int:
        digest = hashlib.blake2b(domain + unit.encode(), key=self._key, digest_size=8).digest()
        return int.from_bytes(digest, "big") % BASIS_POINTS

    def unit_hash(self, unit: str) -> str:
        return hashlib.blake2b(b"unit\0" + unit.encode(), key=self._key, digest_size=12).hexdigest()

    def assign(self, unit: str | None, *, canary_bp: int, shadow_bp: int) -> Assignment:
        """Arm for one request given the live percentages in basis points."""
        if unit is None:
            canary = canary_bp > 0 and self._rng.randrange(BASIS_POINTS) < canary_bp
            shadow = shadow_bp > 0 and self._rng.randrange(BASIS_POINTS) < shadow_bp
            return Assignment(canary=canary, shadow=shadow, keyed=False)
        canary = canary_bp > 0 and self._bucket(b"canary\0", unit) < canary_bp
        shadow = shadow_bp > 0 and self._bucket(b"shadow\0", unit) < shadow_bp
        return Assignment(canary=canary, shadow=shadow, keyed=True)

    def chance(self, basis_points: int) -> bool:
        """A per-request random draw, for samples that need not be sticky (noise)."""
        return basis_points > 0 and self._rng.randrange(BASIS_POINTS) < basis_points
