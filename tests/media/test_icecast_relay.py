"""A stock Icecast 2 server relays a live show: its listeners hear the program and its titles.

The show goes live playing a 440 Hz "song"; icecast2 (Debian's, from a generated config like
the one in docs/icecast-relay.md) pulls `/listen/{id}.mp3` with ICY metadata, and a client of the
relay, asking for metadata as players do, decodes 440 Hz and reads the song's StreamTitle.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest

from tests.live import RATE, band_db, serving_concert_a
from tests.media import decode, dominant_frequency, wait_for
from tests.server import RunningServer

pytestmark = pytest.mark.media

ICECAST = "/usr/bin/icecast2"
LOCAL_MOUNT = "/onair.mp3"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def relay_config(
    *, port: int, upstream_port: int, show_id: int, root: Path, run_as: tuple[str, str] | None
) -> str:
    """The docs' relay config, with the test's ports and its own folder for logs and the pid."""
    owner = (
        f"<changeowner><user>{escape(run_as[0])}</user><group>{escape(run_as[1])}</group>"
        "</changeowner>"
        if run_as
        else ""
    )
    return f"""<icecast>
  <location>OnAir relay (test)</location>
  <admin>relay@example.org</admin>
  <limits>
    <clients>100</clients>
    <sources>4</sources>
    <queue-size>524288</queue-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
    <burst-size>65535</burst-size>
  </limits>
  <authentication>
    <source-password>not-used-by-a-relay</source-password>
    <admin-user>admin</admin-user>
    <admin-password>change-me</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket>
    <port>{port}</port>
    <bind-address>127.0.0.1</bind-address>
  </listen-socket>
  <relay>
    <server>127.0.0.1</server>
    <port>{upstream_port}</port>
    <mount>/listen/{show_id}.mp3</mount>
    <local-mount>{LOCAL_MOUNT}</local-mount>
    <on-demand>0</on-demand>
    <relay-shoutcast-metadata>1</relay-shoutcast-metadata>
  </relay>
  <fileserve>1</fileserve>
  <paths>
    <basedir>/usr/share/icecast2</basedir>
    <logdir>{root}</logdir>
    <pidfile>{root}/icecast.pid</pidfile>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging>
    <accesslog>access.log</accesslog>
    <errorlog>error.log</errorlog>
    <loglevel>3</loglevel>
  </logging>
  <security>
    <chroot>0</chroot>
    {owner}
  </security>
</icecast>
"""


def _unprivileged() -> tuple[str, str] | None:
    """Icecast refuses to run as root unless told whom to become."""
    if os.geteuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_name, grp.getgrgid(nobody.pw_gid).gr_name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with serving_concert_a(tmp_path_factory.mktemp("relay")) as running:
        yield running


@dataclass
class Relayed:
    headers: httpx.Headers
    audio: bytes
    titles: list[str]
    status: dict[str, object]


async def _go_live(base: str) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post(
            "/api/v1/accounts/signup",
            json={"username": "relayhost", "email": "r@example.org", "password": "password-1"},
        )
        assert r.status_code == 201, r.text
        show = (
            await http.post("/api/v1/shows", json={"title": "Relay FM", "genre": "Test"})
        ).json()
        found = (await http.get("/api/v1/catalog/search", params={"q": "concert"})).json()
        queued = await http.post(
            f"/api/v1/shows/{show['id']}/queue", json={"track_id": found["tracks"][0]["id"]}
        )
        assert queued.status_code == 201, queued.text
        assert (await http.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
        return int(show["id"])


def _read_icy(url: str, seconds: float) -> tuple[httpx.Headers, bytes, list[str]]:
    """A player of the relay: asks for ICY metadata, splits audio from StreamTitle blocks."""
    audio = bytearray()
    titles: list[str] = []
    with (
        httpx.Client(timeout=15) as http,
        http.stream("GET", url, headers={"Icy-MetaData": "1"}) as r,
    ):
        assert r.status_code == 200, r.read()
        metaint = int(r.headers["icy-metaint"])
        buffer = bytearray()
        deadline = time.monotonic() + seconds
        for chunk in r.iter_raw():
            buffer += chunk
            while len(buffer) > metaint and len(buffer) >= metaint + 1 + buffer[metaint] * 16:
                length = buffer[metaint] * 16
                audio += buffer[:metaint]
                block = bytes(buffer[metaint + 1 : metaint + 1 + length]).rstrip(b"\0")
                if block:
                    titles.append(block.decode().split("StreamTitle='", 1)[1].split("';", 1)[0])
                del buffer[: metaint + 1 + length]
            if time.monotonic() > deadline:
                break
        return r.headers, bytes(audio), titles


@pytest.fixture(scope="module")
def relayed(server: RunningServer) -> Relayed:
    if not Path(ICECAST).exists():
        pytest.skip(f"{ICECAST} is not installed (Debian package icecast2)")
    show_id = asyncio.run(_go_live(server.url))
    run_as = _unprivileged()
    # The user icecast becomes writes its logs here, so not under pytest's root-only folder.
    root = Path(tempfile.mkdtemp(prefix="onair-icecast-"))
    os.chmod(root, 0o777)
    port = _free_port()
    config = root / "icecast.xml"
    config.write_text(
        relay_config(
            port=port, upstream_port=server.port, show_id=show_id, root=root, run_as=run_as
        )
    )
    process = subprocess.Popen(
        [ICECAST, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def relaying() -> bool:
            try:
                r = httpx.get(f"{base}/status-json.xsl", timeout=2)
            except httpx.HTTPError:
                return False
            return LOCAL_MOUNT in r.text

        if not wait_for(relaying, 15):
            log = root / "error.log"
            said = log.read_text()[-3000:] if log.exists() else "(no error.log)"
            pytest.fail(f"icecast2 never relayed the show:\n{said}")
        headers, audio, titles = _read_icy(f"{base}{LOCAL_MOUNT}", 6.0)
        status = httpx.get(f"{base}/status-json.xsl", timeout=5).json()
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(root, ignore_errors=True)
    return Relayed(headers, audio, titles, status)


def test_a_listener_of_the_relay_hears_the_show(relayed: Relayed) -> None:
    assert relayed.headers["content-type"] == "audio/mpeg"
    audio = decode(relayed.audio, "mp3")
    assert len(audio) > 3 * RATE, f"only {len(audio) / RATE:.1f} s relayed"
    tail = audio[-2 * RATE :]
    assert abs(dominant_frequency(tail) - 440.0) < 3.0
    assert band_db(tail, 440.0) > -25


def test_the_relay_carries_the_song_title(relayed: Relayed) -> None:
    assert relayed.titles, "no StreamTitle reached the relay's listener"
    assert relayed.titles[-1] == "Test Tones - Concert A"


def test_the_relay_names_the_show(relayed: Relayed) -> None:
    source = relayed.status["icestats"]["source"]  # type: ignore[index]
    assert isinstance(source, dict), source
    assert source["listenurl"].endswith(LOCAL_MOUNT)
    assert source["server_name"] == "Relay FM"
    assert source["genre"] == "Test"
    assert str(source["bitrate"]) == "128"
    assert relayed.headers.get("icy-name") == "Relay FM"
