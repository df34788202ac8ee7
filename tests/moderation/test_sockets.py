"""What moderation does to open room connections, over a real server and real WebSockets."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from onair.accounts.models import Role
from onair.app import create_app
from onair.db.migrate import upgrade
from onair.rooms.hub import CLOSE_REMOVED
from onair.settings import Settings
from tests.moderation.people import PASSWORD, set_role
from tests.server import RunningServer, serve


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    settings = Settings(data_dir=tmp_path / "var", signup_per_hour=100)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    with serve(create_app(settings)) as running:
        yield running


class Person:
    def __init__(self, server: RunningServer, name: str, role: Role = Role.listener) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url)
        r = self.http.post(
            "/api/v1/accounts/signup",
            json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        self.id = int(r.json()["id"])
        if role is not Role.listener:
            server.call(set_role(server.app, self.id, role))

    def socket(self, show_id: int) -> ClientConnection:
        cookie = f"onair_session={self.http.cookies['onair_session']}"
        return connect(
            f"{self.server.ws_url}/api/v1/rooms/{show_id}/ws", additional_headers={"Cookie": cookie}
        )


@pytest.fixture
def people(server: RunningServer) -> Iterator[Callable[..., Person]]:
    made: list[Person] = []

    def person(name: str, role: Role = Role.listener) -> Person:
        made.append(Person(server, name, role))
        return made[-1]

    yield person
    for p in made:
        p.http.close()


@pytest.fixture
def show_id(people: Callable[..., Person]) -> int:
    host = people("host")
    show_id = int(host.http.post("/api/v1/shows", json={"title": "Room"}).json()["id"])
    assert host.http.post(f"/api/v1/shows/{show_id}/live").status_code == 200
    return show_id


def wait_for(ws: ClientConnection, kind: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        for event in frame:
            if event["type"] == kind:
                found: dict[str, Any] = event
                return found


def closed_with(ws: ClientConnection, timeout: float = 5) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


def test_a_suspended_user_is_put_out_of_every_room_at_once(
    people: Callable[..., Person], show_id: int
) -> None:
    mod, troll, ann = people("mod", Role.moderator), people("troll"), people("ann")
    other = people("otherhost")
    second_show = int(other.http.post("/api/v1/shows", json={"title": "Two"}).json()["id"])
    with (
        troll.socket(show_id) as first,
        troll.socket(second_show) as second,
        ann.socket(show_id) as bystander,
    ):
        for ws in (first, second, bystander):
            wait_for(ws, "room.welcome")
        r = mod.http.post(
            f"/api/v1/moderation/users/{troll.id}/suspend",
            json={"reason": "flooding", "hours": 1},
        )
        assert r.status_code == 200, r.text
        assert closed_with(first) == (CLOSE_REMOVED, "suspended")
        assert closed_with(second) == (CLOSE_REMOVED, "suspended")
        # Everyone else stays.
        ann.http.post(f"/api/v1/shows/{show_id}/chat", json={"text": "still here"})
        assert wait_for(bystander, "chat.message")["message"]["text"] == "still here"
    # The old cookie opens a socket as nobody: no chatting, no "me".
    with troll.socket(show_id) as again:
        assert wait_for(again, "room.welcome")["me"] is None


def test_a_banned_user_is_disconnected_too(people: Callable[..., Person], show_id: int) -> None:
    mod, troll = people("mod", Role.moderator), people("troll")
    with troll.socket(show_id) as ws:
        wait_for(ws, "room.welcome")
        r = mod.http.post(f"/api/v1/moderation/users/{troll.id}/ban", json={"reason": "hate"})
        assert r.status_code == 200, r.text
        assert closed_with(ws) == (CLOSE_REMOVED, "banned")


def test_a_warning_reaches_the_users_open_socket_only(
    people: Callable[..., Person], show_id: int
) -> None:
    mod, troll, ann = people("mod", Role.moderator), people("troll"), people("ann")
    with troll.socket(show_id) as ws, ann.socket(show_id) as bystander:
        wait_for(ws, "room.welcome")
        wait_for(bystander, "room.welcome")
        report = ann.http.post(
            "/api/v1/reports", json={"target": "user", "target_id": troll.id, "reason": "spam"}
        ).json()
        r = mod.http.post(
            f"/api/v1/moderation/reports/{report['id']}/actions",
            json={"action": "warn", "reason": "no more links, please"},
        )
        assert r.status_code == 200, r.text
        warning = wait_for(ws, "moderation.warning")
        assert warning["reason"] == "no more links, please" and warning["seq"] > 0
        # The warned user stays in the room; the others never see the warning.
        ann.http.post(f"/api/v1/shows/{show_id}/chat", json={"text": "after"})
        seen: list[str] = []
        while "chat.message" not in seen:
            seen += [e["type"] for e in json.loads(bystander.recv(timeout=5))]
        assert "moderation.warning" not in seen
        assert wait_for(ws, "chat.message")["message"]["text"] == "after"
