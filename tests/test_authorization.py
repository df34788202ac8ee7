"""Who may do what: every operation in the OpenAPI document, the pages that need a role and
every room-socket action, tried as each kind of user and checked against the design; then what
each of them sees of the crew's things, and whether one show's things can be reached through
another show's routes.

The world: show A, live, run by `host` with `cohost` (an accepted co-host); show B belongs to
`other_host`; `moderator` and `admin` hold those roles; `outcast` is a listener the host banned
from their shows; `banned` was banned from the platform after signing in, so their cookie is
still sent but signs no one in. Around them: chat messages (one held back), song requests,
reports, queued songs, a timeout, callers waiting and being screened, and people for
moderators to act on.

Each route row gets a world of its own (a copy of one seeded database in a fresh app), shared
by the row's nine cases in turn. What a case uses up (a queued song to remove, a caller to put
on air, a report to settle) is its persona's own, so each allowed persona meets the thing in
the state it was seeded in; refusals come before any state is read, so they hold either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection
from fastapi import FastAPI
from PIL import Image
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from onair.accounts.models import Role, User
from onair.accounts.passwords import hash_password
from onair.accounts.service import open_session
from onair.app import create_app
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from onair.db.migrate import upgrade_async
from onair.replays.models import Replay, ReplayKind, ReplayState
from onair.restream.models import RestreamDestination
from onair.rooms.hub import CLOSE_REMOVED
from onair.rooms.models import ChatMessage
from onair.settings import Settings
from onair.shows.models import Show, ShowStatus
from tests.databases import copy_data_dir, execute_sql
from tests.server import RunningServer, serve

PASSWORD = "correct horse"

PERSONAS = (
    "anonymous",
    "listener",
    "outcast",  # a listener the host banned from their shows: a room ban, not the platform's
    "other_host",
    "host",
    "cohost",
    "moderator",
    "admin",
    "banned",
)
CREW_PERSONAS = ("host", "cohost", "moderator", "admin")

# The outcome classes, one code per persona in PERSONAS order:
#   +  allowed: 2xx, or a 4xx other than 401/403 because of the body or the state
#   A  401: sign in first (the banned user's cookie signs no one in, so they are anonymous)
#   F  403: signed in, but not allowed
#   H  404: not allowed, and not told the thing exists (someone else's request or line)
CODES = {"+": "allowed", "A": "401", "F": "403", "H": "404"}

#              anon list outc othr host coh  mod  adm  ban
PUBLIC = "     +    +    +    +    +    +    +    +    +"
SIGNED_IN = "  A    +    +    +    +    +    +    +    A"
IN_ROOM = "    A    +    F    +    +    +    +    +    A"  # taking part in show A's room
CREW = "       A    F    F    F    +    +    +    +    A"  # host, co-hosts, moderators
HOST = "       A    F    F    F    +    F    +    +    A"  # the host, or a moderator for them
ON_AIR = "     A    F    F    F    +    +    F    F    A"  # voice lines: host and co-hosts
MODERATORS = " A    F    F    F    F    F    +    +    A"
ADMINS = "     A    F    F    F    F    F    F    +    A"
OWNER = "      A    H    H    H    +    H    H    H    A"  # the host's own thing, a secret
SHOW_HOST = "  A    F    F    F    +    F    F    F    A"  # the show's host alone

# People besides the personas: the moderators' troll and the banned exile, an invitee, the
# account an anonymous visitor signs in to, and one of each below for every persona.
EXTRAS = ("troll", "exile", "ivy", "walker")
EACH = ("waiting", "screened", "offender", "sleeper", "spare")
CREWMATES = ("crewmate_host", "crewmate_moderator", "crewmate_admin")
ROLES = {"moderator": Role.moderator, "admin": Role.admin}


@dataclass(frozen=True)
class Ref:
    """A name of the world (an id, a session), in a path parameter or a body."""

    name: str


@dataclass(frozen=True)
class Each:
    """The persona's own one of these: `Each("waiting")` is `waiting_<persona>`."""

    name: str


Names = Mapping[str, int | str]
Prepare = Callable[["World"], Awaitable[None]]


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expect: str
    body: Any = None
    """JSON (with Refs and Eachs), or a builder of the request's keyword arguments."""
    params: Mapping[str, Ref | Each | str] = field(default_factory=dict)
    query: str = ""
    live: bool = False
    """The studio runs: the route reads the live show (studio, stage, voice lines)."""
    prepare: Prepare | None = None
    stream: bool = False
    """The answer never ends (server-sent events): only its status is read."""

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}{self.query}"

    def expected(self, persona: str) -> str:
        return self.expect.split()[PERSONAS.index(persona)]


def _signup(world: World, persona: str) -> dict[str, Any]:
    name = f"new_{persona}"
    return {"json": {"username": name, "email": f"{name}@example.org", "password": PASSWORD}}


def _login(world: World, persona: str) -> dict[str, Any]:
    login = "walker" if persona == "anonymous" else persona
    return {"json": {"login": login, "password": PASSWORD}}


def _invite(world: World, persona: str) -> dict[str, Any]:
    return {"json": {"username": f"spare_{persona}"}}


def _reorder(world: World, persona: str) -> dict[str, Any]:
    return {"json": {"item_ids": [world.names[f"queue_item_{p}"] for p in reversed(PERSONAS)]}}


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def _cover_upload() -> dict[str, Any]:
    return {"files": {"file": ("cover.jpg", _jpeg(), "image/jpeg")}}


def _cover(world: World, persona: str) -> dict[str, Any]:
    return _cover_upload()


def _offer(world: World, persona: str) -> dict[str, Any]:
    return {"content": world.seed.offer, "headers": {"content-type": "application/sdp"}}


