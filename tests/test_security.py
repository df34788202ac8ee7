"""Browser-facing safety: cross-site requests, the session cookie, the Content-Security-Policy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import Headers

from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from onair.csrf import origin_allowed
from onair.integrations.embed.router import pages as embed_pages
from onair.moderation.pages import router as moderation_pages
from onair.shows.discovery.pages import router as discovery_pages
from onair.shows.follows.pages import router as follows_pages
from onair.web.rendering import TEMPLATES_DIR
from onair.web.router import router as web_router
from tests.conftest import sign_up

EVIL = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
SAME = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


async def _new_show(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> Any:
    return await client.post("/api/v1/shows", json={"title": "Night Shift"}, headers=headers)


# Cross-site request forgery


async def test_a_cross_site_post_with_the_session_cookie_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "victim")
    assert client.cookies.get("onair_session")
    r = await _new_show(client, EVIL)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "csrf"
    assert (await client.get("/api/v1/shows", params={"host": "victim"})).json() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"origin": "https://evil.example"},
        {"origin": "http://testserver.evil.example"},
        {"origin": "http://testserver:8080"},  # another port is another origin
        {"origin": "https://testserver"},  # and so is another scheme
        {"origin": "null"},  # sandboxed frames and file: pages
        {"origin": "http://radio.testserver", "sec-fetch-site": "same-site"},
        {"sec-fetch-site": "same-site"},
        # Only uvicorn (proxy_headers, from trusted proxies) may say the scheme is https.
        {"origin": "https://testserver", "x-forwarded-proto": "https"},
    ],
)
async def test_state_changes_from_another_origin_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await sign_up(client, "target")
    for method, path in (
        ("POST", "/api/v1/shows"),
        ("PATCH", "/api/v1/shows/1"),
        ("PUT", "/api/v1/shows/1"),
        ("DELETE", "/api/v1/shows/1"),
        ("POST", "/api/v1/accounts/logout"),
        ("POST", "/api/v1/accounts/login"),  # log-in CSRF signs a victim into our account
        ("POST", "/api/v1/shows/1/studio/webrtc"),  # a host's microphone is no embed
    ):
        r = await client.request(method, path, headers=headers, json={})
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "csrf"


async def test_same_origin_posts_work(client: httpx.AsyncClient) -> None:
    await sign_up(client, "host_a")
    assert (await _new_show(client, SAME)).status_code == 201
    same_origin_default_port = {"origin": "http://testserver:80"}
    assert (await _new_show(client, same_origin_default_port)).status_code == 201
    assert (await _new_show(client, {"sec-fetch-site": "same-origin"})).status_code == 201


async def test_posts_from_no_browser_work(client: httpx.AsyncClient) -> None:
    await sign_up(client, "scripted")
    assert (await _new_show(client)).status_code == 201
    # A user typing the address or following a bookmark: no site made the request.
    assert (await _new_show(client, {"sec-fetch-site": "none"})).status_code == 201


async def test_reads_from_other_sites_are_not_refused(client: httpx.AsyncClient) -> None:
    await sign_up(client, "reader")
    assert (await client.get("/api/v1/accounts/me", headers=EVIL)).status_code == 200
    assert (await client.get("/", headers=EVIL | HTML)).status_code == 200
    assert (await client.head("/api/v1/shows", headers=EVIL)).status_code != 403
    assert (await client.options("/api/v1/shows", headers=EVIL)).status_code != 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/shows/1/whep"),
        ("DELETE", "/api/v1/shows/1/whep/some-session"),
        ("POST", "/listen/night-shift.mp3"),
        ("PUT", "/listen/night-shift.mp3"),
        ("POST", "/integrations/alexa"),
    ],
)
async def test_clients_on_other_sites_may_listen_and_integrate(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    r = await client.request(
        method, path, headers=EVIL | {"content-type": "application/sdp"}, content=b"v=0\r\n"
    )
    assert r.status_code != 403, r.text


async def test_the_room_socket_handshake_is_checked_the_same_way() -> None:
    def allowed(headers: dict[str, str], scheme: str = "ws", host: str = "radio.example") -> bool:
        return origin_allowed(Headers(headers), scheme, host)

    assert allowed({})
    assert allowed({"origin": "http://radio.example"})
    assert allowed({"Origin": "http://RADIO.example:80"})
    assert allowed({"origin": "https://radio.example"}, "wss")
    assert allowed({"origin": "https://radio.example:8443"}, "wss", "radio.example:8443")
    assert allowed({"origin": "http://[::1]:8000"}, "ws", "[::1]:8000")
    assert not allowed({"origin": "http://radio.example"}, "wss")
    assert not allowed({"origin": "https://evil.example"})
    assert not allowed({"origin": "http://radio.example", "sec-fetch-site": "cross-site"})
    assert not allowed({"origin": "null"})
    assert not allowed({"origin": "http://radio.example"}, "ws", "")
    assert not allowed({"origin": "http://radio.example:99999"}, "ws", "radio.example:99999")
    assert not allowed({"origin": "http://user@radio.example"})
    # Lower-case names in a plain dict are enough.
    assert origin_allowed({"origin": "http://radio.example"}, "http", "radio.example")


# The session cookie


def _cookie_attributes(set_cookie: str) -> set[str]:
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


async def test_the_session_cookie_is_http_only_and_same_site_lax(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/api/v1/accounts/signup",
        json={"username": "cookie", "email": "cookie@example.org", "password": "password-x"},
    )
    on_sign_up = r.headers["set-cookie"]
    client.cookies.clear()
    r = await client.post(
        "/api/v1/accounts/login", json={"login": "cookie", "password": "password-x"}
    )
    on_log_in = r.headers["set-cookie"]
    on_log_out = (await client.post("/api/v1/accounts/logout")).headers["set-cookie"]
    for set_cookie in (on_sign_up, on_log_in, on_log_out):
        assert set_cookie.startswith("onair_session=")
        attributes = _cookie_attributes(set_cookie)
        assert {"httponly", "samesite=lax", "path=/"} <= attributes, set_cookie


# The Content-Security-Policy


def _directives(policy: str) -> dict[str, list[str]]:
    directives = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_no_inline_script(response: httpx.Response) -> None:
    policy = _directives(response.headers["content-security-policy"])
    sources = policy.get("script-src", policy.get("default-src"))
    assert sources, policy
    assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, sources
    assert "*" not in sources and "data:" not in sources, sources
    assert policy.get("object-src") == ["'none'"]


@pytest.fixture
async def jazz(app: FastAPI, clock: FakeClock) -> str:
    async with app.state.onair.sessions() as db:
        await CatalogWriter(db, clock).write(
            [
                TrackInput(
                    source="test",
                    source_key="csp:1",
                    title="Harbour Lights",
                    artists=("The Testers",),
                    genres=("Jazz",),
                    duration_s=185.0,
                )
            ]
        )
        await db.commit()
    return "jazz"


PAGE_ROUTERS = (web_router, moderation_pages, follows_pages, discovery_pages, embed_pages)
# Routes of those routers that answer something other than a page.
_NOT_PAGES = ("/api/", "/listen/", "/calendar/", "/static", "/integrations/")
_NOT_PAGE_SUFFIXES = (".ics", ".m3u", ".pls", ".m3u8", ".mp3", ".aac", ".json")


async def test_every_page_forbids_inline_scripts(
    app: FastAPI, client: httpx.AsyncClient, jazz: str
) -> None:
    await sign_up(client, "host_csp")
    show = (await _new_show(client)).json()
    await client.patch(f"/api/v1/shows/{show['id']}", json={"hashtags": ["nightshift"]})
    found = (await client.get("/api/v1/catalog/search?q=harbour")).json()["tracks"][0]
    artist = (await client.get("/api/v1/search?q=testers")).json()["artists"][0]
    values = {
        "show_id": str(show["id"]),
        "username": "host_csp",
        "slug": jazz,
        "tag": "nightshift",
        "track_id": str(found["id"]),
        "artist_id": str(artist["id"]),
    }
    # Every page of the app, whichever feature's pages router it lives in.
    pages = [
        route.path
        for router in PAGE_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        and "GET" in route.methods
        and not route.path.startswith(_NOT_PAGES)
        and not route.path.endswith(_NOT_PAGE_SUFFIXES)
    ]
    assert {"/", "/notifications", "/moderation", "/tracks/{track_id}"} <= set(pages), pages
    urls = []
    for path in pages:
        params = re.findall(r"\{(\w+)\}", path)
        assert set(params) <= set(values), f"give {path} a value for {params} in this test"
        urls.append(re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous:
        rendered = set()
        for url in [*urls, "/search?q=harbour", "/no-such-page", "/shows/999999"]:
            for visitor in (client, anonymous):
                r = await visitor.get(url, headers=HTML)
                if r.is_redirect:
                    continue
                if r.status_code == 200:
                    rendered.add(url)
                assert r.headers["content-type"].startswith("text/html"), (url, r.status_code)
                assert_no_inline_script(r)
                assert r.headers["x-content-type-options"] == "nosniff"
                # Only the embeddable player may be framed, by any site; no other page at all.
                framing = "*" if url.startswith("/embed/") else "'none'"
                policy = _directives(r.headers["content-security-policy"])
                assert policy["frame-ancestors"] == [framing], (url, policy)
    # Moderators' pages answer these two visitors with an HTML refusal (checked above too).
    staff_only = {"/moderation", "/moderation/audit"}
    assert rendered == (set(urls) - staff_only) | {"/search?q=harbour"}


# Templates carry no inline script, handler or style the policy would have to allow.

_TAG = re.compile(r"<([a-zA-Z][\w-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>", re.S)
_EVENT_HANDLER = re.compile(r"(?:^|\s)on[a-z]+\s*=", re.I)
_STYLE_ATTRIBUTE = re.compile(r"(?:^|\s)style\s*=", re.I)
_SRC = re.compile(r"(?:^|\s)src\s*=", re.I)
# Data islands (`<script type="application/json">`) are never run, so the policy needs no
# exception for them; anything else inline would be.
_DATA_TYPE = re.compile(r"""(?:^|\s)type\s*=\s*["']?application/(?:ld\+)?json""", re.I)

