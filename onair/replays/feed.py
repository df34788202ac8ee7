"""A host's podcast feed: RSS 2.0 with the iTunes tags and Podcasting 2.0's chapters tag,
written with feedgen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension  # type: ignore[import-untyped]
from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]
from feedgen.util import xml_elem  # type: ignore[import-untyped]

from onair.accounts.models import User
from onair.replays.models import Replay, ReplayKind
from onair.shows.models import Show

PODCAST_NS = "https://podcastindex.org/namespace/1.0"
CHAPTERS_TYPE = "application/json+chapters"


class _Podcasting20(BaseExtension):  # type: ignore[misc]
    def extend_ns(self) -> dict[str, str]:
        return {"podcast": PODCAST_NS}


class _Podcasting20Entry(BaseEntryExtension):  # type: ignore[misc]
    def __init__(self) -> None:
        self._chapters: str | None = None

    def chapters(self, url: str) -> None:
        self._chapters = url

    def extend_rss(self, item: Any) -> Any:
        if self._chapters:
            element = xml_elem(f"{{{PODCAST_NS}}}chapters", item)
            element.attrib["url"] = self._chapters
            element.attrib["type"] = CHAPTERS_TYPE
        return item


def episode_title(replay: Replay, show: Show) -> str:
    return f"{show.title} (talk)" if replay.kind is ReplayKind.talk else show.title


def podcast_xml(host: User, episodes: Sequence[tuple[Replay, Show]], base_url: str) -> bytes:
    """The feed of `host`'s ready replays; `base_url` ends with "/"."""
    feed = FeedGenerator()
    feed.load_extension("podcast")
    feed.register_extension("podcast2", _Podcasting20, _Podcasting20Entry, atom=False)
    page = f"{base_url}users/{host.username}"
    feed.title(f"{host.display_name} on OnAir")
    feed.link(href=page, rel="alternate")
    feed.link(href=f"{base_url}hosts/{host.id}/podcast.xml", rel="self")
    feed.description(f"Replays of {host.display_name}'s live shows on OnAir.")
    feed.language("en")
    feed.generator("OnAir")
    feed.podcast.itunes_author(host.display_name)
    feed.podcast.itunes_explicit("no")
    feed.podcast.itunes_summary(f"Replays of {host.display_name}'s live shows on OnAir.")
    feed.podcast.itunes_category("Music")
    feed.podcast.itunes_type("episodic")
    artwork = f"{base_url}hosts/{host.id}/podcast.jpg"
    feed.podcast.itunes_image(artwork)
    feed.image(url=artwork, title=f"{host.display_name} on OnAir", link=page)
    for replay, show in reversed(episodes):  # feedgen puts the last added first
        entry = feed.add_entry()
        audio = f"{base_url}replays/{replay.id}.mp3"
        entry.id(f"{base_url}replays/{replay.id}")
        entry.guid(f"{base_url}replays/{replay.id}", permalink=False)
        entry.title(episode_title(replay, show))
        entry.link(href=f"{base_url}shows/{show.id}")
        entry.description(show.description or f"A replay of {show.title}, live on OnAir.")
        entry.enclosure(audio, str(replay.bytes), "audio/mpeg")
        if replay.ready_at is not None:
            entry.published(replay.ready_at)
        entry.podcast.itunes_duration(round(replay.duration_s))
        entry.podcast.itunes_author(host.display_name)
        entry.podcast.itunes_explicit("no")
        entry.podcast2.chapters(f"{base_url}replays/{replay.id}/chapters.json")
    xml: bytes = feed.rss_str(pretty=True)
    return xml