async def _on_the_line(world: World) -> None:
    """The listener and other_host call in, and the host and the co-host screen them."""
    stage = f"/api/v1/shows/{world.names['show_a']}/stage"
    for caller, screener in (("listener", "host"), ("other_host", "cohost")):
        async with world.client(caller) as c:
            await _ok(c.post(f"{stage}/call", json={}), 201)
        async with world.client(screener) as c:
            await _ok(c.post(f"{stage}/callers/{world.names[caller]}/screen"))


async def _listen_in(world: World) -> None:
    """A listening session for each persona to end."""
    async with world.client("anonymous") as c:
        for persona in PERSONAS:
            r = await c.post(f"/api/v1/shows/{world.names['show_a']}/whep", **_offer(world, ""))
            assert r.status_code == 201, r.text
            world.names[f"listening_{persona}"] = r.headers["location"].rsplit("/", 1)[1]


async def _host_line(world: World) -> None:
    """The host's microphone, connected to the studio."""
    async with world.client("host") as c:
        r = await c.post(
            f"/api/v1/shows/{world.names['show_a']}/studio/webrtc", **_offer(world, "")
        )
    assert r.status_code == 201, r.text
    world.names["line_host"] = r.headers["location"].rsplit("/", 1)[1]


SHOW = "/api/v1/shows/{show_id}"
MOD = "/api/v1/moderation"
BECAUSE = "breaks the rules"

