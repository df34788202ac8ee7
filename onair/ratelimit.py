"""One reusable rate limiter (a token bucket per key), used by sign-ups, logins, chat and more."""

from __future__ import annotations

from dataclasses import dataclass

from onair.clock import Clock
from onair.errors import ApiError, rate_limited


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
