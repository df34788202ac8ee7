"""Whether this node is ready for traffic: the checks behind `/readyz`.

A check is a coroutine function answering None when all is well, or a short reason when it is
not ("unreachable (ConnectionRefusedError)", "draining"). Reasons are shown to anyone who asks,
so they never carry URLs, addresses or exception messages; the log gets the detail. Other parts
of the node add their own checks (`readiness.add("draining", check)`), read from the app as
`app.state.ops.readiness`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alembic.runtime.migration import MigrationContext
from redis.asyncio import Redis
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from onair.db.migrate import script_heads

if TYPE_CHECKING:
    from onair.cluster.node import ClusterNode

__all__ = [
    "Check",
    "Readiness",
    "Verdict",
    "database_check",
    "draining_check",
    "migrations_check",
    "redis_check",
]

log = logging.getLogger("onair.ops")

Check = Callable[[], Awaitable[str | None]]
"""None: ready as far as this check knows; else what is wrong, in a few words."""

CHECK_TIMEOUT_S = 2.0
"""A check that takes longer is failed: an orchestrator's probe must get an answer."""


@dataclass(frozen=True)
class Verdict:
    problems: dict[str, str]
    """What is wrong, by check; empty when ready."""
    checked: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.problems

    def checks(self) -> dict[str, str]:
        return {name: self.problems.get(name, "ok") for name in self.checked}

    def summary(self) -> str:
        return "; ".join(f"{name}: {problem}" for name, problem in self.problems.items())


class Readiness:
    """The node's readiness checks, run together, each bounded by `timeout_s`."""

    def __init__(self, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        """Adds (or replaces) the check called `name`."""
        self._checks[name] = check

    def remove(self, name: str) -> None:
        self._checks.pop(name, None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._checks)

    async def verdict(self) -> Verdict:
        names = tuple(self._checks)
        results = await asyncio.gather(*(self._run(name) for name in names))
        problems = {name: problem for name, problem in zip(names, results, strict=True) if problem}
        return Verdict(problems, names)

    async def _run(self, name: str) -> str | None:
        try:
            return await asyncio.wait_for(self._checks[name](), self.timeout_s)
        except TimeoutError:
            log.warning("readiness check %s took over %.1f s", name, self.timeout_s)
            return f"no answer within {self.timeout_s:g} s"
        except Exception as exc:
            log.warning("readiness check %s failed: %r", name, exc)
            return f"unreachable ({type(exc).__name__})"


def database_check(engine: AsyncEngine) -> Check:
    """The database answers a query."""

    async def check() -> str | None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return None

    return check


def migrations_check(engine: AsyncEngine) -> Check:
    """The schema is at the migrations' head (`onair db upgrade` has run for this release)."""

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async def check() -> str | None:
        heads = await asyncio.to_thread(script_heads)
        async with engine.connect() as connection:
            at = await connection.run_sync(current)
        if at == heads:
            return None
        if not at:
            return "not migrated (run onair db upgrade)"
        behind = ", ".join(sorted(at))
        return f"at {behind}, not at head {', '.join(sorted(heads))} (run onair db upgrade)"

    return check


def redis_check(url: str) -> Check:
    """Redis answers PING. A connection per probe: probes come every few seconds at most."""

    async def check() -> str | None:
        client = Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        try:
            await client.ping()
        finally:
            await client.aclose()
        return None

    return check


def draining_check(node: ClusterNode) -> Check:
    """The node is not being drained (`onair node drain`): a load balancer sends it no one new
    while its shows move to other nodes."""

    async def check() -> str | None:
        return "draining" if node.draining else None

    return check