# One row per operation of the OpenAPI document (and a second for the crew's view of the
# chat), in the document's order.
ROWS = (
    # operations: Prometheus reads /metrics with the token (this world sets one), admins too;
    # orchestrators probe /healthz and /readyz, which say nothing private
    Row("GET", "/metrics", ADMINS),
    Row("GET", "/healthz", PUBLIC),
    Row("GET", "/readyz", PUBLIC),
    # accounts
    Row("POST", "/api/v1/accounts/signup", PUBLIC, _signup),
    Row("POST", "/api/v1/accounts/login", "+ + + + + + + + F", _login),  # 403 banned
    Row("POST", "/api/v1/accounts/logout", PUBLIC),
    Row("GET", "/api/v1/accounts/me", SIGNED_IN),
    # licensing: where a listener is (the streams refuse listeners abroad with 451)
    Row("GET", "/api/v1/territory", PUBLIC),
    Row("PUT", "/api/v1/territory", SIGNED_IN, {"territory": "US"}),
    # catalog
    Row("GET", "/api/v1/catalog/search", PUBLIC, query="?q=morning"),
    Row("GET", "/api/v1/catalog/tracks/{track_id}", PUBLIC),
    Row("GET", "/api/v1/catalog/tracks/{track_id}/artwork", PUBLIC),
    Row("GET", "/api/v1/catalog/genres", PUBLIC),
    Row("GET", "/api/v1/catalog/tracks/{track_id}/plays", PUBLIC),
    Row("GET", "/api/v1/catalog/artists/{artist_id}", PUBLIC, params={"artist_id": "1"}),
    # discovery: one search over shows, hosts, hashtags, artists and songs
    Row("GET", "/api/v1/search", PUBLIC, query="?q=morning"),
    # shows
    Row("POST", "/api/v1/shows", SIGNED_IN, {"title": "Another show"}),
    Row("GET", "/api/v1/shows", PUBLIC),
    Row("GET", SHOW, PUBLIC),
    Row("PATCH", SHOW, HOST, {"title": "Renamed"}),
    Row("POST", f"{SHOW}/live", HOST),
    Row("POST", f"{SHOW}/end", HOST),
    Row("PUT", f"{SHOW}/cover", HOST, _cover),
    Row("GET", f"{SHOW}/cover", PUBLIC),
    Row("GET", f"{SHOW}/queue", PUBLIC),  # what is still to come only for the crew: VIEWS
    Row("POST", f"{SHOW}/queue", CREW, {"track_id": Ref("track_free")}),
    Row("PUT", f"{SHOW}/queue", CREW, _reorder),
    Row("GET", f"{SHOW}/queue/checks", CREW, query="?track_id=1"),
    Row("DELETE", f"{SHOW}/queue/{{item_id}}", CREW, params={"item_id": Each("queue_item")}),
    # hashtags (browse)
    Row("GET", "/api/v1/hashtags/trending", PUBLIC),
    Row("GET", "/api/v1/hashtags/{tag}", PUBLIC, params={"tag": "jazz"}),
    # chat
    Row("GET", f"{SHOW}/chat", PUBLIC),
    Row("GET", f"{SHOW}/chat", CREW, query="?held=true"),
    Row("POST", f"{SHOW}/chat", IN_ROOM, {"text": "hello"}),
    Row("DELETE", f"{SHOW}/chat/{{message_id}}", "A + F F + + + + A"),  # its author, the crew
    Row(
        "POST",
        f"{SHOW}/chat/{{message_id}}/release",
        CREW,
        params={"message_id": Ref("held_message")},
    ),
    Row("GET", f"{SHOW}/chat/settings", PUBLIC),
    Row("PATCH", f"{SHOW}/chat/settings", CREW, {"slow_mode_s": 5}),
    Row("PUT", f"{SHOW}/chat/pin", CREW, {"message_id": Ref("message")}),
    Row("POST", f"{SHOW}/reactions", IN_ROOM, {"emoji": "🔥"}),
    # room moderation
    Row("GET", f"{SHOW}/sanctions", CREW),
    Row(
        "POST",
        f"{SHOW}/sanctions",
        CREW,
        {"user_id": Ref("troll"), "kind": "removed", "minutes": 30, "reason": "spam"},
    ),
    Row("DELETE", f"{SHOW}/sanctions/{{sanction_id}}", CREW),
    # the studio
    Row("GET", f"{SHOW}/studio", CREW, live=True),
    Row("PATCH", f"{SHOW}/studio", CREW, {"crossfade_s": 2}, live=True),
    Row("POST", f"{SHOW}/studio/play", CREW, live=True),
    Row("POST", f"{SHOW}/studio/pause", CREW, live=True),
    Row("POST", f"{SHOW}/studio/skip", CREW, live=True),
    # the cluster's nodes and draining one: admins (here a node of its own answers 409)
    Row("GET", "/api/v1/cluster/nodes", ADMINS),
    Row("POST", "/api/v1/cluster/nodes/{node_id}/drain", ADMINS, params={"node_id": "node-2"}),
    Row("DELETE", "/api/v1/cluster/nodes/{node_id}/drain", ADMINS, params={"node_id": "node-2"}),
    # the source ingest's settings and the show's secret key (DJ software), and a new key
    Row("GET", f"{SHOW}/source", CREW),
    Row("POST", f"{SHOW}/source/rotate", CREW),
    # the stage: each persona has a caller waiting, and each of the crew one on the line
    Row("GET", f"{SHOW}/stage", PUBLIC, live=True),  # the call-in queue only for the crew
    Row("POST", f"{SHOW}/stage/call", IN_ROOM, {"topic": "a question"}, live=True),
    Row("DELETE", f"{SHOW}/stage/call", SIGNED_IN, live=True, prepare=_on_the_line),
    Row("PATCH", f"{SHOW}/stage/call", SIGNED_IN, {"muted": True}, live=True, prepare=_on_the_line),
    Row(
        "POST",
        f"{SHOW}/stage/callers/{{user_id}}/screen",
        CREW,
        params={"user_id": Each("waiting")},
        live=True,
    ),
    Row(
        "POST",
        f"{SHOW}/stage/callers/{{user_id}}/air",
        CREW,
        params={"user_id": Each("screened")},
        live=True,
    ),
    Row(
        "POST",
        f"{SHOW}/stage/callers/{{user_id}}/queue",
        CREW,
        params={"user_id": Each("screened")},
        live=True,
    ),
    Row(
        "POST",
        f"{SHOW}/stage/callers/{{user_id}}/drop",
        CREW,
        params={"user_id": Each("waiting")},
        live=True,
    ),
    Row(
        "PATCH",
        f"{SHOW}/stage/callers/{{user_id}}",
        CREW,
        {"muted": True, "level_db": -3},
        params={"user_id": Each("waiting")},
        live=True,
    ),
    # co-hosts: ivy is invited; cohost and three crewmates accepted
    Row("GET", f"{SHOW}/cohosts", PUBLIC),  # invitations only for the host and moderators
    Row("POST", f"{SHOW}/cohosts", HOST, _invite),
    Row("POST", f"{SHOW}/cohosts/accept", "A H H H H + H H A"),  # only an invitee accepts
    Row(
        "DELETE",
        f"{SHOW}/cohosts/{{user_id}}",
        "A F F F + + + + A",  # the host (or a moderator) takes a co-host off, or they step down
        params={"user_id": Each("crewmate")},
    ),
    # song requests: the listener asked for track_requested, waiting_<persona> for theirs
    Row(
        "POST",
        f"{SHOW}/requests",
        IN_ROOM,  # the crew is answered 409: they queue songs instead
        {"track_id": Ref("track_free"), "dedication": "for Sam"},
    ),
    Row("GET", f"{SHOW}/requests", CREW),
    Row("GET", f"{SHOW}/requests/mine", SIGNED_IN),
    Row("DELETE", f"{SHOW}/requests/{{request_id}}", "A + H H H H H H A"),  # its requester
    Row(
        "POST",
        f"{SHOW}/requests/tracks/{{track_id}}/queue",
        CREW,
        params={"track_id": Each("requested")},
    ),
    Row(
        "POST",
        f"{SHOW}/requests/tracks/{{track_id}}/dismiss",
        CREW,
        params={"track_id": Each("requested")},
    ),
    # the community rules and reports
    Row("GET", "/api/v1/rules", PUBLIC),
    Row("PUT", "/api/v1/rules", ADMINS, {"body": "Be kind."}),
    Row(
        "POST",
        "/api/v1/reports",
        SIGNED_IN,
        {"target": "user", "target_id": Ref("troll"), "reason": "spam"},
    ),
    Row("GET", "/api/v1/reports/mine", SIGNED_IN),
    # platform moderation
    Row("GET", f"{MOD}/reports", MODERATORS),
    Row(
        "POST",
        f"{MOD}/reports/{{report_id}}/actions",
        MODERATORS,
        {"action": "dismiss", "reason": "not a problem"},
        params={"report_id": Each("report")},
    ),
    Row(
        "POST",
        f"{MOD}/users/{{user_id}}/warn",
        MODERATORS,
        {"reason": BECAUSE},
        params={"user_id": Ref("troll")},
    ),
    Row(
        "POST",
        f"{MOD}/users/{{user_id}}/suspend",
        MODERATORS,
        {"reason": BECAUSE, "hours": 2},
        params={"user_id": Ref("troll")},
    ),
    Row(
        "POST",
        f"{MOD}/users/{{user_id}}/ban",
        MODERATORS,
        {"reason": BECAUSE},
        params={"user_id": Each("offender")},
    ),
    Row(
        "POST",
        f"{MOD}/users/{{user_id}}/unsuspend",
        MODERATORS,
        {"reason": "served"},
        params={"user_id": Each("sleeper")},
    ),
    Row(
        "POST",
        f"{MOD}/users/{{user_id}}/unban",
        ADMINS,
        {"reason": "second chance"},
        params={"user_id": Ref("exile")},
    ),
    Row("GET", f"{MOD}/audit", ADMINS),
    # follows and notifications: anyone sees a host's follower count, only the host (and
    # moderators) who the followers are; following yourself is a 422
    Row("GET", "/api/v1/users/{user_id}/follow", PUBLIC, params={"user_id": Ref("host")}),
    Row("PUT", "/api/v1/users/{user_id}/follow", SIGNED_IN, params={"user_id": Ref("host")}),
    Row("DELETE", "/api/v1/users/{user_id}/follow", SIGNED_IN, params={"user_id": Ref("host")}),
    Row("GET", "/api/v1/users/{user_id}/followers", HOST, params={"user_id": Ref("host")}),
    Row("GET", "/api/v1/follows", SIGNED_IN),
    Row("GET", "/api/v1/notifications", SIGNED_IN),
    Row("POST", "/api/v1/notifications/read", SIGNED_IN, {}),
    Row("GET", "/api/v1/notifications/stream", SIGNED_IN, stream=True),
    Row("GET", "/api/v1/calendar", SIGNED_IN),
    Row("POST", "/api/v1/calendar/token", SIGNED_IN),
    # royalties and analytics: the report of use for admins; a show's numbers for its host and
    # accepted co-hosts, and admins (not moderators)
    Row("GET", "/api/v1/admin/reports/royalties", ADMINS, query="?from=2026-03-01&to=2026-03-31"),
    Row("GET", f"{SHOW}/analytics", "A F F F + + F + A"),
    # restream: each user's own RTMP destinations (a stream key is a secret: anyone else's is not
    # found, moderators' included); a live show's pushes are its host's alone (their keys)
    Row("GET", "/api/v1/restream/destinations", SIGNED_IN),
    Row(
        "POST",
        "/api/v1/restream/destinations",
        SIGNED_IN,
        {"name": "Twitch", "url": "rtmp://127.0.0.1:9/app", "stream_key": "live_key"},
    ),
    Row("GET", "/api/v1/restream/destinations/{destination_id}", OWNER),
    Row("PATCH", "/api/v1/restream/destinations/{destination_id}", OWNER, {"enabled": True}),
    Row("DELETE", "/api/v1/restream/destinations/{destination_id}", OWNER),
    Row("GET", f"{SHOW}/restream", SHOW_HOST, live=True),
    Row("POST", f"{SHOW}/restream/{{destination_id}}/start", SHOW_HOST, live=True),
    Row("POST", f"{SHOW}/restream/{{destination_id}}/stop", SHOW_HOST, live=True),
    # replays: anyone lists and plays them; only the host publishes (show A is live: a 409 past
    # the check) and sees what may be published; the host or a moderator unpublishes
    Row("GET", f"{SHOW}/replays", PUBLIC),
    Row("POST", f"{SHOW}/replays", "A F F F + F F F A", {"kind": "talk"}),
    Row("GET", f"{SHOW}/replays/options", "A F F F + F F F A"),
    Row("GET", "/api/v1/replays/{replay_id}", PUBLIC),
    Row("DELETE", "/api/v1/replays/{replay_id}", HOST),
    # WebRTC: anyone listens, and whoever holds a listening session's id may end it; only the
    # host and co-hosts send their voice, each on their own line
    Row("POST", f"{SHOW}/whep", PUBLIC, _offer, live=True),
    Row(
        "DELETE",
        f"{SHOW}/whep/{{session_id}}",
        PUBLIC,
        params={"session_id": Each("listening")},
        live=True,
        prepare=_listen_in,
    ),
    Row("POST", f"{SHOW}/studio/webrtc", ON_AIR, _offer, live=True),
    Row(
        "DELETE",
        f"{SHOW}/studio/webrtc/{{session_id}}",
        "A F F F + H F F A",  # the host's line
        params={"session_id": Ref("line_host")},
        live=True,
        prepare=_host_line,
    ),
    # integrations: Alexa signs its requests (an unsigned one is a 400 for anyone); oEmbed and
    # the embeddable player are for any site
    Row("POST", "/integrations/alexa", PUBLIC, {"version": "1.0"}),
    Row("GET", "/oembed", PUBLIC, query="?url=http://testserver/shows/1&format=json"),
)

