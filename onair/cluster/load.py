"""A node's load as it reports it on its heartbeat, and which node is the least loaded."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

LISTENERS_PER_STUDIO = 200
"""Listeners that weigh as much as one more studio: a studio's mixer and encoders cost about
what a couple of hundred listeners' sockets do."""


@dataclass(frozen=True)
class NodeLoad:
    node_id: str
    url: str
    """Where the other nodes reach this one (ONAIR_NODE_URL)."""
    studios: int
    listeners: int
    cpu: float
    """The node process's CPU time per second of wall time since the last heartbeat (1.0 is
    one core busy)."""
    draining: bool = False
    source: str = ""
    """Where DJ software's source connections to this node's shows are forwarded (host:port
    of its source ingest; empty when it runs none)."""

    @property
    def score(self) -> float:
        """Lower is less loaded: studios first, then listeners, then CPU for what they miss."""
        return self.studios + self.listeners / LISTENERS_PER_STUDIO + self.cpu

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> NodeLoad | None:
        try:
            data = json.loads(raw)
            return cls(
                node_id=str(data["node_id"]),
                url=str(data["url"]),
                studios=int(data["studios"]),
                listeners=int(data["listeners"]),
                cpu=float(data["cpu"]),
                draining=bool(data.get("draining", False)),
                source=str(data.get("source", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None


def least_loaded(nodes: Iterable[NodeLoad], *, excluding: str | None = None) -> NodeLoad | None:
    """The node a new studio goes to: the lowest score among those taking studios (ties go to
    the lower node id, so every node asked the same question gives the same answer)."""
    open_ = [n for n in nodes if not n.draining and n.node_id != excluding]
    return min(open_, key=lambda n: (round(n.score, 3), n.node_id), default=None)


class CpuMeter:
    """This process's CPU use between two readings."""

    def __init__(self) -> None:
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def read(self) -> float:
        cpu, wall = time.process_time(), time.monotonic()
        used = (cpu - self._cpu) / max(wall - self._wall, 1e-3)
        self._cpu, self._wall = cpu, wall
        return round(min(used, float(os.cpu_count() or 1)), 3)
