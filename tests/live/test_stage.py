"""Call-ins on a live show, checked as audio: the host (1 kHz), a caller (2 kHz), a listener.

The caller raises a hand; the host screens them (a private line: the caller hears the host,
listeners hear neither), puts them on air (listeners hear them; the caller hears the host and
never themselves), mutes them (gone from the program within 100 ms), then drops them. A second
caller's connection dies silently on air: they are off air within 5 s and back in the queue.
And nobody but the crew and the callers they take can send audio or run the stage.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.managers import SyncManager
from typing import Any

import httpx
import numpy as np
import pytest

from onair.app import create_app
from onair.settings import Settings
from onair.stage.service import REJOIN_GRACE_S
from onair.studio.frames import ProgramFrame
from onair.studio.studio import FrameSubscription
from tests.live import RATE, Mono, ToneTrack, band_db, seed_songs, write_song
from tests.media import Client, connect, new_client
from tests.server import RunningServer, serve

pytestmark = pytest.mark.media

HOST_HZ, CALLER_HZ, MUSIC_HZ = 1000.0, 2000.0, 440.0
PRESENT, ABSENT = -35.0, -55.0  # dBFS in a tone's band: clearly there / clearly not


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("stage")
    settings = Settings(data_dir=root / "var")
    settings.data_dir.mkdir(parents=True)
    from onair.db.migrate import upgrade

    upgrade(settings.resolved_database_url)
    song = root / "a440.flac"
    write_song(song, MUSIC_HZ, 120.0, 0.1)
    asyncio.run(seed_songs(settings.resolved_database_url, [(song, "Concert A")]))
    with serve(create_app(settings)) as running:
        yield running


async def _user(url: str, name: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=url, timeout=30)
    r = await http.post(
        "/api/v1/accounts/signup",
        json={"username": name, "email": f"{name}@example.org", "password": "password-1"},
    )
    assert r.status_code == 201, r.text
    return http


@dataclass
class Marks:
    """Where each phase starts, as a sample index into each client's received audio."""

    heard: dict[str, Client]
    at: dict[str, dict[str, int]] = field(default_factory=dict)

    def mark(self, phase: str) -> None:
        self.at[phase] = {who: len(c.audio()) for who, c in self.heard.items()}

    def span(self, who: str, phase: str, until: str, settle: float = 0.6) -> Mono:
        audio = self.heard[who].audio()
        start = self.at[phase][who] + int(settle * RATE)
        end = self.at[until][who] - int(0.1 * RATE)
        assert end - start > RATE, f"{who}: {phase} too short to judge"
        return audio[start:end]


class ProgramTap:
    """The studio's program frames of a show, taken in the server's process (where the studio
    is) while the peers run in a process of their own: `subscribe` and `drain` are asked for
    over two queues, and the frames stay on the server's side."""

    def __init__(self, server: RunningServer, manager: SyncManager) -> None:
        self.server = server
        self.asks: queue.Queue[tuple[str, int]] = manager.Queue()  # type: ignore[assignment]
        self.done: queue.Queue[bool] = manager.Queue()  # type: ignore[assignment]
        self.frames: list[ProgramFrame] = []
        self._subscription: FrameSubscription | None = None

    def serve_until(self, result: Future[dict[str, Any]]) -> dict[str, Any]:
        while not result.done():
            try:
                what, show_id = self.asks.get(timeout=0.05)
            except queue.Empty:
                continue
            if what == "subscribe":
                self._subscription = self.server.call(self._subscribe(show_id))
            else:
                self.frames = self.server.call(self._drain())
            self.done.put(True)
        return result.result()

    async def _subscribe(self, show_id: int) -> FrameSubscription:
        station = self.server.app.state.onair.stations.get(show_id)
        return station.studio.subscribe(maxsize=2000)

    async def _drain(self) -> list[ProgramFrame]:
        subscription = self._subscription
        assert subscription is not None
        frames = []
        while subscription.qsize():
            frames.append(subscription.get_nowait())
        subscription.close()
        return frames


