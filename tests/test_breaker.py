"""The mirror path's circuit breaker, on a clock the test moves."""

from __future__ import annotations

from gateway.shadow.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(failures=3, cooldown_s=5, clock=Clock())
    for failed in (True, True, False, True, True):
        assert breaker.allows()
        breaker.record(failed=failed)
    assert not breaker.is_open
    breaker.record(failed=True)
    assert breaker.is_open
    assert not breaker.allows()


def test_one_probe_per_cooldown_and_success_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, cooldown_s=5, clock=clock)
    breaker.record(failed=True)
    breaker.record(failed=True)
    clock.now += 4.9
    assert not breaker.allows()
    clock.now += 0.2
    assert breaker.allows()
    assert not breaker.allows()
    breaker.record(failed=True)
    clock.now += 4.9
    assert not breaker.allows()
    clock.now += 0.2
    assert breaker.allows()
    breaker.record(failed=False)
    assert not breaker.is_open
    assert all(breaker.allows() for _ in range(10))


def test_a_probe_that_never_reports_back_does_not_wedge_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown_s=1, clock=clock)
    breaker.record(failed=True)
    clock.now += 1
    assert breaker.allows()
    clock.now += 1
    assert breaker.allows()
