"""One live show's stage: the call-in queue, screening, callers on air, and the crew.

Every move is a state of one machine per caller, stored and broadcast as it happens:

    listening → requested → screening → on_air → listening        (and → dropped)

A signed-in listener raises a hand (`requested`); the host or a co-host screens them (a private
line between the two, off air), then puts them on air, sends them back to the queue or drops
them; the caller may hang up at any time. The stage turns those states into the studio's
routing: who is in the program, who hears whom off air, each voice's mute and level. It also
decides who may open a voice line at all: the crew (host and co-hosts), and callers being
screened or on air. Nobody else can send audio into the studio.

Connections come and go underneath: a caller whose line drops is put back in the queue, and a
host who leaves hands the show to a co-host on the line; with nobody left to run the room, the
music goes on and the callers wait in the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onair.accounts.models import User
from onair.clock import Clock
from onair.errors import ApiError, forbidden, not_found
from onair.rooms.hub import RoomHub
from onair.rooms.models import RoomSanction, SanctionKind
from onair.stage import crew
from onair.stage.models import StageEntry, StageState
from onair.studio.mixer import Routing
from onair.studio.studio import Studio

log = logging.getLogger("onair.stage")

SCREENING_BED_GAIN: Final = 10.0 ** (-12.0 / 20.0)
"""A caller being screened hears the show 12 dB down under the screener's voice."""
ON_STAGE: Final = (StageState.requested, StageState.screening, StageState.on_air)
ON_LINE: Final = (StageState.screening, StageState.on_air)
MAX_TOPIC: Final = 140
REJOIN_GRACE_S: Final = 2.0
"""How long a line that was closed may take to come back (a page reload) before the stage acts
on it. A line that failed (2 s without a packet) has had its grace already."""

EndLine = Callable[[str], Awaitable[object]]
"""Ends the voice line of a voice id, if it has one (the stage has taken it off the stage)."""


def voice_id_of(user_id: int) -> str:
    return f"user-{user_id}"


def user_of_voice(voice_id: str) -> int | None:
    prefix, _, number = voice_id.partition("-")
    return int(number) if prefix == "user" and number.isdigit() else None


@dataclass
class Caller:
    """The live copy of a caller's StageEntry."""

    user_id: int
    username: str
    name: str
    state: StageState
    topic: str
    requested_at: datetime
    changed_at: datetime
    screener_id: int | None = None
    host_muted: bool = False
    self_muted: bool = False
    level_db: float = 0.0
    reason: str | None = None

    @classmethod
    def of(cls, entry: StageEntry) -> Caller:
        return cls(
            user_id=entry.user_id,
            username=entry.user.username,
            name=entry.user.display_name,
            state=entry.state,
            topic=entry.topic,
            requested_at=entry.requested_at,
            changed_at=entry.changed_at,
            screener_id=entry.screener_id,
            host_muted=entry.host_muted,
            self_muted=entry.self_muted,
            level_db=entry.level_db,
            reason=entry.reason,
        )