@dataclass
class TapLine:
    """The peers' end of a ProgramTap."""

    asks: queue.Queue[tuple[str, int]]
    done: queue.Queue[bool]

    async def ask(self, what: str, show_id: int = 0) -> None:
        self.asks.put((what, show_id))
        await asyncio.to_thread(self.done.get, True, 30)


@pytest.fixture(scope="module")
def call(server: RunningServer) -> Iterator[dict[str, Any]]:
    # The host, the caller and the listener (three WebRTC peers with codec threads) run in a
    # process of their own, as browsers would: in the server's process they held every request
    # up behind the GIL for 100-300 ms, which timed the harness, not the server.
    with multiprocessing.get_context("spawn").Manager() as manager:
        tap = ProgramTap(server, manager)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            result = pool.submit(_call_in_peers, server.url, TapLine(tap.asks, tap.done))
            out = tap.serve_until(result)
    out["program"] = tap.frames
    yield out


def _call_in_peers(url: str, tap: TapLine) -> dict[str, Any]:
    sys.setswitchinterval(0.001)  # three peers' codec threads share this process's GIL
    return asyncio.run(_call(url, tap))


async def _wait_for_state(http: httpx.AsyncClient, show_id: int, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        me = (await http.get(f"/api/v1/shows/{show_id}/stage")).json()["me"]
        if me["state"] == state or time.monotonic() > deadline:
            return dict(me)
        await asyncio.sleep(0.1)


async def _call(url: str, tap: TapLine) -> dict[str, Any]:
    host_http = await _user(url, "stagehost")
    caller_http = await _user(url, "caller")
    nosy_http = await _user(url, "nosy")
    out: dict[str, Any] = {"refusals": {}}
    refusals: dict[str, int] = out["refusals"]
    try:
        show = (await host_http.post("/api/v1/shows", json={"title": "Call-in Hour"})).json()
        show_id = show["id"]
        stage = f"/api/v1/shows/{show_id}/stage"
        line = f"/api/v1/shows/{show_id}/studio/webrtc"
        found = (await host_http.get("/api/v1/catalog/search", params={"q": "concert"})).json()
        r = await host_http.post(
            f"/api/v1/shows/{show_id}/queue", json={"track_id": found["tracks"][0]["id"]}
        )
        assert r.status_code == 201, r.text
        assert (await host_http.post(f"/api/v1/shows/{show_id}/live")).status_code == 200

        host = await connect(host_http, new_client(send=ToneTrack(HOST_HZ)), line)
        listener = await connect(nosy_http, new_client(), f"/api/v1/shows/{show_id}/whep")
        caller_mic = ToneTrack(CALLER_HZ)
        caller_client = new_client(send=caller_mic)
        marks = Marks({"listener": listener, "host": host, "caller": caller_client})

        r = await caller_http.post(f"{stage}/call", json={"topic": "I have a question"})
        assert r.status_code == 201, r.text
        caller_id = r.json()["me"]["call"]["user_id"]
        out["queue_seen_by_host"] = (await host_http.get(stage)).json()["queue"]
        out["queue_seen_by_listener"] = (await nosy_http.get(stage)).json()
        # Waiting in the queue gives no right to send audio, nor to run the stage.
        offer_client = new_client(send=ToneTrack(CALLER_HZ))
        refusals["requested caller opens a line"] = (
            await caller_http.post(
                line,
                content=(await _offer(offer_client)),
                headers={"content-type": "application/sdp"},
            )
        ).status_code
        await offer_client.pc.close()
        refusals["caller screens themselves"] = (
            await caller_http.post(f"{stage}/callers/{caller_id}/screen")
        ).status_code
        refusals["listener screens the caller"] = (
            await nosy_http.post(f"{stage}/callers/{caller_id}/screen")
        ).status_code
        marks.mark("requested")
        await asyncio.sleep(3.0)

        r = await host_http.post(f"{stage}/callers/{caller_id}/screen")
        assert r.status_code == 200, r.text
        refusals["listener airs the caller"] = (
            await nosy_http.post(f"{stage}/callers/{caller_id}/air")
        ).status_code
        await connect(caller_http, caller_client, line)  # the caller's page opens its line
        marks.mark("screening")
        await asyncio.sleep(4.0)

        r = await host_http.post(f"{stage}/callers/{caller_id}/air")
        assert r.status_code == 200, r.text
        marks.mark("on_air")
        await asyncio.sleep(4.0)

        await tap.ask("subscribe", show_id)
        await asyncio.sleep(1.0)
        # Sent from a thread of its own: this process also plays three WebRTC peers, and the
        # mute must not wait for their event loop before it leaves.
        muted_at, r = await asyncio.to_thread(
            _request_now, host_http, "PATCH", f"{stage}/callers/{caller_id}", {"muted": True}
        )
        assert r.status_code == 200, r.text
        out["mute_request_s"] = time.time() - muted_at
        marks.mark("muted")
        await asyncio.sleep(1.5)
        await tap.ask("drain")
        out["muted_at"] = muted_at
        await host_http.patch(f"{stage}/callers/{caller_id}", json={"muted": False})

        r = await host_http.post(f"{stage}/callers/{caller_id}/drop")
        assert r.status_code == 200, r.text
        marks.mark("dropped")
        out["dropped_me"] = await _wait_for_state(caller_http, show_id, "dropped")
        await asyncio.sleep(3.0)
        marks.mark("end")
        out["caller_line_after_drop"] = caller_client.pc.connectionState

        # A second call: on air, then the caller's network dies without a word.
        r = await caller_http.post(f"{stage}/call", json={"topic": "me again"})
        assert r.status_code == 201, r.text
        await host_http.post(f"{stage}/callers/{caller_id}/screen")
        again_mic = ToneTrack(CALLER_HZ)
        again = await connect(caller_http, new_client(send=again_mic), line)
        await host_http.post(f"{stage}/callers/{caller_id}/air")
        await asyncio.sleep(2.0)
        hung_at = time.monotonic()
        again_mic.hang()
        me = await _wait_for_state(caller_http, show_id, "requested")
        out["off_air_after_s"] = time.monotonic() - hung_at
        out["after_hang"] = me
        await again.pc.close()
        out["audio"] = {
            who: {
                phase: marks.span(who, phase, until)
                for phase, until in [
                    ("requested", "screening"),
                    ("screening", "on_air"),
                    ("on_air", "muted"),
                    ("dropped", "end"),
                ]
                if not (who == "caller" and phase in ("requested", "dropped"))
            }
            for who in ("listener", "host", "caller")
        }
        for peer in (host, listener, caller_client):
            await peer.pc.close()
        await host_http.post(f"/api/v1/shows/{show_id}/end")
    finally:
        for http in (host_http, caller_http, nosy_http):
            await http.aclose()
    return out


def _request_now(
    like: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> tuple[float, httpx.Response]:
    """A request sent at once, with `like`'s cookies, on a connection already open (as a
    browser's is); returns when it was sent, and the answer."""
    with httpx.Client(base_url=like.base_url, cookies=like.cookies, timeout=30) as http:
        http.get("/api/v1/accounts/me").raise_for_status()
        request = http.build_request(method, path, json=body)
        sent = time.time()
        return sent, http.send(request)


async def _offer(client: Client) -> str:
    await client.pc.setLocalDescription(await client.pc.createOffer())
    return str(client.pc.localDescription.sdp)


def _db(audio: dict[str, dict[str, Mono]], who: str, phase: str, hz: float) -> float:
    return band_db(audio[who][phase], hz)


def test_the_host_sees_the_call_in_queue_and_listeners_see_no_topics(
    call: dict[str, Any],
) -> None:
    (entry,) = call["queue_seen_by_host"]
    assert entry["username"] == "caller" and entry["topic"] == "I have a question"
    assert entry["state"] == "requested" and entry["waited_s"] >= 0
    public = call["queue_seen_by_listener"]
    assert "queue" not in public and public["waiting"] == [entry["user_id"]]
    assert public["me"]["state"] == "listening"


def test_only_the_crew_runs_the_stage_and_only_taken_callers_send_audio(
    call: dict[str, Any],
) -> None:
    assert call["refusals"] == {
        "requested caller opens a line": 403,
        "caller screens themselves": 403,
        "listener screens the caller": 403,
        "listener airs the caller": 403,
    }


def test_listeners_hear_the_caller_only_on_air(call: dict[str, Any]) -> None:
    audio = call["audio"]
    for phase in ("requested", "screening", "dropped"):
        level = _db(audio, "listener", phase, CALLER_HZ)
        assert level < ABSENT, f"listener hears the caller while {phase}: {level:.1f} dB"
    assert _db(audio, "listener", "on_air", CALLER_HZ) > PRESENT
    assert _db(audio, "listener", "on_air", HOST_HZ) > PRESENT
    assert _db(audio, "listener", "requested", HOST_HZ) > PRESENT
    # While screening, the host talks to the caller off air (talkback): the music plays on.
    assert _db(audio, "listener", "screening", HOST_HZ) < ABSENT
    assert _db(audio, "listener", "screening", MUSIC_HZ) > PRESENT


def test_the_caller_hears_the_host_and_never_themselves(call: dict[str, Any]) -> None:
    audio = call["audio"]
    for phase in ("screening", "on_air"):
        assert _db(audio, "caller", phase, HOST_HZ) > PRESENT, f"no host while {phase}"
        assert _db(audio, "caller", phase, CALLER_HZ) < ABSENT, f"own voice while {phase}"
    # Screening, the caller hears the show 12 dB below what listeners hear at that moment.
    down = _db(audio, "listener", "screening", MUSIC_HZ) - _db(
        audio, "caller", "screening", MUSIC_HZ
    )
    assert 9.0 < down < 15.0, f"the show is {down:.1f} dB down on the screening line, not 12"


def test_the_host_hears_the_caller_while_screening_and_on_air(call: dict[str, Any]) -> None:
    audio = call["audio"]
    assert _db(audio, "host", "requested", CALLER_HZ) < ABSENT
    for phase in ("screening", "on_air"):
        assert _db(audio, "host", phase, CALLER_HZ) > PRESENT, f"host misses caller ({phase})"
        assert _db(audio, "host", phase, HOST_HZ) < ABSENT, f"host hears themselves ({phase})"


def test_mute_silences_the_caller_in_the_program_within_100_ms(call: dict[str, Any]) -> None:
    """Judged on the program as the studio renders it, by each frame's place on the program
    clock (when it is heard), against the moment the host's request was sent."""
    frames: list[ProgramFrame] = call["program"]
    muted_at: float = call["muted_at"]
    before = [f for f in frames if f.wallclock < muted_at - 0.1]
    after = [f for f in frames if f.wallclock >= muted_at + 0.1]
    assert len(before) >= 20 and len(after) >= 20

    def caller(fs: list[ProgramFrame]) -> float:
        return band_db(np.concatenate([f.samples.mean(axis=0) for f in fs]), CALLER_HZ)

    assert caller(before[-25:]) > PRESENT
    late = [round(f.wallclock - muted_at, 3) for f in after if caller([f]) > ABSENT]
    took = call["mute_request_s"]
    assert not late, f"the caller is still heard {late} s after the mute (answered in {took} s)"
    assert caller(before[-25:]) - caller(after) > 30.0


def test_a_dropped_caller_is_off_the_line(call: dict[str, Any]) -> None:
    assert call["dropped_me"]["state"] == "dropped"
    assert call["caller_line_after_drop"] in ("closed", "failed")


def test_a_caller_whose_connection_dies_is_off_air_within_5_s(call: dict[str, Any]) -> None:
    assert call["after_hang"]["state"] == "requested"
    assert call["after_hang"]["call"]["reason"] == "connection_lost"
    assert call["off_air_after_s"] < 5.0


@pytest.fixture(scope="module")
def handover(server: RunningServer) -> dict[str, Any]:
    return asyncio.run(_handover(server))


async def _handover(server: RunningServer) -> dict[str, Any]:
    names = ["lead", "second", "extra1", "extra2", "extra3", "talker"]
    users = {name: await _user(server.url, f"h{name}") for name in names}
    lead, second, talker = users["lead"], users["second"], users["talker"]
    out: dict[str, Any] = {}
    peers: list[Client] = []
    try:
        show_id = (await lead.post("/api/v1/shows", json={"title": "Two Hosts"})).json()["id"]
        base = f"/api/v1/shows/{show_id}"
        for name in ("second", "extra1", "extra2"):
            r = await lead.post(f"{base}/cohosts", json={"username": f"h{name}"})
            assert r.status_code == 201, r.text
        out["fourth_invite"] = (
            await lead.post(f"{base}/cohosts", json={"username": "hextra3"})
        ).status_code
        out["invitee_invites"] = (
            await second.post(f"{base}/cohosts", json={"username": "htalker"})
        ).status_code
        out["studio_before_accepting"] = (await second.post(f"{base}/studio/play")).status_code
        assert (await second.post(f"{base}/cohosts/accept")).status_code == 200
        assert (await lead.post(f"{base}/live")).status_code == 200
        line = f"{base}/studio/webrtc"
        host = await connect(lead, new_client(send=ToneTrack(HOST_HZ)), line)
        cohost = await connect(second, new_client(send=ToneTrack(1500.0)), line)
        caller_id = (await talker.post(f"{base}/stage/call", json={})).json()["me"]["call"][
            "user_id"
        ]
        r = await second.post(f"{base}/stage/callers/{caller_id}/screen")  # a co-host screens
        assert r.status_code == 200, r.text
        caller = await connect(talker, new_client(send=ToneTrack(CALLER_HZ)), line)
        peers = [host, cohost, caller]
        assert (await second.post(f"{base}/stage/callers/{caller_id}/air")).status_code == 200
        await asyncio.sleep(2.0)
        out["on_air"] = (await lead.get(f"{base}/stage")).json()

        await host.pc.close()  # the host leaves: the co-host runs the show
        await asyncio.sleep(REJOIN_GRACE_S + 1.0)
        out["host_gone"] = (await second.get(f"{base}/stage")).json()
        await cohost.pc.close()  # and then nobody runs it: the caller waits in the queue
        await asyncio.sleep(REJOIN_GRACE_S + 1.0)
        out["crew_gone"] = (await talker.get(f"{base}/stage")).json()
        out["still_playing"] = (await second.get(f"{base}/studio")).json()["playing"]
        await lead.post(f"{base}/end")
    finally:
        for peer in peers:
            await peer.pc.close()
        for http in users.values():
            await http.aclose()
    return out


def test_a_host_invites_at_most_three_co_hosts_who_must_accept(handover: dict[str, Any]) -> None:
    assert handover["fourth_invite"] == 409
    assert handover["invitee_invites"] == 403
    assert handover["studio_before_accepting"] == 403


def test_a_host_who_leaves_hands_the_show_to_a_co_host(handover: dict[str, Any]) -> None:
    on_air = handover["on_air"]
    assert [c["name"] for c in on_air["on_air"]] == ["htalker"]
    assert on_air["voices_on_air"] == 3
    host_gone = handover["host_gone"]
    second = next(c for c in host_gone["crew"] if c["role"] == "cohost" and c["on_line"])
    assert host_gone["lead"] == second["user_id"] != host_gone["host_id"]
    assert [c["name"] for c in host_gone["on_air"]] == ["htalker"]  # the call goes on


def test_with_nobody_left_to_run_it_the_music_plays_and_callers_wait(
    handover: dict[str, Any],
) -> None:
    crew_gone = handover["crew_gone"]
    assert crew_gone["on_air"] == [] and len(crew_gone["waiting"]) == 1
    assert crew_gone["me"]["call"]["reason"] == "host_left"
    assert handover["still_playing"] is True