# Path parameters a row does not name itself.
DEFAULT_PARAMS: Mapping[str, Ref | Each | str] = {
    "show_id": Ref("show_a"),
    "track_id": Ref("track_art"),
    "message_id": Ref("message"),
    "sanction_id": Ref("sanction"),
    "request_id": Ref("request"),
    "replay_id": Each("replay"),
    "destination_id": Ref("destination_host"),
}

# Cases where the app does not do as designed: (row id, persona) → what is wrong. Each is
# a strict xfail, so fixing it makes the suite say so.
BUGS: Mapping[tuple[str, str], str] = {}


def _cases() -> list[Any]:
    cases = []
    for row in ROWS:
        for persona in PERSONAS:
            bug = BUGS.get((row.id, persona))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            cases.append(pytest.param(row, persona, id=f"{row.id} as {persona}", marks=marks))
    return cases


# --- the world ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """The seeded database's folder, the ids of what is in it, each user's session, and an
    SDP offer (any number of sessions may answer the same one)."""

    root: Path
    ids: Mapping[str, int]
    tokens: Mapping[str, str]
    offer: str


def world_settings(root: Path) -> Settings:
    return Settings(
        data_dir=root,
        blocked_words="rude",
        signup_per_hour=1000,
        login_per_minute=1000,
        max_cohosts=8,
        metrics_token="prometheus-secret",  # so /metrics is decided by who calls, not from where
    )


def _client(app: FastAPI, token: str | None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    cookies = {"onair_session": token} if token else None
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", cookies=cookies)


async def _ok(response: Awaitable[httpx.Response], status: int = 200) -> Any:
    r = await response
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.text}"
    return r.json()


async def _sdp_offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    offer = str(pc.localDescription.sdp)
    await pc.close()
    return offer


async def _add_people(app: FastAPI, clock: FakeClock) -> tuple[dict[str, int], dict[str, str]]:
    """Every user, signed in once; one password hash for all (argon2 takes half a second)."""
    onair = app.state.onair
    ids: dict[str, int] = {}
    tokens: dict[str, str] = {}
    password_hash = hash_password(PASSWORD)
    each = [f"{kind}_{p}" for kind in EACH for p in PERSONAS]
    async with onair.sessions() as db:
        for name in (*PERSONAS[1:], *EXTRAS, *each, *CREWMATES):
            user = User(
                username=name,
                display_name=name.title(),
                email=f"{name}@example.org",
                password_hash=password_hash,
                role=ROLES.get(name, Role.listener),
                created_at=clock.now(),
            )
            db.add(user)
            await db.flush()
            ids[name] = user.id
            tokens[name] = await open_session(db, clock, user, onair.settings.session_days)
        await db.commit()
    return ids, tokens


async def _add_tracks(app: FastAPI, clock: FakeClock, root: Path) -> dict[str, int]:
    artwork = root / "artwork.jpg"
    artwork.write_bytes(_jpeg())
    names = [
        "track_art",
        "track_requested",
        "track_free",
        *(f"{kind}_{p}" for kind in ("queued", "requested") for p in PERSONAS),
    ]
    async with app.state.onair.sessions() as db:
        tracks = await CatalogWriter(db, clock).write(
            [
                TrackInput(
                    source="test",
                    source_key=f"test:{name}",
                    title=f"Morning {name}",
                    artists=("Test Band",),
                    genres=("Jazz",),
                    duration_s=180.0,
                    audio_path=f"/nonexistent/{name}.mp3",
                    artwork_path=str(artwork) if name == "track_art" else None,
                )
                for name in names
            ]
        )
        await db.commit()
        return dict(zip(names, (t.id for t in tracks), strict=True))


async def _run_show_a(app: FastAPI, ids: dict[str, int], tokens: Mapping[str, str]) -> None:
    """What people do through the API: the shows, the crew, callers, queue, chat, requests,
    reports and a timeout."""
    onair = app.state.onair
    async with contextlib.AsyncExitStack() as stack:
        people = {
            name: await stack.enter_async_context(_client(app, token))
            for name, token in tokens.items()
        }
        host, listener = people["host"], people["listener"]
        ids["show_a"] = (await _ok(host.post("/api/v1/shows", json={"title": "A"}), 201))["id"]
        show_b = people["other_host"].post("/api/v1/shows", json={"title": "B"})
        ids["show_b"] = (await _ok(show_b, 201))["id"]
        a = f"/api/v1/shows/{ids['show_a']}"
        for name in ("cohost", *CREWMATES, "ivy"):
            await _ok(host.post(f"{a}/cohosts", json={"username": name}), 201)
            if name != "ivy":
                await _ok(people[name].post(f"{a}/cohosts/accept"))
        await _ok(host.put(f"{a}/cover", **_cover_upload()))
        await _ok(host.post(f"{a}/live"))
        for p in PERSONAS:
            for kind in ("waiting", "screened"):
                call = people[f"{kind}_{p}"].post(f"{a}/stage/call", json={"topic": "hi"})
                await _ok(call, 201)
        # The queue is filled with the studio off, so no song has started playing.
        await onair.stations.stop(ids["show_a"], ended=False)
        for p in PERSONAS:
            queued = host.post(f"{a}/queue", json={"track_id": ids[f"queued_{p}"]})
            ids[f"queue_item_{p}"] = (await _ok(queued, 201))["upcoming"][-1]["id"]
        ids["message"] = (await _ok(listener.post(f"{a}/chat", json={"text": "hi"}), 201))["id"]
        held = await _ok(listener.post(f"{a}/chat", json={"text": "you are rude"}), 201)
        assert held["held"] == "blocked_word"
        ids["held_message"] = held["id"]
        await _ok(people["troll"].post(f"{a}/chat", json={"text": "buy now"}), 201)
        asked = listener.post(f"{a}/requests", json={"track_id": ids["track_requested"]})
        ids["request"] = (await _ok(asked, 201))["id"]
        for p in PERSONAS:
            waiting = people[f"waiting_{p}"]
            asked = waiting.post(f"{a}/requests", json={"track_id": ids[f"requested_{p}"]})
            await _ok(asked, 201)
            # Each about someone else: settling a report settles the others on its target.
            report = {"target": "user", "target_id": ids[f"offender_{p}"], "reason": "spam"}
            filed = await _ok(waiting.post("/api/v1/reports", json=report), 201)
            ids[f"report_{p}"] = filed["id"]
        timeout = {"user_id": ids["troll"], "kind": "timeout", "minutes": 60}
        ids["sanction"] = (await _ok(host.post(f"{a}/sanctions", json=timeout), 201))["id"]
        shut_out = {"user_id": ids["outcast"], "kind": "banned", "reason": "harassment"}
        await _ok(host.post(f"{a}/sanctions", json=shut_out), 201)


async def _seed(root: Path) -> Seed:
    settings = world_settings(root)
    root.mkdir(parents=True)
    await upgrade_async(settings.resolved_database_url)
    clock = FakeClock()
    app = create_app(settings, clock)
    onair = app.state.onair
    ids, tokens = await _add_people(app, clock)
    ids.update(await _add_tracks(app, clock, root))
    await _run_show_a(app, ids, tokens)
    # Whom each persona takes off the show: the co-host steps down, the host and the
    # moderators each remove a crewmate of their own, the rest try on the co-host.
    for p in PERSONAS:
        ids[f"crewmate_{p}"] = ids.get(f"crewmate_{p}", ids["cohost"])
    async with onair.sessions() as db:
        # One message of the listener's for each persona to delete over the room socket.
        for p in PERSONAS:
            message = ChatMessage(
                show_id=ids["show_a"],
                user_id=ids["listener"],
                text=f"for {p} to delete",
                created_at=clock.now(),
            )
            db.add(message)
            await db.flush()
            ids[f"socket_message_{p}"] = message.id
        # For each persona a past show of the host's with a published replay: anyone finds
        # it, the host and moderators take it down.
        for p in PERSONAS:
            past = Show(
                host_id=ids["host"],
                title=f"Past show {p}",
                status=ShowStatus.ended,
                started_at=clock.now(),
                ended_at=clock.now(),
                created_at=clock.now(),
                updated_at=clock.now(),
            )
            db.add(past)
            await db.flush()
            replay = Replay(
                show_id=past.id,
                kind=ReplayKind.talk,
                state=ReplayState.ready,
                bytes=0,
                duration_s=0.0,
                chapters="[]",
                created_at=clock.now(),
                ready_at=clock.now(),
            )
            db.add(replay)
            await db.flush()
            ids[f"replay_{p}"] = replay.id
        # The host's restream destination (disabled, so going live does not push to it).
        destination = RestreamDestination(
            host_id=ids["host"],
            name="Nowhere",
            url="rtmp://127.0.0.1:9/live",
            stream_key="live_0123456789",
            enabled=False,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        db.add(destination)
        await db.flush()
        ids["destination_host"] = destination.id
        # Barred directly, so the sessions stay: a leftover cookie must not sign them in.
        for name in ("banned", "exile"):
            barred = await db.get(User, ids[name])
            assert barred is not None
            barred.banned_at = clock.now()
        for p in PERSONAS:
            sleeper = await db.get(User, ids[f"sleeper_{p}"])
            assert sleeper is not None
            sleeper.suspended_until = clock.now() + timedelta(days=1)
        await db.commit()
    await onair.stations.aclose()
    await onair.engine.dispose()
    return Seed(root, ids, tokens, await _sdp_offer())


def copy_world(seed: Seed, root: Path) -> None:
    copy_data_dir(seed.root, root)  # with its database, on either backend
    # A new cover upload deletes the old file, so each world points at its own copy.
    execute_sql(
        world_settings(root).resolved_database_url,
        "UPDATE shows SET cover_path = replace(cover_path, :old, :new)",
        old=str(seed.root),
        new=str(root),
    )


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return asyncio.run(_seed(tmp_path_factory.mktemp("seed") / "var"))


@dataclass
class World:
    app: FastAPI
    seed: Seed
    names: dict[str, int | str]

    def client(self, persona: str) -> httpx.AsyncClient:
        return _client(self.app, self.seed.tokens.get(persona))

    async def close(self) -> None:
        await self.app.state.onair.stations.aclose()
        await self.app.state.onair.engine.dispose()


async def open_world(seed: Seed, root: Path, *, live: bool) -> World:
    copy_world(seed, root)
    world = World(create_app(world_settings(root), FakeClock()), seed, dict(seed.ids))
    if live:
        show_a = seed.ids["show_a"]
        await world.app.state.onair.stations.start(show_a)
        # A started studio puts every caller in the queue: each of the crew screens theirs.
        for p in CREW_PERSONAS:
            async with world.client(p) as c:
                screened = seed.ids[f"screened_{p}"]
                await _ok(c.post(f"/api/v1/shows/{show_a}/stage/callers/{screened}/screen"))
    return world


class Worlds:
    """The world of the row being tried: built for its first case, closed at the next row's."""

    def __init__(self, seed: Seed, base: Path) -> None:
        self._seed, self._base = seed, base
        self._key: str | None = None
        self._world: World | None = None
        self.built = 0

    async def get(self, key: str, *, live: bool, prepare: Prepare | None = None) -> World:
        if self._world is not None and self._key == key:
            return self._world
        await self.close()
        self.built += 1
        self._world = await open_world(self._seed, self._base / f"w{self.built}", live=live)
        self._key = key
        if prepare is not None:
            await prepare(self._world)
        return self._world

    async def close(self) -> None:
        if self._world is not None:
            world, self._world, self._key = self._world, None, None
            await world.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worlds(seed: Seed, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worlds]:
    found = Worlds(seed, tmp_path_factory.mktemp("worlds"))
    yield found
    await found.close()


