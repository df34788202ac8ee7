"""`/metrics` during a live show, read as Prometheus reads it; and who may read it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect as ws_connect

from onair.accounts.models import Role, User
from onair.app import create_app
from onair.clock import FakeClock
from onair.db.migrate import upgrade_async
from onair.settings import Settings
from onair.studio.studio import LATENESS_BUCKETS, Studio
from tests.conftest import sign_up
from tests.live import serving_concert_a
from tests.media import Client, connect, new_client
from tests.server import RunningServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def _until(read: Callable[[], Awaitable[Samples]], ok: Callable[[Samples], bool]) -> Samples:
    """Scrapes until `ok` (at most 15 s: the studio and encoders start in a moment)."""
    deadline = time.monotonic() + 15
    samples = await read()
    while not ok(samples) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        samples = await read()
    return samples


# --- during a live show, over the wire


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with serving_concert_a(tmp_path_factory.mktemp("metrics")) as running:
        yield running


async def _go_live(http: httpx.AsyncClient) -> int:
    await sign_up(http, "metricshost")
    show = (await http.post("/api/v1/shows", json={"title": "Metrics FM"})).json()
    found = (await http.get("/api/v1/catalog/search", params={"q": "concert"})).json()
    queued = await http.post(
        f"/api/v1/shows/{show['id']}/queue", json={"track_id": found["tracks"][0]["id"]}
    )
    assert queued.status_code == 201, queued.text
    assert (await http.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
    return int(show["id"])


async def _listen_and_chat(
    http: httpx.AsyncClient,
    server: RunningServer,
    show_id: int,
    webrtc: Client,
    scrape: Callable[[], Awaitable[Samples]],
) -> Samples:
    """A listener of each transport and a room client; a chat message; the scrape then."""
    show = str(show_id)
    cookie = f"onair_session={http.cookies['onair_session']}"
    room = f"{server.ws_url}/api/v1/rooms/{show_id}/ws"
    async with (
        ws_connect(room, additional_headers={"Cookie": cookie}) as ws,
        http.stream("GET", f"/listen/{show_id}.mp3") as mp3,
    ):
        assert mp3.status_code == 200
        heard = asyncio.Event()

        async def play() -> None:  # as a player does: read all along
            async for _ in mp3.aiter_raw():
                heard.set()

        player = asyncio.create_task(play())
        await asyncio.wait_for(heard.wait(), 10)
        assert (await http.get(f"/listen/{show_id}.m3u8")).status_code == 200
        await connect(http, webrtc, f"/api/v1/shows/{show_id}/whep")
        assert json.loads(await ws.recv())[0]["type"] == "room.welcome"
        sent = await http.post(f"/api/v1/shows/{show_id}/chat", json={"text": "hi metrics"})
        assert sent.status_code == 201, sent.text
        while not any(e["type"] == "chat.message" for e in json.loads(await ws.recv())):
            pass

        def counted(s: Samples) -> bool:
            return (
                all(value(s, "onair_listeners", transport=t) == 1 for t in ("mp3", "hls"))
                and value(s, "onair_listeners", transport="webrtc") == 1
                and value(s, "onair_encoder_seconds_total", show=show, format="mp3") > 0
            )

        during = await _until(scrape, counted)
        player.cancel()
        return during


async def test_a_scrape_during_a_live_show(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

        async def scrape() -> Samples:
            r = await http.get("/metrics")
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("text/plain; version=")
            return parse(r.text)

        before = await scrape()
        assert value(before, "onair_live_shows") == 0
        assert value(before, "onair_listeners", transport="mp3") == 0
        show_id = await _go_live(http)
        show = str(show_id)
        webrtc = new_client()
        try:
            during = await _listen_and_chat(http, server, show_id, webrtc, scrape)
        finally:
            await webrtc.pc.close()

        assert value(during, "onair_live_shows") == 1
        for transport, n in (("mp3", 1), ("aac", 0), ("hls", 1), ("webrtc", 1)):
            assert value(during, "onair_listeners", transport=transport) == n, transport
        frames = value(during, "onair_studio_frame_lateness_seconds_count", show=show)
        assert frames > 0
        assert value(
            during, "onair_studio_frame_lateness_seconds_bucket", show=show, le="+Inf"
        ) == (frames)
        assert value(during, "onair_studio_frame_lateness_seconds_sum", show=show) >= 0
        bounds = [*(repr(b) for b in LATENESS_BUCKETS), "+Inf"]
        cumulative = [
            value(during, "onair_studio_frame_lateness_seconds_bucket", show=show, le=b)
            for b in bounds
        ]
        assert cumulative == sorted(cumulative), cumulative
        for fmt in ("mp3", "aac", "opus"):  # the .mp3 stream, HLS, WebRTC
            assert value(during, "onair_encoder_seconds_total", show=show, format=fmt) > 0, fmt
            assert value(during, "onair_encoders_running", format=fmt) == 1, fmt
        assert value(during, "onair_websocket_clients") == 1
        assert value(during, "onair_chat_deliveries_total") >= 1
        assert value(during, "onair_room_deliveries_total") >= value(
            during, "onair_chat_deliveries_total"
        )
        assert value(during, "onair_chat_deliveries_total") > value(
            before, "onair_chat_deliveries_total"
        )
        assert value(during, "onair_http_requests_total", status_class="2xx") > value(
            before, "onair_http_requests_total", status_class="2xx"
        )
        assert value(during, "process_resident_memory_bytes") > 0

        def gone(s: Samples) -> bool:  # the server notices each hang-up in its own time
            mp3 = value(s, "onair_listeners", transport="mp3")
            return mp3 == 0 and value(s, "onair_websocket_clients") == 0

        after = await _until(scrape, gone)
        assert value(after, "onair_listeners", transport="mp3") == 0
        assert value(after, "onair_websocket_clients") == 0
        # The lateness keeps counting while the show is on: the loop is watched, not sampled once.
        assert value(after, "onair_studio_frame_lateness_seconds_count", show=show) > frames


# --- the app alone


@pytest.fixture
async def token_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(data_dir=tmp_path / "var", metrics_token="s3cret-token")
    settings.data_dir.mkdir(parents=True)
    await upgrade_async(settings.resolved_database_url)
    app = create_app(settings, FakeClock())
    yield app
    await app.state.onair.engine.dispose()


def _client(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_with_a_token_only_its_bearer_and_admins_read_metrics(token_app: FastAPI) -> None:
    async with _client(token_app) as local:
        r = await local.get("/metrics")  # the token turns the loopback rule off
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        wrong = {"authorization": "Bearer not-the-token"}
        assert (await local.get("/metrics", headers=wrong)).status_code == 401
        right = {"authorization": "Bearer s3cret-token"}
        assert (await local.get("/metrics", headers=right)).status_code == 200
    async with _client(token_app, "203.0.113.9") as remote:
        r = await remote.get("/metrics", headers={"authorization": "Bearer s3cret-token"})
        assert r.status_code == 200
        assert "onair_live_shows 0.0" in r.text

        await sign_up(remote, "plainlistener")
        r = await remote.get("/metrics")
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"

    async with _client(token_app, "203.0.113.10") as admin:
        user = await sign_up(admin, "operator")
        async with token_app.state.onair.sessions() as db:
            row = await db.get(User, user["id"])
            assert row is not None
            row.role = Role.admin
            await db.commit()
        assert (await admin.get("/metrics")).status_code == 200


async def test_without_a_token_only_this_host_reads_metrics(app: FastAPI) -> None:
    async with _client(app) as local:
        assert (await local.get("/metrics")).status_code == 200
        # Through a proxy on this host, everyone would look local: a forwarded request is not.
        for header in ("x-forwarded-for", "forwarded", "x-real-ip"):
            r = await local.get("/metrics", headers={header: "198.51.100.4"})
            assert r.status_code == 401, header
    async with _client(app, "198.51.100.4") as remote:
        r = await remote.get("/metrics")
        assert r.status_code == 401
        assert "from this host" in r.json()["error"]["message"]
    async with _client(app, "::1") as local6:
        assert (await local6.get("/metrics")).status_code == 200


async def test_http_answers_are_counted_by_status_class(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-boom", boom)
    app.router.routes.insert(0, app.router.routes.pop())  # ahead of the pages' catch-alls
    async with _client(app) as c:
        before = parse((await c.get("/metrics")).text)
        assert (await c.get("/api/v1/shows/999999")).status_code == 404
        assert (await c.get("/test-boom")).status_code == 500
        assert (await c.get("/healthz")).status_code == 200
        after = parse((await c.get("/metrics")).text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("onair_http_requests_total", status_class="4xx") == 1
    assert grew("onair_http_requests_total", status_class="5xx") == 1
    assert grew("onair_http_requests_total", status_class="2xx") == 2  # /healthz, /metrics
    assert grew("onair_http_exceptions_total") == 1


def test_frame_lateness_lands_in_its_bucket() -> None:
    studio = Studio(decode_in_background=False)
    for lateness in (-0.0001, 0.0005, 0.001, 0.015, 0.02, 0.021, 5.0):
        studio._count_lateness(lateness)
    counts = dict(zip([*LATENESS_BUCKETS, "inf"], studio.stats.lateness_counts, strict=True))
    assert counts[0.001] == 3  # early wake-ups count as on time, a bound is inside its bucket
    assert counts[0.02] == 2
    assert counts[0.04] == 1
    assert counts["inf"] == 1
    assert sum(counts.values()) == 7
    assert studio.stats.late_frames == 2  # over one frame period
    assert abs(studio.stats.lateness_sum_s - 5.0575) < 1e-9
    studio.close()