class Stage:
    def __init__(
        self,
        show_id: int,
        host_id: int,
        *,
        sessions: async_sessionmaker[AsyncSession],
        rooms: RoomHub,
        studio: Studio,
        clock: Clock,
        end_line: EndLine,
        max_on_air: int = 10,
        rejoin_grace_s: float = REJOIN_GRACE_S,
    ) -> None:
        self.show_id = show_id
        self.rejoin_grace_s = rejoin_grace_s
        self.host_id = host_id
        self.lead = host_id
        """Who runs the room right now: the host, or a co-host while the host is away."""
        self.max_on_air = max_on_air
        self._sessions = sessions
        self._rooms = rooms
        self._studio = studio
        self._clock = clock
        self._end_line = end_line
        self.callers: dict[int, Caller] = {}
        self.cohosts: dict[int, str] = {}  # accepted co-hosts: user id → display name
        self.lines: set[int] = set()  # users with a voice line into the studio
        self._names: dict[int, str] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.version = 0

    # --- life of the stage ---------------------------------------------------------------

    async def load(self) -> None:
        """Reads the stored stage. Nobody has a line into a studio that has just started, so
        callers who were screening or on air wait in the queue again. Callers moderation has
        taken out of the show meanwhile are dropped: the word may never have reached the
        studio that had them (its node died, or the bus was down)."""
        async with self._sessions() as db:
            host = await db.get(User, self.host_id)
            self._names[self.host_id] = host.display_name if host else "host"
            await self._load_cohosts(db)
            stmt = select(StageEntry).where(
                StageEntry.show_id == self.show_id, StageEntry.state.in_(ON_STAGE)
            )
            entries = list((await db.scalars(stmt)).unique())
            barred = await self._barred(db, [e.user_id for e in entries])
            for entry in entries:
                if entry.user_id in barred:
                    entry.state, entry.reason = StageState.dropped, barred[entry.user_id]
                    entry.screener_id = None
                    entry.changed_at = self._clock.now()
                    continue
                if entry.state in ON_LINE:
                    entry.state, entry.reason = StageState.requested, "studio_restarted"
                    entry.screener_id = None
                self.callers[entry.user_id] = Caller.of(entry)
            await db.commit()
        self._changed()

    async def _barred(self, db: AsyncSession, user_ids: list[int]) -> dict[int, str]:
        """Which of `user_ids` may not be on this show's stage now, and why: removed from its
        room or banned from its host's shows (`onair.rooms.sanctions`), or an account
        suspended or banned."""
        if not user_ids:
            return {}
        now = self._clock.now()
        barred: dict[int, str] = {}
        for user in await db.scalars(select(User).where(User.id.in_(user_ids))):
            why = user.barred(now)
            if why is not None:
                barred[user.id] = why
        held = select(RoomSanction.user_id).where(
            RoomSanction.user_id.in_(user_ids),
            RoomSanction.kind != SanctionKind.timeout,
            RoomSanction.holding(self.show_id, self.host_id, now),
        )
        for user_id in await db.scalars(held):
            barred.setdefault(user_id, "removed")
        return barred

    async def reload_cohosts(self) -> None:
        async with self._lock:
            async with self._sessions() as db:
                await self._load_cohosts(db)
            if self.lead != self.host_id and self.lead not in self.cohosts:
                self.lead = self.host_id  # the co-host who led was taken off the show
            for user_id in [u for u in self.cohosts if u in self.callers]:
                # A caller who becomes a co-host talks as crew from now on.
                await self._move(self.callers[user_id], StageState.listening, "became_cohost")
            self._changed()

    async def _load_cohosts(self, db: AsyncSession) -> None:
        self.cohosts = {
            c.user_id: c.user.display_name
            for c in await crew.cohosts(db, self.show_id)
            if c.accepted_at is not None
        }
        self._names.update(self.cohosts)

    async def close(self, *, ended: bool = True) -> None:
        """The studio stops. When the show has ended, everyone still on the stage is back to
        listening; otherwise (this node stops) the stage is kept for the next studio."""
        for task in list(self._tasks):
            task.cancel()
        if not ended:
            return
        async with self._lock:
            for caller in list(self.callers.values()):
                if caller.state in ON_STAGE:
                    await self._move(caller, StageState.listening, "show_ended", end_line=False)

    # --- who may do what -----------------------------------------------------------------

    def is_crew(self, user: User) -> bool:
        return user.id == self.host_id or user.id in self.cohosts or user.is_moderator

    def require_crew(self, user: User) -> None:
        if not self.is_crew(user):
            raise forbidden("only the show's host and co-hosts can do that")

    def may_open_line(self, user: User) -> bool:
        """The crew talk on air; a caller only while screened or on air."""
        if user.id == self.host_id or user.id in self.cohosts:
            return True
        caller = self.callers.get(user.id)
        return caller is not None and caller.state in ON_LINE

    # --- what callers do -----------------------------------------------------------------

    async def call_in(self, user: User, topic: str) -> Caller:
        if user.id == self.host_id or user.id in self.cohosts:
            raise ApiError(409, "is_crew", "the host and co-hosts are on air already")
        async with self._lock:
            caller = self.callers.get(user.id)
            if caller is not None and caller.state in ON_STAGE:
                raise ApiError(409, "already_called", "you are already on the stage")
            now = self._clock.now()
            caller = Caller(
                user_id=user.id,
                username=user.username,
                name=user.display_name,
                state=StageState.requested,
                topic=topic.strip()[:MAX_TOPIC],
                requested_at=now,
                changed_at=now,
            )
            self.callers[user.id] = caller
            await self._save(caller)
            self._changed()
            return caller

    async def hang_up(self, user: User) -> Caller:
        async with self._lock:
            caller = self._caller(user.id)
            if caller.state not in ON_STAGE:
                raise ApiError(409, "not_on_stage", "you have no call to hang up")
            await self._move(caller, StageState.listening, "hung_up")
            self._changed()
            return caller

    async def mute_self(self, user: User, muted: bool) -> Caller:
        async with self._lock:
            caller = self._caller(user.id)
            if caller.state not in ON_LINE:
                raise ApiError(409, "not_on_line", "you are not on the line")
            caller.self_muted = muted
            await self._save(caller)
            self._changed()
            return caller

    # --- what the crew does --------------------------------------------------------------

    async def screen(self, actor: User, user_id: int) -> Caller:
        self.require_crew(actor)
        async with self._lock:
            caller = self._caller(user_id)
            self._expect(caller, StageState.requested)
            for other in self.callers.values():
                # One private line per screener: the caller they were talking to waits again.
                if other.state is StageState.screening and other.screener_id == actor.id:
                    await self._move(other, StageState.requested, "screener_moved_on")
            self._names.setdefault(actor.id, actor.display_name)
            await self._move(caller, StageState.screening, None, screener=actor.id)
            self._changed()
            return caller

    async def air(self, actor: User, user_id: int) -> Caller:
        self.require_crew(actor)
        async with self._lock:
            caller = self._caller(user_id)
            self._expect(caller, StageState.screening)
            if self.voices_on_air() >= self.max_on_air:
                raise ApiError(
                    409, "stage_full", f"at most {self.max_on_air} voices can be on air at once"
                )
            await self._move(caller, StageState.on_air, None, end_line=False)
            self._changed()
            return caller

    async def back_to_queue(self, actor: User, user_id: int) -> Caller:
        self.require_crew(actor)
        async with self._lock:
            caller = self._caller(user_id)
            self._expect(caller, *ON_LINE)
            await self._move(caller, StageState.requested, "sent_back")
            self._changed()
            return caller

    async def drop(self, actor: User, user_id: int) -> Caller:
        self.require_crew(actor)
        async with self._lock:
            caller = self._caller(user_id)
            self._expect(caller, *ON_STAGE)
            await self._move(caller, StageState.dropped, "dropped")
            self._changed()
            return caller

    async def remove_user(self, user_id: int, reason: str) -> None:
        """Room moderation took the user out: off the air and out of the queue, if there."""
        async with self._lock:
            caller = self.callers.get(user_id)
            if caller is None or caller.state not in ON_STAGE:
                return
            await self._move(caller, StageState.dropped, reason)
            self._changed()

    async def set_controls(
        self, actor: User, user_id: int, *, muted: bool | None, level_db: float | None
    ) -> Caller:
        self.require_crew(actor)
        async with self._lock:
            caller = self._caller(user_id)
            self._expect(caller, *ON_STAGE)
            if muted is not None:
                caller.host_muted = muted
            if level_db is not None:
                caller.level_db = level_db
            self._apply_controls()  # before the write: a mute must be heard at once
            await self._save(caller)
            self._changed()
            return caller

    def name_of(self, user_id: int) -> str:
        caller = self.callers.get(user_id)
        return caller.name if caller else self._names.get(user_id, f"user {user_id}")

    def voices_on_air(self) -> int:
        """The crew on the line plus the callers on air."""
        crew_on = sum(1 for u in self.lines if u == self.host_id or u in self.cohosts)
        return crew_on + sum(1 for c in self.callers.values() if c.state is StageState.on_air)

    # --- lines come and go ---------------------------------------------------------------

    def line_opened(self, user_id: int) -> None:
        self.lines.add(user_id)
        if user_id == self.host_id:
            self.lead = self.host_id
        self._changed()

    def line_gone(self, user_id: int, reason: str) -> None:
        """A voice line ended; unless the stage ended it (or a new line replaced it), the
        person's connection dropped or their page went away. A line back within the grace (a
        reload) carries on where it was; otherwise the caller waits in the queue again."""
        self.lines.discard(user_id)
        if reason in ("off_stage", "replaced", "show_ended"):
            self._changed()
            return
        grace = 0.0 if reason == "failed" else self.rejoin_grace_s
        task = asyncio.get_running_loop().create_task(self._after_line_lost(user_id, grace))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_line_lost(self, user_id: int, grace: float) -> None:
        await asyncio.sleep(grace)
        if user_id in self.lines:
            return  # back already
        async with self._lock:
            caller = self.callers.get(user_id)
            if caller is not None and caller.state in ON_LINE:
                await self._move(caller, StageState.requested, "connection_lost", end_line=False)
            elif user_id == self.host_id or user_id in self.cohosts:
                await self._crew_left(user_id)
            self._changed()

    async def _crew_left(self, user_id: int) -> None:
        for caller in list(self.callers.values()):
            if caller.state is StageState.screening and caller.screener_id == user_id:
                await self._move(caller, StageState.requested, "screener_left")
        if user_id != self.lead:
            return
        present = [u for u in self.cohosts if u in self.lines]
        if present:
            self.lead = present[0]
            log.info("stage show=%s: the host left; %s leads", self.show_id, self.lead)
            return
        # Nobody left to run the room: the music plays on and the callers wait in the queue.
        for caller in list(self.callers.values()):
            if caller.state in ON_LINE:
                await self._move(caller, StageState.requested, "host_left")

    # --- views ---------------------------------------------------------------------------

    def public(self) -> dict[str, Any]:
        """What every listener may know: who is on air, who is being screened (no topics),
        and the ids of those waiting, so each page can tell its own state."""
        return {
            "version": self.version,
            "host_id": self.host_id,
            "lead": self.lead,
            "crew": [
                {
                    "user_id": u,
                    "name": self._names.get(u, ""),
                    "role": role,
                    "on_line": u in self.lines,
                }
                for u, role in [(self.host_id, "host"), *((c, "cohost") for c in self.cohosts)]
            ],
            "on_air": [self._public_caller(c) for c in self._in(StageState.on_air)],
            "screening": [self._public_caller(c) for c in self._in(StageState.screening)],
            "waiting": [c.user_id for c in self._in(StageState.requested)],
            "voices_on_air": self.voices_on_air(),
            "max_on_air": self.max_on_air,
        }

    def for_crew(self) -> dict[str, Any]:
        """The public view plus the call-in queue with names, topics and waits."""
        now = self._clock.now()
        return {
            **self.public(),
            "queue": [
                {**self.caller_json(c), "waited_s": round((now - c.requested_at).total_seconds())}
                for c in sorted(self._in(*ON_STAGE), key=lambda c: c.requested_at)
            ],
        }

    def caller_json(self, caller: Caller) -> dict[str, Any]:
        return {
            "user_id": caller.user_id,
            "username": caller.username,
            "name": caller.name,
            "state": caller.state.value,
            "topic": caller.topic,
            "requested_at": caller.requested_at.isoformat(),
            "changed_at": caller.changed_at.isoformat(),
            "screener_id": caller.screener_id,
            "host_muted": caller.host_muted,
            "self_muted": caller.self_muted,
            "level_db": caller.level_db,
            "reason": caller.reason,
            "on_line": caller.user_id in self.lines,
        }

    def me(self, user: User) -> dict[str, Any]:
        role = (
            "host"
            if user.id == self.host_id
            else "cohost"
            if user.id in self.cohosts
            else "listener"
        )
        caller = self.callers.get(user.id)
        return {
            "role": role,
            "may_open_line": self.may_open_line(user),
            "call": self.caller_json(caller) if caller else None,
            "state": caller.state.value if caller else StageState.listening.value,
        }

    def _public_caller(self, caller: Caller) -> dict[str, Any]:
        return {
            "user_id": caller.user_id,
            "name": caller.name,
            "muted": caller.host_muted or caller.self_muted,
            "screener_id": caller.screener_id,
            "on_line": caller.user_id in self.lines,
        }

    # --- inside ----------------------------------------------------------------------------

    def _in(self, *states: StageState) -> list[Caller]:
        return [c for c in self.callers.values() if c.state in states]

    def _caller(self, user_id: int) -> Caller:
        caller = self.callers.get(user_id)
        if caller is None:
            raise not_found("call")
        return caller

    @staticmethod
    def _expect(caller: Caller, *states: StageState) -> None:
        if caller.state not in states:
            wanted = " or ".join(s.value for s in states)
            raise ApiError(
                409, "wrong_state", f"{caller.name} is {caller.state.value}, not {wanted}"
            )

    async def _move(
        self,
        caller: Caller,
        state: StageState,
        reason: str | None,
        *,
        screener: int | None = None,
        end_line: bool = True,
    ) -> None:
        was = caller.state
        caller.state, caller.reason = state, reason
        caller.screener_id = screener if state is StageState.screening else None
        caller.changed_at = self._clock.now()
        if state not in ON_LINE:
            caller.host_muted = caller.self_muted = False
        self._apply_routing()  # the studio hears the move from the next frame on
        await self._save(caller)
        log.info(
            "stage show=%s user=%s %s -> %s (%s)",
            self.show_id,
            caller.user_id,
            was.value,
            state.value,
            reason or "-",
        )
        if end_line and was in ON_LINE and state not in ON_LINE:
            await self._end_line(voice_id_of(caller.user_id))

    async def _save(self, caller: Caller) -> None:
        async with self._sessions() as db:
            entry = await db.scalar(
                select(StageEntry).where(
                    StageEntry.show_id == self.show_id, StageEntry.user_id == caller.user_id
                )
            )
            if entry is None:
                entry = StageEntry(show_id=self.show_id, user_id=caller.user_id)
                db.add(entry)
            entry.state = caller.state
            entry.topic = caller.topic
            entry.requested_at = caller.requested_at
            entry.changed_at = caller.changed_at
            entry.screener_id = caller.screener_id
            entry.host_muted = caller.host_muted
            entry.self_muted = caller.self_muted
            entry.level_db = caller.level_db
            entry.reason = caller.reason
            await db.commit()

    def _changed(self) -> None:
        self.version += 1
        self._apply_routing()
        self._rooms.publish(self.show_id, "stage", self.public(), sticky=True)

    def _apply_routing(self) -> None:
        on_air = {voice_id_of(self.host_id), *(voice_id_of(u) for u in self.cohosts)}
        hears: dict[str, set[str]] = {}
        bed_gain: dict[str, float] = {}
        for caller in self.callers.values():
            voice = voice_id_of(caller.user_id)
            if caller.state is StageState.on_air:
                on_air.add(voice)
            elif caller.state is StageState.screening:
                bed_gain[voice] = SCREENING_BED_GAIN
                if caller.screener_id is not None:
                    # Talkback: while screening, the screener's microphone is off air too.
                    screener = voice_id_of(caller.screener_id)
                    on_air.discard(screener)
                    hears.setdefault(voice, set()).add(screener)
                    hears.setdefault(screener, set()).add(voice)
        self._studio.routing = Routing(
            on_air=frozenset(on_air),
            hears={v: frozenset(h) for v, h in hears.items()},
            bed_gain=bed_gain,
        )
        self._apply_controls()

    def _apply_controls(self) -> None:
        voices = self._studio.voices
        for caller in self.callers.values():
            voice = voices.get(voice_id_of(caller.user_id))
            if voice is not None:
                voice.muted = caller.host_muted or caller.self_muted
                voice.level_db = caller.level_db