def _resolve(value: Any, names: Names, persona: str) -> Any:
    if isinstance(value, Ref):
        return names[value.name]
    if isinstance(value, Each):
        return names[f"{value.name}_{persona}"]
    if isinstance(value, dict):
        return {k: _resolve(v, names, persona) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, names, persona) for v in value]
    return value


def _path(row: Row, names: Names, persona: str) -> str:
    def fill(match: re.Match[str]) -> str:
        value = row.params.get(match[1], DEFAULT_PARAMS.get(match[1]))
        assert value is not None, f"{row.id}: no value for {{{match[1]}}}"
        return str(_resolve(value, names, persona))

    return re.sub(r"\{(\w+)\}", fill, row.path) + row.query


def _request(row: Row, world: World, persona: str) -> dict[str, Any]:
    if row.body is None:
        return {}
    if callable(row.body):
        built: dict[str, Any] = row.body(world, persona)
        return built
    return {"json": _resolve(row.body, world.names, persona)}


def outcome(status: int) -> str:
    return {401: "A", 403: "F", 404: "H"}.get(status, "+")


# --- the matrix -----------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("row", "persona"), _cases())
async def test_route(worlds: Worlds, row: Row, persona: str) -> None:
    world = await worlds.get(row.id, live=row.live, prepare=row.prepare)
    if row.stream:
        token = world.seed.tokens.get(persona)
        status = await _stream_status(world.app, _path(row, world.names, persona), token)
        assert outcome(status) == row.expected(persona), f"{row.id} as {persona}: {status}"
        return
    async with world.client(persona) as client:
        r = await client.request(
            row.method, _path(row, world.names, persona), **_request(row, world, persona)
        )
    assert r.status_code < 500, r.text
    want, got = row.expected(persona), outcome(r.status_code)
    allowed_anyway = want == "+" and got == "H"  # a 404 of the state, past the checks
    assert got == want or allowed_anyway, (
        f"{row.id} as {persona}: expected {CODES[want]}, got {r.status_code} {r.text[:200]}"
    )


