"""One reusable rate limiter (a token bucket per key), used by sign-ups, logins, chat and more.

`RateLimiter` keeps its buckets in this process (one node, the default); `RedisRateLimiter`
keeps them in Redis, counted by one atomic script, so a limit holds across every node. Both
answer the `Limiter` interface, which routes use (`await limiter.acheck(key)`); the in-memory
one also answers synchronously.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from onair.bus.scripts import TOKEN_BUCKET
from onair.clock import Clock
from onair.errors import ApiError, rate_limited

log = logging.getLogger("onair.ratelimit")


class Limiter(Protocol):
    """Token buckets by key: `burst` actions at once, refilled at `burst / per_seconds` a second."""

    @property
    def name(self) -> str: ...

    async def aretry_after(self, key: str) -> float:
        """Seconds until `key` may act again; 0: it may act now, and the action is counted."""
        ...

    async def apeek(self, key: str) -> float:
        """Seconds until `key` may act again, without counting an action; 0 means now."""
        ...

    async def acheck(self, key: str, *, code: str = "rate_limited") -> None:
        """Counts an action for `key`, or refuses it with a 429 that says when to come back."""
        ...

    def refusal(self, wait: float, *, code: str = "rate_limited") -> ApiError: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float
    locked_until: float = 0.0


class RateLimiter:
    """Allows `burst` actions at once and refills at `burst / per_seconds` actions per second.

    With `lockout_s`, a key that spends its last token is locked for that long instead of
    trickling back one action at a time, then starts again with a full bucket: five wrong
    passwords lock an account for the whole lock-out, not until the next token.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        burst: int,
        per_seconds: float,
        name: str,
        lockout_s: float | None = None,
    ) -> None:
        self._clock = clock
        self._burst = float(burst)
        self._rate = burst / per_seconds
        self._name = name
        self._lockout_s = lockout_s
        self._buckets: dict[str, _Bucket] = {}

    @property
    def name(self) -> str:
        """What is counted, in the plural ("messages", "failed log-ins"), for refusals."""
        return self._name

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may act again; 0 means it may act now (and the action is counted)."""
        bucket = self._refilled(key)
        if bucket.locked_until:
            return bucket.locked_until - bucket.updated
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            if self._lockout_s is not None and bucket.tokens < 1.0:
                bucket.locked_until = bucket.updated + self._lockout_s
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def peek(self, key: str) -> float:
        """Seconds until `key` may act again, without counting an action; 0 means now."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        now = self._clock.monotonic()
        if bucket.locked_until:
            return max(0.0, bucket.locked_until - now)
        elapsed = now - bucket.updated
        tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._rate

    def check(self, key: str, *, code: str = "rate_limited") -> None:
        """Counts an action for `key`, or refuses it with a 429 that says when to come back."""
        wait = self.retry_after(key)
        if wait > 0:
            raise self.refusal(wait, code=code)

    def refusal(self, wait: float, *, code: str = "rate_limited") -> ApiError:
        return rate_limited(f"too many {self._name}", wait, code=code)

    async def aretry_after(self, key: str) -> float:
        return self.retry_after(key)

    async def apeek(self, key: str) -> float:
        return self.peek(key)

    async def acheck(self, key: str, *, code: str = "rate_limited") -> None:
        self.check(key, code=code)

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        if bucket.locked_until and now >= bucket.locked_until:
            bucket.tokens, bucket.locked_until = self._burst, 0.0
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return bucket

    def _forget_full(self, now: float) -> None:
        # Buckets that have refilled carry no information, so dropping them bounds memory.
        full = [
            k
            for k, b in self._buckets.items()
            if not b.locked_until and b.tokens + (now - b.updated) * self._rate >= self._burst
        ]
        for k in full:
            del self._buckets[k]


class RedisRateLimiter:
    """The same buckets in Redis (scripts.TOKEN_BUCKET), shared by every node.

    Time is the app clock's wall time, so nodes' clocks should agree (NTP); a node a little
    behind never refills a bucket backwards. While Redis cannot be reached, each node counts
    on its own (`fallback`), so a Redis outage neither refuses everyone nor lets floods by.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        clock: Clock,
        *,
        burst: int,
        per_seconds: float,
        name: str,
        lockout_s: float | None = None,
        prefix: str = "onair:",
    ) -> None:
        self._script = client.register_script(TOKEN_BUCKET)
        self._clock = clock
        self._burst = burst
        self._rate = burst / per_seconds
        self._lockout_s = lockout_s or 0.0
        self._name = name
        self._prefix = f"{prefix}ratelimit:{name}:"
        # A full bucket refills in per_seconds; a lock-out lasts lockout_s: then it is forgotten.
        self._ttl_ms = int((max(per_seconds, self._lockout_s) + 60) * 1000)
        self.fallback = RateLimiter(
            clock, burst=burst, per_seconds=per_seconds, name=name, lockout_s=lockout_s
        )

    @property
    def name(self) -> str:
        return self._name

    async def aretry_after(self, key: str) -> float:
        return await self._run(key, take=True)

    async def apeek(self, key: str) -> float:
        return await self._run(key, take=False)

    async def acheck(self, key: str, *, code: str = "rate_limited") -> None:
        wait = await self.aretry_after(key)
        if wait > 0:
            raise self.refusal(wait, code=code)

    def refusal(self, wait: float, *, code: str = "rate_limited") -> ApiError:
        return rate_limited(f"too many {self._name}", wait, code=code)

    async def _run(self, key: str, *, take: bool) -> float:
        now = self._clock.now().timestamp()
        args = [now, self._burst, self._rate, self._lockout_s, int(take), self._ttl_ms]
        try:
            wait = await self._script(keys=[self._prefix + key], args=args)
        except (RedisError, OSError) as exc:
            log.warning("rate limit %s counted on this node alone: %s", self._name, exc)
            return self.fallback.retry_after(key) if take else self.fallback.peek(key)
        return max(0.0, float(wait))
