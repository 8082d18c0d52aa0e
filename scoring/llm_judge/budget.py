"""The judge's budget, shared by every worker through Redis: calls per calendar minute and
USD per UTC day.

A call is admitted (and counted against the minute) only while both have room; its cost is
added once its answer arrives, so concurrent calls can overshoot the day by at most
`max_concurrency` calls per worker. Both counters expire on their own.
"""

from __future__ import annotations

import time
from typing import Final

from redis.asyncio import Redis

from gateway.config import LlmJudgeConfig
from gateway.constants import JUDGE_SKIP_BUDGET_RATE, JUDGE_SKIP_BUDGET_USD
from gateway.records import JudgeSkip

_MINUTE_TTL_S: Final = 120
_DAY_TTL_S: Final = 2 * 86_400

# KEYS: this minute's calls, today's USD. ARGV: calls per minute, USD per day (-1: none),
# minute ttl. Answers "" when the call is admitted, else the skip reason.
_TAKE = f"""
local calls = tonumber(redis.call('GET', KEYS[1]) or '0')
if calls >= tonumber(ARGV[1]) then return '{JUDGE_SKIP_BUDGET_RATE}' end
local limit = tonumber(ARGV[2])
if limit >= 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= limit then
  return '{JUDGE_SKIP_BUDGET_USD}'
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return ''
"""


class JudgeBudget:
    """Admits judge calls while this minute's calls and today's spend allow."""

    def __init__(self, *, redis: Redis, key: str, config: LlmJudgeConfig) -> None:
        """`key`: the budget's own key (`Keys.judge_budget`); its counters hang below it."""
        self._redis = redis
        self._key = key
        self._config = config
        self._take = redis.register_script(_TAKE)

    def _keys(self, now: float) -> tuple[str, str]:
        return (
            f"{self._key}:calls:{int(now // 60)}",
            f"{self._key}:usd:{time.strftime('%Y-%m-%d', time.gmtime(now))}",
        )

    async def take(self) -> JudgeSkip | None:
        """None when a call may go ahead (it is counted), else why not."""
        usd = self._config.usd_per_day
        answer = await self._take(
            keys=list(self._keys(time.time())),
            args=[self._config.calls_per_minute, -1 if usd is None else usd, _MINUTE_TTL_S],
        )
        reason = answer.decode() if isinstance(answer, bytes) else str(answer)
        if reason == JUDGE_SKIP_BUDGET_RATE:
            return "budget_rate"
        if reason == JUDGE_SKIP_BUDGET_USD:
            return "budget_usd"
        return None

    async def spend(self, usd: float) -> None:
        """Add a call's cost to today's spend."""
        if usd <= 0:
            return
        key = self._keys(time.time())[1]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incrbyfloat(key, usd)
            pipe.expire(key, _DAY_TTL_S)
            await pipe.execute()

    async def spent_today(self) -> float:
        raw = await self._redis.get(self._keys(time.time())[1])
        return float(raw) if raw else 0.0