TEMPLATES = sorted(Path(TEMPLATES_DIR).glob("**/*.html"))


def test_there_are_templates_to_scan() -> None:
    assert len(TEMPLATES) >= 10


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_inline_script_handler_or_style(template: Path) -> None:
    text = template.read_text()
    problems = []
    for match in _TAG.finditer(text):
        name, attributes = match.group(1).lower(), match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        if name == "script" and not _SRC.search(attributes) and not _DATA_TYPE.search(attributes):
            problems.append(f"line {line}: inline <script>")
        if name == "style":
            problems.append(f"line {line}: inline <style>")
        if _EVENT_HANDLER.search(attributes):
            problems.append(f"line {line}: event handler attribute in <{name}>")
        if _STYLE_ATTRIBUTE.search(attributes):
            problems.append(f"line {line}: style attribute in <{name}>")
    if re.search(r"javascript:", text, re.I):
        problems.append("a javascript: URL")
    assert not problems, f"{template.name}: {problems}"


def test_the_scan_catches_what_it_looks_for(tmp_path: Path) -> None:
    samples = [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        "<button\n  class=\"b\" onclick='go()'>",
        '<p style="color: red">',
        "<style>p { color: red }</style>",
    ]
    for sample in samples:
        page = tmp_path / "sample.html"
        page.write_text(f"{{% block body %}}{sample}{{% endblock %}}")
        with pytest.raises(AssertionError):
            test_templates_have_no_inline_script_handler_or_style(page)
    page = tmp_path / "fine.html"
    page.write_text(
        '<script type="module" src="/static/app.js"></script>'
        '<script type="application/json" id="d">{{ data|tojson }}</script>'
        '<a href="/x" data-onair="1" class="button">x</a><img src="/a.png" alt="">'
    )
    test_templates_have_no_inline_script_handler_or_style(page)
