"""The embeddable player and oEmbed, over HTTP: the show page's discovery link and share box,
the oEmbed answer (validated against the spec's required fields), its 404s and 501, and the
player page's escaping and framing headers."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from onair.app import create_app
from onair.clock import FakeClock
from onair.db.migrate import upgrade_async
from onair.settings import Settings
from tests.conftest import sign_up

HTML = {"accept": "text/html"}
TITLE = 'Late <b>Night</b> & "Jazz"'


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.iframes: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.links.append(dict(attrs))
        elif tag == "iframe":
            self.iframes.append(dict(attrs))


def _parse(text: str) -> _Links:
    parser = _Links()
    parser.feed(text)
    return parser


async def _show(client: httpx.AsyncClient) -> dict[str, Any]:
    await sign_up(client, "owl_host")
    r = await client.post("/api/v1/shows", json={"title": TITLE, "genre": "Jazz"})
    assert r.status_code == 201, r.text
    show: dict[str, Any] = r.json()
    return show


def _check_oembed(body: dict[str, Any]) -> None:
    """oEmbed 1.0, section 2.3.4: the fields every response and a "rich" one must carry."""
    assert body["version"] == "1.0"
    assert body["type"] == "rich"
    assert isinstance(body["html"], str) and body["html"]
    assert isinstance(body["width"], int) and body["width"] > 0
    assert isinstance(body["height"], int) and body["height"] > 0
    for optional in ("title", "author_name", "author_url", "provider_name", "provider_url"):
        assert isinstance(body[optional], str), optional
    assert isinstance(body["cache_age"], int)


async def test_the_show_page_offers_oembed_and_the_embed_code(client: httpx.AsyncClient) -> None:
    show = await _show(client)
    page = await client.get(f"/shows/{show['id']}", headers=HTML)
    assert page.status_code == 200
    parsed = _parse(page.text)
    [discovery] = [link for link in parsed.links if link.get("rel") == "alternate"]
    assert discovery["type"] == "application/json+oembed"
    assert discovery["title"] == TITLE
    href = urlsplit(str(discovery["href"]))
    assert href.path == "/oembed"
    query = parse_qs(href.query)
    assert query == {"url": [f"http://testserver/shows/{show['id']}"], "format": ["json"]}

    # The share box: the link, and the iframe as text to copy (escaped once, as HTML source).
    assert 'value="http://testserver/shows/' in page.text
    code = re.search(r'<textarea id="embed-code"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert code is not None
    snippet = html.unescape(code.group(1))
    [iframe] = _parse(snippet).iframes
    assert iframe["src"] == f"http://testserver/embed/{show['id']}"
    assert iframe["title"] == f"OnAir: {TITLE}"
    # The playlists for players like VLC are linked from the page.
    assert f'href="/listen/{show["id"]}.m3u"' in page.text
    assert f'href="/listen/{show["id"]}.pls"' in page.text

    # Following the discovery link gives the player for that show.
    r = await client.get(f"{href.path}?{href.query}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    _check_oembed(body)
    assert body["title"] == TITLE
    assert body["author_name"] == "owl_host"
    assert body["author_url"] == "http://testserver/users/owl_host"
    assert body["provider_name"] == "OnAir"
    [iframe] = _parse(body["html"]).iframes
    assert iframe["src"] == f"http://testserver/embed/{show['id']}"
    assert (iframe["width"], iframe["height"]) == (str(body["width"]), str(body["height"]))
    assert "<b>" not in body["html"]  # the title cannot become markup


async def test_oembed_refusals_and_sizes(client: httpx.AsyncClient) -> None:
    show = await _show(client)
    url = f"http://testserver/shows/{show['id']}"

    async def ask(**params: Any) -> httpx.Response:
        return await client.get("/oembed", params=params)

    small = (await ask(url=url, maxwidth=300, maxheight=120)).json()
    assert (small["width"], small["height"]) == (300, 120)
    assert (await ask(url=f"http://testserver/embed/{show['id']}")).status_code == 200
    # The spec: 501 for a format not offered; 404 for a URL with nothing to embed.
    xml = await ask(url=url, format="xml")
    assert xml.status_code == 501
    assert xml.json()["error"]["code"] == "not_implemented"
    for unknown in (
        "http://testserver/shows/999999",
        "http://elsewhere.example/shows/1",
        "http://testserver/users/owl_host",
        "ftp://testserver/shows/1",
        "not a url",
        "http://testserver:99999/shows/1",
    ):
        r = await ask(url=unknown)
        assert r.status_code == 404, (unknown, r.text)
        assert r.json()["error"]["code"] == "not_found"
    no_url = await client.get("/oembed", headers={"accept": "application/json"})
    assert no_url.status_code == 422


async def test_the_player_page_escapes_and_may_be_framed(client: httpx.AsyncClient) -> None:
    show = await _show(client)
    r = await client.get(f"/embed/{show['id']}", headers=HTML)
    assert r.status_code == 200
    assert "<b>Night</b>" not in r.text
    assert "Late &lt;b&gt;Night&lt;/b&gt; &amp; &#34;Jazz&#34;" in r.text
    policy = r.headers["content-security-policy"]
    assert "frame-ancestors *" in policy and "script-src 'self'" in policy
    assert "x-frame-options" not in r.headers
    assert 'src="/static/embed.js"' in r.text
    assert f'href="/listen/{show["id"]}.m3u"' in r.text
    # Not live yet: the button waits.
    assert re.search(r"<button[^>]*data-listen-button[^>]*disabled", r.text)
    missing = await client.get("/embed/999999", headers=HTML)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")


async def test_oembed_behind_a_proxy_uses_the_public_address(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", public_url="https://radio.example/")
    settings.data_dir.mkdir(parents=True)
    await upgrade_async(settings.resolved_database_url)
    app = create_app(settings, FakeClock())
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8000") as c:
            show = await _show(c)
            for link in (
                f"https://radio.example/shows/{show['id']}",
                f"http://10.0.0.5:8000/shows/{show['id']}",  # the address the proxy used
            ):
                body = (await c.get("/oembed", params={"url": link})).json()
                assert body["provider_url"] == "https://radio.example/"
                [iframe] = _parse(body["html"]).iframes
                assert iframe["src"] == f"https://radio.example/embed/{show['id']}"
            page = await c.get(f"/shows/{show['id']}", headers=HTML)
            assert (
                f'href="https://radio.example/oembed?url=https%3A//radio.example/shows/{show["id"]}'
                in page.text
            )
    finally:
        await app.state.onair.stations.aclose()
        await app.state.onair.engine.dispose()