async def _stream_status(app: FastAPI, path: str, token: str | None) -> int:
    """Opens a stream as a browser would and hangs up once it answers; returns the status
    (httpx's ASGI transport would wait for a body that never ends)."""
    answered = asyncio.Event()
    status = 0
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            answered.set()

    headers = [(b"host", b"testserver"), (b"accept", b"text/event-stream")]
    if token:
        headers.append((b"cookie", f"onair_session={token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), 10)
    return status


def test_every_operation_has_a_row_and_every_row_an_operation(tmp_path: Path) -> None:
    paths = create_app(Settings(data_dir=tmp_path)).openapi()["paths"]
    documented = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    in_matrix = {row.key for row in ROWS}
    assert documented - in_matrix == set(), "operations with no decision in the matrix"
    assert in_matrix - documented == set(), "rows for operations that no longer exist"
    assert len({row.id for row in ROWS}) == len(ROWS), "a row twice"
    for row in ROWS:
        assert len(row.expect.split()) == len(PERSONAS), row.id
        assert set(row.expect.split()) <= set(CODES), row.id
    cases = {(row.id, persona) for row in ROWS for persona in PERSONAS}
    assert set(BUGS) <= cases, "a known bug for a case that is gone"


# --- what each persona sees -----------------------------------------------------------------


@dataclass(frozen=True)
class View:
    path: str
    what: str
    sees: str
    """Y sees it, N does not, per persona."""
    shown: Callable[[Any], Any]
    live: bool = False


VIEWS = (
    # The studio would start playing the queue: it stays off here.
    View(f"{SHOW}/queue", "the songs still to come", "N N N N Y Y Y Y N", lambda b: b["upcoming"]),
    View(
        f"{SHOW}/stage",
        "the call-in queue and topics",
        "N N N N Y Y Y Y N",
        lambda b: "queue" in b,
        live=True,
    ),
    View(
        f"{SHOW}/cohosts",
        "ivy's open invitation",
        "N N N N Y N Y Y N",
        lambda b: [c for c in b if not c["accepted"]],
    ),
)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("view", "persona"),
    [pytest.param(view, who, id=f"{view.what} as {who}") for view in VIEWS for who in PERSONAS],
)
async def test_view(worlds: Worlds, view: View, persona: str) -> None:
    world = await worlds.get(f"views live={view.live}", live=view.live)
    path, what, sees, shown = view.path, view.what, view.sees, view.shown
    async with world.client(persona) as client:
        body = await _ok(client.get(path.replace("{show_id}", str(world.names["show_a"]))))
    want = sees.split()[PERSONAS.index(persona)] == "Y"
    assert bool(shown(body)) == want, f"{persona} {'should' if want else 'must not'} see {what}"


# --- one show's things through another show's routes -----------------------------------------


async def _lines_open(world: World) -> None:
    await _listen_in(world)
    await _host_line(world)


B = {"show_id": Ref("show_b")}

# Show A's message, held message, queued song, timeout, requested song, co-host, song request,
# studio line and listening session, aimed at through show B's routes by people who may act
# on B: nothing of A's is found there.
CROSS = (
    ("other_host", Row("DELETE", f"{SHOW}/chat/{{message_id}}", "", params=B)),
    (
        "other_host",
        Row(
            "POST",
            f"{SHOW}/chat/{{message_id}}/release",
            "",
            params={**B, "message_id": Ref("held_message")},
        ),
    ),
    ("other_host", Row("PUT", f"{SHOW}/chat/pin", "", {"message_id": Ref("message")}, B)),
    (
        "other_host",
        Row("DELETE", f"{SHOW}/queue/{{item_id}}", "", params={**B, "item_id": Each("queue_item")}),
    ),
    ("other_host", Row("DELETE", f"{SHOW}/sanctions/{{sanction_id}}", "", params=B)),
    (
        "other_host",
        Row(
            "POST",
            f"{SHOW}/requests/tracks/{{track_id}}/queue",
            "",
            params={**B, "track_id": Each("requested")},
        ),
    ),
    (
        "other_host",
        Row(
            "POST",
            f"{SHOW}/requests/tracks/{{track_id}}/dismiss",
            "",
            params={**B, "track_id": Each("requested")},
        ),
    ),
    (
        "other_host",
        Row("DELETE", f"{SHOW}/cohosts/{{user_id}}", "", params={**B, "user_id": Ref("cohost")}),
    ),
    ("listener", Row("DELETE", f"{SHOW}/requests/{{request_id}}", "", params=B)),
    (
        "other_host",
        Row(
            "DELETE",
            f"{SHOW}/studio/webrtc/{{session_id}}",
            "",
            params={**B, "session_id": Ref("line_host")},
        ),
    ),
    (
        "anonymous",
        Row(
            "DELETE",
            f"{SHOW}/whep/{{session_id}}",
            "",
            params={**B, "session_id": Each("listening")},
        ),
    ),
)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("persona", "row"),
    [pytest.param(who, row, id=f"{row.id} as {who}") for who, row in CROSS],
)
async def test_another_shows_things_are_not_found(worlds: Worlds, persona: str, row: Row) -> None:
    world = await worlds.get("cross", live=True, prepare=_lines_open)
    async with world.client(persona) as client:
        r = await client.request(
            row.method, _path(row, world.names, persona), **_request(row, world, persona)
        )
    assert r.status_code == 404, r.text


