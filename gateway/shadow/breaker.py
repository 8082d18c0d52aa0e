"""A circuit breaker for the mirror path: stop calling a candidate that keeps failing.

A candidate that is down answers a connection attempt at once, so its mirrors never fill
`shadow.max_in_flight` and every shadowed request would still pay for scrubbing, a connect
attempt and a pair record that says only "failed". One that breaks its answers off or sends
more than the capture keeps costs a connection and a read per mirror, on the users' loop,
for a pair no one can score. After `failures` such calls in a row the breaker opens: mirrors
are dropped (and counted) for `cooldown_s`, then one probe is let through (one per cooldown,
so a probe that never reports back cannot wedge it); its success closes the breaker, its
failure keeps it open.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    __slots__ = ("_clock", "_cooldown_s", "_failures", "_open_until", "_streak")

    def __init__(
        self, *, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._failures = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._streak = 0
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._streak >= self._failures

    def allows(self) -> bool:
        """Whether a mirror may call the candidate now (while open: one probe per cooldown)."""
        if self._streak < self._failures:
            return True
        now = self._clock()
        if now < self._open_until:
            return False
        self._open_until = now + self._cooldown_s
        return True

    def record(self, *, failed: bool) -> None:
        """The result of a call the breaker allowed: failed means refused, broken off or
        over the capture cap; an answer read whole, whatever its status, is a success."""
        if not failed:
            self._streak = 0
            return
        self._streak += 1
        if self._streak >= self._failures:
            self._open_until = self._clock() + self._cooldown_s
