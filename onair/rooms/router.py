from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from onair.context import OnAir
from onair.errors import ApiError
from onair.rooms.hub import RoomClient
from onair.shows import service as shows
from onair.types import MAX_ID

router = APIRouter(tags=["rooms"])


@router.websocket("/api/v1/rooms/{show_id}/ws")
async def room_socket(
    websocket: WebSocket,
    show_id: int,
    since: Annotated[int | None, Query(ge=0, description="Last sequence number seen.")] = None,
) -> None:
    """The room's events as JSON arrays (one frame may carry several events).

    The first frame is a `room.welcome` with the current sequence number and the room's state
    (what is playing); a client reconnecting with `since` then gets what it missed, or a
    `room.reset` if that is no longer kept.
    """
    onair: OnAir = websocket.app.state.onair
    # Accepted first so the client sees why it is closed (a refused handshake is a bare 403).
    await websocket.accept()
    if not await _show_exists(onair, show_id):
        await websocket.close(code=4404, reason="show not found")
        return
    hub = onair.rooms
    client = hub.join(show_id)
    room = hub.room(show_id)
    welcome = {"type": "room.welcome", "seq": room.seq, "state": list(room.state.values())}
    frames: list[list[dict[str, object]]] = [[welcome]]
    if since is not None:
        missed = room.since(since, client)
        if missed is None:
            frames.append([{"type": "room.reset", "seq": room.seq}])
        elif missed:
            frames.append([e.as_json() for e in missed])
    try:
        for frame in frames:
            await websocket.send_json(frame)
        await _pump(websocket, client)
    except WebSocketDisconnect:
        pass
    finally:
        hub.leave(show_id, client)


async def _show_exists(onair: OnAir, show_id: int) -> bool:
    if not 1 <= show_id <= MAX_ID:
        return False
    async with onair.sessions() as db:
        try:
            await shows.get_show(db, show_id)
        except ApiError:
            return False
    return True


async def _pump(websocket: WebSocket, client: RoomClient) -> None:
    """Sends the client's batches until it leaves or falls behind; one task for the whole
    connection, not one per batch, since this runs for every event to every client."""
    sender = asyncio.create_task(_send_batches(websocket, client))
    receiver = asyncio.create_task(_drain_incoming(websocket))
    dropped = asyncio.create_task(client.closing.wait())
    try:
        done, _ = await asyncio.wait(
            {sender, receiver, dropped}, return_when=asyncio.FIRST_COMPLETED
        )
        if dropped in done and sender not in done:
            sender.cancel()
            await websocket.close(code=client.close_code, reason=client.close_reason)
    finally:
        for task in (sender, receiver, dropped):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task


async def _send_batches(websocket: WebSocket, client: RoomClient) -> None:
    while True:
        batch = await client.next_batch()
        await websocket.send_json([e.as_json() for e in batch])


async def _drain_incoming(websocket: WebSocket) -> None:
    # Until chat arrives, clients only listen; reading notices when they go away.
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
