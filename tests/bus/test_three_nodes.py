"""Three `onair serve` nodes on loopback sharing one PostgreSQL database and one Redis (a
redis-server of the test's own, so it can be restarted): the room is one room on all three."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from onair.app import create_app
from onair.db.migrate import upgrade
from onair.rooms.hub import RoomHub
from onair.settings import Settings
from tests.bus.conftest import OwnRedis
from tests.discovery.test_follows import next_event, read_events
from tests.server import RunningServer, serve

pytestmark = pytest.mark.postgres


@pytest.fixture
def nodes(postgres_url: str, own_redis: OwnRedis, tmp_path: Path) -> Iterator[list[RunningServer]]:
    upgrade(postgres_url)
    with ExitStack() as stack:
        running = []
        for name in "abc":
            settings = Settings(
                data_dir=tmp_path / name,
                database_url=postgres_url,
                redis_url=own_redis.url,
                node_id=name,
                source_port=0,
                signup_per_hour=1000,
                chat_per_seconds=3600,  # a burst of 3, hardly refilled while a test runs
            )
            running.append(stack.enter_context(serve(create_app(settings))))
        yield running


class Person:
    """Someone signed up once; their session works on every node (one database)."""

    def __init__(self, node: RunningServer, name: str) -> None:
        with httpx.Client(base_url=node.url) as http:
            r = http.post(
                "/api/v1/accounts/signup",
                json={"username": name, "email": f"{name}@example.org", "password": "password-1"},
            )
            assert r.status_code == 201, r.text
            self.token = http.cookies["onair_session"]

    def http(self, node: RunningServer) -> httpx.Client:
        return httpx.Client(base_url=node.url, cookies={"onair_session": self.token})

    def socket(
        self, node: RunningServer, show_id: int, query: str = ""
    ) -> AbstractContextManager[ClientConnection]:
        return _socket(node, show_id, query, {"Cookie": f"onair_session={self.token}"})


@contextmanager
def _socket(
    node: RunningServer, show_id: int, query: str = "", headers: dict[str, str] | None = None
) -> Iterator[ClientConnection]:
    url = f"{node.ws_url}/api/v1/rooms/{show_id}/ws{query}"
    with connect(url, additional_headers=headers) as ws:
        welcome = json.loads(ws.recv(timeout=10))[0]
        assert welcome["type"] == "room.welcome"
        yield ws


def _events(ws: ClientConnection, want: int, kind: str = "chat.message") -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(got) < want:
        for event in json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic()))):
            if event["type"] == kind:
                got.append(event)
    return got


@pytest.fixture
def show_id(nodes: list[RunningServer]) -> int:
    host = Person(nodes[0], "host")
    with host.http(nodes[0]) as http:
        return int(http.post("/api/v1/shows", json={"title": "Everywhere"}).json()["id"])


@pytest.fixture
def people(nodes: list[RunningServer]) -> Callable[[str], Person]:
    return lambda name: Person(nodes[1], name)


def _say(ws: ClientConnection, text: str) -> None:
    ws.send(json.dumps({"action": "chat.send", "text": text, "ref": text}))


def test_chat_from_two_nodes_reaches_every_node_in_one_order(
    nodes: list[RunningServer], show_id: int, people: Callable[[str], Person]
) -> None:
    a, b, c = nodes
    ana, bo = people("ana"), people("bob")
    with (
        ana.socket(a, show_id) as on_a,
        bo.socket(b, show_id) as on_b,
        _socket(c, show_id) as on_c,
    ):
        for i in range(3):  # the default burst: three each
            _say(on_a, f"ana {i}")
            _say(on_b, f"bo {i}")
        seen = [
            [(e["seq"], e["message"]["text"]) for e in _events(ws, 6)] for ws in (on_a, on_b, on_c)
        ]
    assert seen[0] == seen[1] == seen[2]
    texts = [text for _, text in seen[0]]
    assert [t for t in texts if t.startswith("ana")] == ["ana 0", "ana 1", "ana 2"]
    assert [t for t in texts if t.startswith("bo")] == ["bo 0", "bo 1", "bo 2"]
    seqs = [seq for seq, _ in seen[0]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6


def test_a_client_reconnecting_to_another_node_gets_exactly_what_it_missed(
    nodes: list[RunningServer], show_id: int, people: Callable[[str], Person]
) -> None:
    a, b, c = nodes
    ana = people("ana")
    with ana.socket(a, show_id) as on_a, _socket(c, show_id) as watcher:
        _say(on_a, "first")
        (first,) = _events(watcher, 1)
        with ana.http(b) as http:
            for text in ("second", "third"):
                assert (
                    http.post(f"/api/v1/shows/{show_id}/chat", json={"text": text}).status_code
                    == 201
                )
        _events(watcher, 2)
    with _socket(c, show_id, f"?since={first['seq']}") as back:
        missed = json.loads(back.recv(timeout=10))
    assert [e["message"]["text"] for e in missed if e["type"] == "chat.message"] == [
        "second",
        "third",
    ]
    assert missed[0]["seq"] == first["seq"] + 1


def test_a_chat_limit_spread_over_three_nodes_still_holds(
    nodes: list[RunningServer], show_id: int, people: Callable[[str], Person]
) -> None:
    ana = people("ana")
    codes = []
    for node in [*nodes, *nodes]:  # a burst of 3: one per node, then one more on each
        with ana.http(node) as http:
            r = http.post(f"/api/v1/shows/{show_id}/chat", json={"text": "spam"})
            codes.append(r.status_code)
    assert codes == [201, 201, 201, 429, 429, 429]


def _hub(node: RunningServer) -> RoomHub:
    hub: RoomHub = node.app.state.onair.rooms
    return hub


def test_presence_is_counted_over_every_node(nodes: list[RunningServer], show_id: int) -> None:
    a, b, c = nodes
    with _socket(a, show_id), _socket(b, show_id), _socket(b, show_id), _socket(c, show_id):

        async def presence(node: RunningServer) -> int:
            return _hub(node).presence(show_id)

        deadline = time.monotonic() + 15
        counts = [0, 0, 0]
        while time.monotonic() < deadline:
            counts = [node.call(presence(node)) for node in nodes]
            if counts == [4, 4, 4]:
                break
            time.sleep(0.1)
        assert counts == [4, 4, 4]
        assert [_hub(n).listeners(show_id) for n in nodes] == [1, 2, 1]


def test_events_resume_after_redis_restarts_during_the_show(
    nodes: list[RunningServer], show_id: int, people: Callable[[str], Person], own_redis: OwnRedis
) -> None:
    a, b, c = nodes
    bo = people("bob")
    with _socket(a, show_id) as on_a, bo.socket(b, show_id) as on_b, _socket(c, show_id) as on_c:
        _say(on_b, "before")
        (before,) = _events(on_c, 1)
        _events(on_a, 1)
        own_redis.stop()
        time.sleep(0.5)
        own_redis.start()  # empty: nodes put back the numbers and the state
        time.sleep(1)
        _say(on_b, "after")
        for ws in (on_a, on_c):
            (after,) = _events(ws, 1)
            assert after["message"]["text"] == "after"
            assert after["seq"] == before["seq"] + 1


def test_a_followers_open_page_on_another_node_hears_of_a_new_show(
    nodes: list[RunningServer], people: Callable[[str], Person]
) -> None:
    a, b, c = nodes
    host, fan = people("deejay"), people("fan")
    with host.http(a) as on_a, fan.http(b) as on_b, fan.http(c) as on_c:
        host_id = int(on_a.get("/api/v1/accounts/me").json()["id"])
        assert on_b.put(f"/api/v1/users/{host_id}/follow").status_code == 200
        with on_c.stream("GET", "/api/v1/notifications/stream", timeout=20) as r:
            events = read_events(r)
            assert next_event(events, "unread").json() == {"unread": 0}
            start = (datetime.now(UTC) + timedelta(days=1)).isoformat()
            made = on_a.post("/api/v1/shows", json={"title": "Soon", "scheduled_start": start})
            assert made.status_code == 201, made.text
            note = next_event(events, "notification").json()
            assert (note["kind"], note["unread"]) == ("scheduled", 1)
            assert on_b.post("/api/v1/notifications/read", json={}).status_code in (200, 204)
            assert next_event(events, "unread").json() == {"unread": 0}