# --- the pages ------------------------------------------------------------------------------

#   +  200;  L  303 to the log-in page;  F  403
PAGES = (
    ("/shows/{show_id}/console", "L F F F + + + + L"),
    ("/shows/{show_id}/analytics", "L F F F + + F + L"),
    ("/moderation", "L F F F F F + + L"),
    ("/moderation/audit", "L F F F F F F + L"),
    ("/notifications", "L + + + + + + + L"),
    ("/embed/{show_id}", "+ + + + + + + + +"),  # the embeddable player: anyone, on any site
)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("path", "persona"),
    [pytest.param(p, who, id=f"{p} as {who}") for p, _ in PAGES for who in PERSONAS],
)
async def test_page(worlds: Worlds, path: str, persona: str) -> None:
    world = await worlds.get("pages", live=False)
    url = path.replace("{show_id}", str(world.names["show_a"]))
    async with world.client(persona) as client:
        r = await client.get(url, headers={"accept": "text/html"})
    want = dict(PAGES)[path].split()[PERSONAS.index(persona)]
    if want == "L":
        assert r.status_code == 303, r.text[:200]
        assert r.headers["location"] == f"/login?next={url}"
    else:
        assert r.status_code == {"+": 200, "F": 403}[want], r.text[:200]
        assert r.headers["content-type"].startswith("text/html")


