"""The room's door: its WebSocket (events out, chat and reactions in) and the chat's REST API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.deps import CurrentUser, MaybeUser
from onair.accounts.models import User
from onair.accounts.service import user_for_token
from onair.context import Ctx, Db, OnAir
from onair.csrf import origin_allowed
from onair.errors import ApiError, forbidden
from onair.rooms import chat, sanctions
from onair.rooms.hub import CLOSE_REMOVED, Room, RoomClient, frame
from onair.rooms.models import MAX_MESSAGE, SanctionKind
from onair.rooms.reactions import EMOJI
from onair.rooms.wire import SCOPE_KEY
from onair.shows import service as shows
from onair.shows.models import Show
from onair.stage import crew
from onair.types import MAX_ID, BodyId, PathId

log = logging.getLogger("onair.rooms")

router = APIRouter(tags=["rooms"])

MAX_ACTION_BYTES = 4096
CLOSE_NOT_FOUND = 4404


# --- the WebSocket -------------------------------------------------------------------------


@router.websocket("/api/v1/rooms/{show_id}/ws")
async def room_socket(
    websocket: WebSocket,
    show_id: int,
    since: Annotated[int | None, Query(ge=0, description="Last sequence number seen.")] = None,
) -> None:
    """The room's events as JSON arrays (one frame may carry several events).

    The first frame is a `room.welcome` with the current sequence number, the room's state
    (what is playing, the stage), the last 50 chat messages and the chat settings; a client
    reconnecting with `since` then gets what it missed, or a `room.reset` if that is no
    longer kept. A signed-in client sends actions as JSON objects: `chat.send` {text, ref},
    `chat.delete` {id}, `react` {emoji}, `ping`; each gets an unsequenced `chat.ack` or
    `error` {ref, code, message, retry_after?}.
    """
    onair: OnAir = websocket.app.state.onair
    # Accepted first so the client sees why it is closed (a refused handshake is a bare 403).
    await websocket.accept()
    async with onair.sessions() as db:
        show = await _find_show(db, show_id)
        if show is None:
            await websocket.close(code=CLOSE_NOT_FOUND, reason="show not found")
            return
        user = await _socket_user(websocket, onair, db)
        if user is not None:
            try:
                await sanctions.require_in_room(db, show, user, onair.clock.now())
            except ApiError as refusal:
                await websocket.close(code=CLOSE_REMOVED, reason=refusal.message[:120])
                return
        is_crew = user is not None and await crew.is_crew(db, show, user)
        hub = onair.rooms
        await hub.open(show_id)  # with several nodes, the room is followed on the bus first
        client = hub.join(show_id, user_id=user.id if user else None, crew=is_crew)
        try:
            welcome = await _welcome(db, onair, show, user, client)
        except BaseException:
            hub.leave(show_id, client)
            raise
    room = hub.room(show_id)
    frames = [json.dumps([welcome], ensure_ascii=False, separators=(",", ":"))]
    if since is not None:
        missed = room.since(since, client)
        if missed is None:
            frames.append(json.dumps([{"type": "room.reset", "seq": room.seq}]))
        elif missed:
            frames.append(frame(missed))
    try:
        for text in frames:
            await websocket.send_text(text)
        await _pump(websocket, client, onair, show_id)
    except WebSocketDisconnect:
        pass
    finally:
        hub.leave(show_id, client)


async def _welcome(
    db: AsyncSession, onair: OnAir, show: Show, user: User | None, client: RoomClient
) -> dict[str, Any]:
    room = onair.rooms.room(show.id)
    # Taken after joining: an event published while the history is read arrives twice at
    # worst (pages key messages by id), never not at all.
    welcome: dict[str, Any] = {
        "type": "room.welcome",
        "seq": room.seq,
        "state": list(room.state.values()),
        **await _public_chat(db, room, show.id),
        "reactions": list(EMOJI),
        "me": {"id": user.id, "crew": client.crew} if user else None,
    }
    if client.crew:
        welcome["chat_held"] = [
            chat.message_out(m) for m in await chat.history(db, show.id, held=True)
        ]
    return welcome


async def _public_chat(db: AsyncSession, room: Room, show_id: int) -> dict[str, Any]:
    """The chat every newcomer gets, read once per change rather than once per join (a room
    of thousands reconnecting at once would otherwise read it thousands of times)."""
    cached = room.chat_cache
    if cached is not None and cached[0] == room.chat_version:
        return cached[1]
    version = room.chat_version
    part = {
        "chat": [chat.message_out(m) for m in await chat.history(db, show_id)],
        "chat_settings": await chat.settings_out(db, show_id),
    }
    if room.chat_version == version:  # nothing changed while it was read
        room.chat_cache = (version, part)
    return part


async def _find_show(db: AsyncSession, show_id: int) -> Show | None:
    if not 1 <= show_id <= MAX_ID:
        return None
    try:
        return await shows.get_show(db, show_id)
    except ApiError:
        return None


async def _socket_user(websocket: WebSocket, onair: OnAir, db: AsyncSession) -> User | None:
    """The signed-in user, unless the page that opened the socket is another site's: a
    handshake carries the cookie wherever it comes from, so a foreign page (an embed, or an
    attacker's) reads the room as anyone may and acts as no one."""
    token = websocket.cookies.get(onair.settings.secret_cookie_name)
    if not token:
        return None
    host = websocket.headers.get("host", "")
    if not origin_allowed(websocket.headers, websocket.url.scheme, host):
        return None
    return await user_for_token(db, onair.clock, token)


async def _pump(websocket: WebSocket, client: RoomClient, onair: OnAir, show_id: int) -> None:
    """Sends the client's batches and reads its actions until it leaves or must go; one
    task each for the whole connection, since this runs for every event to every client."""
    sender = asyncio.create_task(_send_batches(websocket, client))
    receiver = asyncio.create_task(_receive_actions(websocket, client, onair, show_id))
    closing = asyncio.create_task(client.closing.wait())
    try:
        done, _ = await asyncio.wait(
            {sender, receiver, closing}, return_when=asyncio.FIRST_COMPLETED
        )
        if closing in done:
            sender.cancel()
            await websocket.close(code=client.close_code, reason=client.close_reason)
    finally:
        for task in (sender, receiver, closing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task


async def _send_batches(websocket: WebSocket, client: RoomClient) -> None:
    wire = websocket.scope.get(SCOPE_KEY)
    while True:
        if wire is not None and client.queue.empty():
            # Caught up: from here on the room writes each event's frame straight to the
            # connection (nothing can be queued between the check and this line).
            client.wire = wire
            await asyncio.get_running_loop().create_future()  # until the pump ends
        await websocket.send_text(frame(await client.next_batch()))


async def _receive_actions(
    websocket: WebSocket, client: RoomClient, onair: OnAir, show_id: int
) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        raw = message.get("text")
        if raw is None and message.get("bytes") is not None:
            raw = message["bytes"].decode("utf-8", "replace")
        await _act(raw or "", client, onair, show_id)


def _error(client: RoomClient, onair: OnAir, ref: Any, exc: ApiError) -> None:
    data: dict[str, Any] = {"ref": ref, "code": exc.code, "message": exc.message}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        data["retry_after"] = round(float(retry_after), 2)
    client.reply("error", data, onair.clock.now().timestamp())


async def _act(raw: str, client: RoomClient, onair: OnAir, show_id: int) -> None:
    ref: Any = None
    try:
        if len(raw) > MAX_ACTION_BYTES:
            raise ApiError(413, "too_large", f"actions are limited to {MAX_ACTION_BYTES} bytes")
        try:
            action = json.loads(raw)
        except ValueError:
            raise ApiError(400, "bad_request", "actions are JSON objects") from None
        if not isinstance(action, dict) or not isinstance(action.get("action"), str):
            raise ApiError(400, "bad_request", 'an action is {"action": "...", ...}')
        ref = action.get("ref")
        if not isinstance(ref, str | int | None) or len(str(ref)) > 64:
            ref = None
        await _dispatch(action, ref, client, onair, show_id)
    except ApiError as exc:
        _error(client, onair, ref, exc)


async def _dispatch(
    action: dict[str, Any], ref: Any, client: RoomClient, onair: OnAir, show_id: int
) -> None:
    kind = action["action"]
    now = onair.clock.now().timestamp()
    if kind == "ping":
        client.reply("pong", {"ref": ref}, now)
        return
    if kind not in ("chat.send", "chat.delete", "react"):
        raise ApiError(400, "unknown_action", f"unknown action {kind[:40]!r}")
    if client.user_id is None:
        raise ApiError(401, "unauthorized", "sign in to take part")
    # A flood is refused before it costs the database anything.
    limiter = {"chat.send": onair.limiters.chat, "react": onair.limiters.reaction}.get(kind)
    if limiter is not None:
        wait = await limiter.apeek(f"user:{client.user_id}")
        if wait > 0:
            raise limiter.refusal(wait)
    async with onair.sessions() as db:
        user = await db.get(User, client.user_id)
        if user is None or user.barred(onair.clock.now()):
            client.close(CLOSE_REMOVED, "signed out")
            raise ApiError(401, "unauthorized", "sign in to take part")
        show = await shows.get_show(db, show_id)
        if kind == "chat.send":
            text = action.get("text")
            if not isinstance(text, str):
                raise ApiError(422, "invalid", "text: a string is required")
            message = await chat.send(onair, db, show, user, text, crew=client.crew)
            ack = {"ref": ref, "id": message.id, "held": message.held_reason}
            client.reply("chat.ack", ack, now)
        elif kind == "chat.delete":
            message_id = action.get("id")
            if not isinstance(message_id, int) or not 1 <= message_id <= MAX_ID:
                raise ApiError(422, "invalid", "id: a message id is required")
            found = await chat.get_message(db, show_id, message_id)
            if client.crew:
                reason = str(action.get("reason") or "")[:500]
                await chat.remove_message(onair, db, found, user, reason)
            else:
                await chat.delete_own(onair, db, found, user)
        else:
            await _react(onair, show, user, action.get("emoji"))


async def _react(onair: OnAir, show: Show, user: User, emoji: object) -> None:
    if emoji not in EMOJI:
        raise ApiError(422, "invalid", "emoji: one of " + " ".join(EMOJI))
    await onair.limiters.reaction.acheck(f"user:{user.id}")
    assert isinstance(emoji, str)
    onair.rooms.reactions.add(onair.rooms.room(show.id), emoji)


# --- the REST API --------------------------------------------------------------------------


class ChatUser(BaseModel):
    id: int
    username: str
    display_name: str


class ChatMessageOut(BaseModel):
    id: int
    show_id: int
    text: str
    created_at: datetime
    user: ChatUser
    held: str | None = Field(default=None, description="Why the filters held it back.")


class ChatPage(BaseModel):
    messages: list[ChatMessageOut]


class ChatSettingsOut(BaseModel):
    pinned: ChatMessageOut | None
    slow_mode_s: int


class ChatSend(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_MESSAGE)


class ChatSettingsEdit(BaseModel):
    slow_mode_s: int = Field(
        ge=0, le=chat.MAX_SLOW_MODE_S, description="One message per this many seconds; 0: off."
    )


class PinBody(BaseModel):
    message_id: BodyId | None = Field(description="The message to pin; null unpins.")


class ReactionBody(BaseModel):
    emoji: str = Field(max_length=16, description="One of the room's reactions.")


class SanctionBody(BaseModel):
    user_id: BodyId
    kind: SanctionKind
    minutes: int | None = Field(
        default=None, ge=1, le=sanctions.MAX_MINUTES, description="Length; none: until lifted."
    )
    reason: str = Field(default="", max_length=500)


class SanctionOut(BaseModel):
    id: int
    kind: SanctionKind
    user_id: int
    user: ChatUser | None = None
    show_id: int | None
    host_id: int | None
    until: datetime | None
    reason: str
    created_at: datetime


class SanctionList(BaseModel):
    sanctions: list[SanctionOut]


async def _crew_show(db: AsyncSession, show_id: int, user: User) -> Show:
    show = await shows.get_show(db, show_id)
    await crew.require_crew(db, show, user)
    return show


@router.get(
    "/api/v1/shows/{show_id}/chat",
    response_model=ChatPage,
    summary="Chat history, oldest first; the crew may ask for held messages",
)
async def chat_history(
    show_id: PathId,
    user: MaybeUser,
    db: Db,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Older than this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = chat.HISTORY_ON_JOIN,
    held: Annotated[bool, Query(description="Held messages (crew only).")] = False,
) -> dict[str, Any]:
    show = await shows.get_show(db, show_id)
    if held:
        if user is None:
            raise ApiError(401, "unauthorized", "sign in first")
        if not await crew.is_crew(db, show, user):
            raise forbidden("only the crew sees held messages")
    found = await chat.history(db, show.id, limit=limit, before=before, held=held)
    return {"messages": [chat.message_out(m) for m in found]}


@router.post(
    "/api/v1/shows/{show_id}/chat",
    status_code=201,
    response_model=ChatMessageOut,
    summary="Send a chat message (stored before it is acknowledged)",
)
async def send_message(
    show_id: PathId, body: ChatSend, user: CurrentUser, ctx: Ctx, db: Db
) -> dict[str, Any]:
    show = await shows.get_show(db, show_id)
    is_crew = await crew.is_crew(db, show, user)
    message = await chat.send(ctx, db, show, user, body.text, crew=is_crew)
    return chat.message_out(message)


@router.delete(
    "/api/v1/shows/{show_id}/chat/{message_id}",
    status_code=204,
    summary="Delete a message: the crew any, a user their own",
)
async def delete_message(
    show_id: PathId,
    message_id: PathId,
    user: CurrentUser,
    ctx: Ctx,
    db: Db,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    show = await shows.get_show(db, show_id)
    message = await chat.get_message(db, show.id, message_id)
    if await crew.is_crew(db, show, user):
        await chat.remove_message(ctx, db, message, user, reason)
    else:
        await chat.delete_own(ctx, db, message, user)
    return Response(status_code=204)


@router.post(
    "/api/v1/shows/{show_id}/chat/{message_id}/release",
    response_model=ChatMessageOut,
    summary="Let a held message through (crew)",
)
async def release_message(
    show_id: PathId, message_id: PathId, user: CurrentUser, ctx: Ctx, db: Db
) -> dict[str, Any]:
    show = await _crew_show(db, show_id, user)
    message = await chat.get_message(db, show.id, message_id)
    await chat.release(ctx, db, message, user)
    return chat.message_out(message)


@router.get(
    "/api/v1/shows/{show_id}/chat/settings",
    response_model=ChatSettingsOut,
    summary="The pinned message and slow mode",
)
async def chat_settings(show_id: PathId, db: Db) -> dict[str, Any]:
    show = await shows.get_show(db, show_id)
    return await chat.settings_out(db, show.id)


@router.patch(
    "/api/v1/shows/{show_id}/chat/settings",
    response_model=ChatSettingsOut,
    summary="Turn slow mode on or off (crew)",
)
async def edit_chat_settings(
    show_id: PathId, body: ChatSettingsEdit, user: CurrentUser, ctx: Ctx, db: Db
) -> dict[str, Any]:
    show = await _crew_show(db, show_id, user)
    return await chat.set_slow_mode(ctx, db, show, user, body.slow_mode_s)


@router.put(
    "/api/v1/shows/{show_id}/chat/pin",
    response_model=ChatSettingsOut,
    summary="Pin a message, or unpin with null (crew)",
)
async def pin_message(
    show_id: PathId, body: PinBody, user: CurrentUser, ctx: Ctx, db: Db
) -> dict[str, Any]:
    show = await _crew_show(db, show_id, user)
    return await chat.pin(ctx, db, show, user, body.message_id)


@router.post(
    "/api/v1/shows/{show_id}/reactions",
    status_code=202,
    summary="React; the room sees reactions counted per second",
)
async def react(
    show_id: PathId, body: ReactionBody, user: CurrentUser, ctx: Ctx, db: Db
) -> dict[str, Literal[True]]:
    show = await shows.get_show(db, show_id)
    await sanctions.require_in_room(db, show, user, ctx.clock.now())
    await _react(ctx, show, user, body.emoji)
    return {"accepted": True}


@router.get(
    "/api/v1/shows/{show_id}/sanctions",
    response_model=SanctionList,
    summary="Timeouts, removals and bans in force in this room (crew)",
)
async def list_sanctions(show_id: PathId, user: CurrentUser, ctx: Ctx, db: Db) -> dict[str, Any]:
    show = await _crew_show(db, show_id, user)
    return {"sanctions": await sanctions.list_for(db, show, ctx.clock.now())}


@router.post(
    "/api/v1/shows/{show_id}/sanctions",
    status_code=201,
    response_model=SanctionOut,
    summary="Time a user out of chat, remove them from the room, or ban them (crew)",
)
async def impose_sanction(
    show_id: PathId, body: SanctionBody, user: CurrentUser, ctx: Ctx, db: Db
) -> dict[str, Any]:
    show = await _crew_show(db, show_id, user)
    sanction = await sanctions.impose(
        ctx,
        db,
        show,
        user,
        user_id=body.user_id,
        kind=body.kind,
        minutes=body.minutes,
        reason=body.reason,
    )
    return sanctions.sanction_out(sanction)


@router.delete(
    "/api/v1/shows/{show_id}/sanctions/{sanction_id}",
    status_code=204,
    summary="Lift a timeout, removal or ban (crew)",
)
async def lift_sanction(
    show_id: PathId, sanction_id: PathId, user: CurrentUser, ctx: Ctx, db: Db
) -> Response:
    show = await _crew_show(db, show_id, user)
    await sanctions.lift(ctx, db, show, user, sanction_id)
    return Response(status_code=204)
