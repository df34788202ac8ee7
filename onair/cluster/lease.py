"""Who runs a show's studio: a lease in Redis, taken with SET NX PX and renewed by its holder.

A node that cannot renew in time stops the studio itself (`Lease.lapsed`) before the key can
expire, so another node taking the show over never runs it beside a stalled owner.
"""

from __future__ import annotations

from redis.asyncio import Redis

LEASE_MS = 4000
"""How long a lease lasts unrenewed; a dead node's shows are free again after this."""
RENEW_S = 1.0

# Renew or release only a lease one still holds (it may have lapsed and gone to another node).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leases:
    def __init__(self, redis: Redis, prefix: str, node_id: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self.node_id = node_id
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def key(self, show_id: int) -> str:
        return f"{self._prefix}show:{show_id}:owner"

    async def acquire(self, show_id: int) -> bool:
        return bool(await self._redis.set(self.key(show_id), self.node_id, nx=True, px=LEASE_MS))

    async def renew(self, show_id: int) -> bool:
        return bool(await self._renew(keys=[self.key(show_id)], args=[self.node_id, LEASE_MS]))

    async def release(self, show_id: int) -> None:
        await self._release(keys=[self.key(show_id)], args=[self.node_id])

    async def owner(self, show_id: int) -> str | None:
        raw = await self._redis.get(self.key(show_id))
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)