# --- the room socket ------------------------------------------------------------------------

#   ack   chat.ack             gone  chat.deleted reaches the room
#   U     error unauthorized   F     error forbidden
#   quiet no error             pong  pong
#   X     the socket is closed on joining (4403), before any action
SOCKET = {
    #                anon list  outc othr  host  coh   mod   adm   ban
    "chat.send": "   U    ack   X    ack   ack   ack   ack   ack   U",
    "chat.delete": " U    gone  X    F     gone  gone  gone  gone  U",  # the listener's message
    "react": "       U    quiet X    quiet quiet quiet quiet quiet U",
    "ping": "        pong pong  X    pong  pong  pong  pong  pong  pong",
}


@pytest.fixture(scope="module")
def room(seed: Seed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Show A's room over a real server; starting it resumes the live show's studio."""
    root = tmp_path_factory.mktemp("room") / "var"
    copy_world(seed, root)
    with serve(create_app(world_settings(root), FakeClock())) as running:
        yield running


def _socket(server: RunningServer, seed: Seed, persona: str) -> ClientConnection:
    token = seed.tokens.get(persona)
    headers = {"Cookie": f"onair_session={token}"} if token else None
    url = f"{server.ws_url}/api/v1/rooms/{seed.ids['show_a']}/ws"
    return connect(url, additional_headers=headers)


def _events_until(
    ws: ClientConnection, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 5
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not done(seen) and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            seen += json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
    return seen


def _socket_outcome(events: list[dict[str, Any]], ref: str, message_id: int) -> str:
    for e in events:
        if e["type"] == "error" and e["ref"] == ref:
            return {"unauthorized": "U", "forbidden": "F"}.get(e["code"], e["code"])
        if e["type"] == "chat.ack" and e["ref"] == ref:
            return "ack"
        if e["type"] == "chat.deleted" and e["id"] == message_id:
            return "gone"
        if e["type"] == "pong" and e["ref"] == ref:
            return "pong"
    return "quiet"


@pytest.mark.parametrize(
    ("action", "persona"),
    [pytest.param(a, who, id=f"{a} as {who}") for a in SOCKET for who in PERSONAS],
)
def test_socket_action(room: RunningServer, seed: Seed, action: str, persona: str) -> None:
    message_id = seed.ids[f"socket_message_{persona}"]
    payload: dict[str, Any] = {
        "chat.send": {"text": f"hello from {persona}"},
        "chat.delete": {"id": message_id, "reason": "off topic"},
        "react": {"emoji": "👏"},
        "ping": {},
    }[action]
    want = SOCKET[action].split()[PERSONAS.index(persona)]
    with _socket(room, seed, persona) as ws:
        if want == "X":
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_REMOVED
            return
        welcome = _events_until(ws, bool)[0]
        assert welcome["type"] == "room.welcome"
        signed_in, crew = persona not in ("anonymous", "banned"), persona in CREW_PERSONAS
        assert welcome["me"] == ({"id": seed.ids[persona], "crew": crew} if signed_in else None)
        assert ("chat_held" in welcome) == crew  # held messages reach only the crew
        ws.send(json.dumps({"action": action, "ref": "act", **payload}))
        ws.send(json.dumps({"action": "ping", "ref": "sync"}))

        def done(seen: list[dict[str, Any]]) -> bool:
            synced = any(e["type"] == "pong" and e["ref"] == "sync" for e in seen)
            deleted = any(e["type"] == "chat.deleted" for e in seen)
            return synced and (want != "gone" or deleted)

        events = _events_until(ws, done)
    assert _socket_outcome(events, "act", message_id) == want, events
