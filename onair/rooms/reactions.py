"""Reactions: a tap sends one; the room sees them in bursts, counted per emoji each second.

Each node publishes the bursts of its own clients' taps; a room counts every burst delivered
to it (`Room.reactions_total`), so the studio's node counts the taps made on every node."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onair.rooms.hub import Room

EMOJI = ("❤️", "🔥", "👏", "😂", "🎶", "🙌", "😮", "💯")
BURST_S = 1.0


class ReactionBursts:
    """Counts a room's reactions and publishes them once per BURST_S, only while they come."""

    def __init__(self) -> None:
        self._pending: dict[int, asyncio.TimerHandle] = {}

    def add(self, room: Room, emoji: str) -> None:
        room.reactions[emoji] = room.reactions.get(emoji, 0) + 1
        if room.show_id not in self._pending:
            loop = asyncio.get_running_loop()
            self._pending[room.show_id] = loop.call_later(BURST_S, self.flush, room)

    def flush(self, room: Room) -> None:
        self._pending.pop(room.show_id, None)
        counts, room.reactions = room.reactions, {}
        if counts:
            room.publish("reactions", {"counts": counts, "window_s": BURST_S})

    def close(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
