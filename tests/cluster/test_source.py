"""DJ software broadcasting by Icecast SOURCE into a node that does not run the show's studio:
the node forwards it to the one that does, and listeners hear it through any node."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cluster import host, new_show, tone_songs, world
from tests.cluster.test_cluster import RATE, listen
from tests.media import decode, dominant_frequency

pytestmark = [pytest.mark.postgres, pytest.mark.media]

TONE_HZ = 550.0
"""The DJ's tone: none of the catalog's songs (440, 660 Hz, the chirp) holds it."""


def ffmpeg_source(url: str, seconds: float = 40.0) -> list[str]:
    return [
        *("ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i"),
        f"sine=frequency={TONE_HZ:g}:sample_rate=44100:duration={seconds}",
        *("-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"),
        *("-content_type", "audio/mpeg", "-f", "mp3", url),
    ]


def test_a_source_into_a_node_without_the_studio_is_heard(
    tmp_path: Path, postgres_url: str
) -> None:
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(world(tmp_path, postgres_url, tone_songs(tmp_path)))
        cluster.sources = True
        cluster.start("a", "b")
        dj = stack.enter_context(host(cluster.nodes["a"].url, "dj_tone"))
        show_id = new_show(dj, "Live Set", "concert")
        assert dj.post(f"/api/v1/shows/{show_id}/live").status_code == 200
        owner = cluster.wait_owner(show_id)
        relay = cluster.nodes["b" if owner == "a" else "a"]
        key = dj.get(f"/api/v1/shows/{show_id}/source").json()["key"]

        url = f"icecast://source:{key}@127.0.0.1:{relay.source_port}/{show_id}"
        process = subprocess.Popen(
            ffmpeg_source(url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        stack.callback(_end, process)
        deadline = time.monotonic() + 15
        while dj.get(f"/api/v1/shows/{show_id}/studio").json()["source"] is None:
            if process.poll() is not None or time.monotonic() > deadline:
                err = _end(process)
                raise AssertionError(f"the source never reached the studio: {err}")
            time.sleep(0.1)
        time.sleep(1.5)  # the source's buffer fills and it takes over from the song

        # The title, sent to the same node, reaches the source where the studio runs.
        r = httpx.get(
            f"http://127.0.0.1:{relay.source_port}/admin/metadata",
            params={"mode": "updinfo", "mount": f"/{show_id}", "song": "DJ Tone - Five Fifty"},
            auth=("source", key),
            timeout=10,
        )
        assert r.status_code == 200, r.text

        heard = listen(f"{relay.url}/listen/{show_id}.mp3", 4)
        sound = decode(bytes(heard.audio), "mp3")
        assert len(sound) > 2 * RATE
        assert abs(dominant_frequency(sound[-RATE:]) - TONE_HZ) < 5
        assert "DJ Tone - Five Fifty" in heard.titles, heard.titles

        # The DJ hangs up: the studio's source goes, and the show plays on.
        _end(process)
        deadline = time.monotonic() + 10
        while dj.get(f"/api/v1/shows/{show_id}/studio").json()["source"] is not None:
            assert time.monotonic() < deadline, "the source stayed connected"
            time.sleep(0.1)


def _end(process: subprocess.Popen[bytes]) -> str:
    """Stops the DJ's ffmpeg; what it said on stderr."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    if process.stderr is None or process.stderr.closed:
        process.wait(10)
        return ""
    _, err = process.communicate(timeout=10)
    return err.decode(errors="replace")
