"""The room WebSocket as a listener's page uses it: welcome, live events, catching up."""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from onair.app import create_app
from onair.clock import FakeClock
from onair.db.migrate import upgrade
from onair.rooms.hub import ROOM_IDLE_S, SWEEP_EVERY_S, RoomHub
from onair.settings import Settings
from tests.server import RunningServer, serve


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    settings = Settings(data_dir=tmp_path / "var")
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    with serve(create_app(settings)) as running:
        yield running


@pytest.fixture
def show_id(server: RunningServer) -> int:
    with httpx.Client(base_url=server.url) as http:
        r = http.post(
            "/api/v1/accounts/signup",
            json={"username": "roomhost", "email": "r@example.org", "password": "password-1"},
        )
        assert r.status_code == 201
        return int(http.post("/api/v1/shows", json={"title": "Room"}).json()["id"])


def _hub(server: RunningServer) -> RoomHub:
    hub: RoomHub = server.app.state.onair.rooms
    return hub


def _publish(server: RunningServer, show_id: int, texts: list[str]) -> None:
    async def go() -> None:
        for text in texts:
            _hub(server).publish(show_id, "test.note", {"text": text})

    server.call(go())


def _frame(ws: ClientConnection) -> list[dict[str, Any]]:
    frame: list[dict[str, Any]] = json.loads(ws.recv(timeout=5))
    return frame


def test_welcome_then_events_in_order_with_seq_and_time(
    server: RunningServer, show_id: int
) -> None:
    async def now_playing() -> None:
        _hub(server).publish(show_id, "now_playing", {"title": "First"}, sticky=True)

    server.call(now_playing())
    with connect(f"{server.ws_url}/api/v1/rooms/{show_id}/ws") as ws:
        welcome = _frame(ws)[0]
        assert welcome["type"] == "room.welcome" and welcome["seq"] == 1
        assert welcome["state"][0]["title"] == "First"
        _publish(server, show_id, ["a", "b", "c"])
        got: list[dict[str, Any]] = []
        while len(got) < 3:
            got += _frame(ws)
        assert [e["text"] for e in got] == ["a", "b", "c"]
        assert [e["seq"] for e in got] == [2, 3, 4]
        assert all(isinstance(e["ts"], float) for e in got)


def test_a_reconnecting_client_gets_what_it_missed(server: RunningServer, show_id: int) -> None:
    _publish(server, show_id, [str(i) for i in range(5)])
    with connect(f"{server.ws_url}/api/v1/rooms/{show_id}/ws?since=3") as ws:
        assert _frame(ws)[0]["type"] == "room.welcome"
        assert [e["seq"] for e in _frame(ws)] == [4, 5]


def test_too_old_a_since_gets_a_reset(server: RunningServer, show_id: int) -> None:
    _publish(server, show_id, [str(i) for i in range(1100)])
    with connect(f"{server.ws_url}/api/v1/rooms/{show_id}/ws?since=5") as ws:
        _frame(ws)
        assert _frame(ws) == [{"type": "room.reset", "seq": 1100}]


def test_a_since_from_before_a_restart_gets_a_reset(server: RunningServer, show_id: int) -> None:
    """The page still holds numbers from before the node restarted (or forgot the room): it
    must start again from the room's state, not skip events until the numbers catch up."""
    _publish(server, show_id, ["a", "b"])
    with connect(f"{server.ws_url}/api/v1/rooms/{show_id}/ws?since=500") as ws:
        _frame(ws)
        assert _frame(ws) == [{"type": "room.reset", "seq": 2}]


async def test_a_room_nobody_joins_is_forgotten_unless_its_studio_runs_here() -> None:
    clock = FakeClock()
    hub = RoomHub(clock)
    hub.keep = lambda show_id: show_id == 2  # show 2's studio runs on this node
    for show_id in (1, 2, 3):
        client = hub.join(show_id)
        hub.publish(show_id, "test.note", {"text": "hello"})
        hub.leave(show_id, client)
    stays = hub.join(3)  # someone is still in show 3's room
    clock.advance(ROOM_IDLE_S - 1)
    assert hub.forget_idle(force=True) == 0
    clock.advance(SWEEP_EVERY_S)
    hub.leave(4, stays)  # a leave elsewhere sweeps, once a minute at most
    assert sorted(r.show_id for r in hub.rooms()) == [2, 3]
    assert hub.room(3).seq == 1 and hub.room(2).seq == 1
    assert hub.room(1).seq == 0  # made anew: a client's since=1 now gets a reset
    assert hub.room(1).since(1, stays) is None


def test_unknown_show_is_refused(server: RunningServer) -> None:
    with (
        connect(f"{server.ws_url}/api/v1/rooms/424242/ws") as ws,
        pytest.raises(ConnectionClosed) as info,
    ):
        ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4404


async def test_a_slow_client_is_dropped_and_the_room_goes_on() -> None:
    hub = RoomHub(FakeClock())
    slow = hub.join(1, maxsize=10)
    fast = hub.join(1, maxsize=10_000)
    for i in range(50):
        hub.publish(1, "test.note", {"text": str(i)})
        assert [e.data["text"] for e in await fast.next_batch()] == [str(i)]
    assert slow.closing.is_set() and slow.close_code == 4408
    assert hub.listeners(1) == 1


def test_a_caught_up_client_gets_frames_written_straight_to_its_connection(
    server: RunningServer, show_id: int
) -> None:
    with connect(f"{server.ws_url}/api/v1/rooms/{show_id}/ws") as ws:
        _frame(ws)
        _publish(server, show_id, ["ping"])
        assert _frame(ws)[0]["text"] == "ping"
        (client,) = _hub(server).room(show_id).clients.values()
        assert client.wire is not None  # the room writes this client's frames itself
        _publish(server, show_id, ["é ☃ " + "x" * 70_000])  # a 64-bit length, UTF-8 text
        assert _frame(ws)[0]["text"] == "é ☃ " + "x" * 70_000


def _stalled_socket(server: RunningServer, path: str) -> socket.socket:
    """A WebSocket client that shakes hands and then never reads again."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


def test_a_reader_that_stops_reading_is_dropped_and_the_others_get_everything(
    server: RunningServer, show_id: int
) -> None:
    big = "x" * 60_000
    stalled = _stalled_socket(server, f"/api/v1/rooms/{show_id}/ws")
    with stalled, connect(f"{server.ws_url}/api/v1/rooms/{show_id}/ws", max_size=None) as reader:
        _frame(reader)
        got = 0
        for batch in range(60):
            _publish(server, show_id, [f"{batch}:{i}:{big}" for i in range(10)])
            while got < (batch + 1) * 10:
                got += len(_frame(reader))
            if _hub(server).listeners(show_id) == 1:
                break
        assert _hub(server).listeners(show_id) == 1, "the stalled reader was never dropped"
        assert got == (batch + 1) * 10
