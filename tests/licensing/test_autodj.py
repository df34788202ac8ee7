"""The auto-DJ's candidates and picks: licensed songs only, none explicit for a clean show, and
picks that keep the programming rules when some do."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from onair.catalog.service import CatalogWriter
from onair.clock import FakeClock
from onair.licensing.rules import RULE_SETS, Slot, Song, breaches
from onair.licensing.service import Licensing
from onair.live.autodj import AutoDj, Window, load_candidates
from onair.shows.models import Show, ShowStatus
from onair.studio.deck import DeckTrack
from tests.licensing.conftest import CATALOG


async def _candidates(
    app: FastAPI, clock: FakeClock, tmp_path: Path, *, clean: bool
) -> tuple[list[str], dict[int, Window]]:
    # Real files, or the auto-DJ leaves them out.
    songs = []
    for item in CATALOG:
        path = tmp_path / f"{item.source_key.replace(':', '_')}.mp3"
        path.write_bytes(b"")
        songs.append(item.__class__(**{**item.__dict__, "audio_path": str(path)}))
    onair = app.state.onair
    async with onair.sessions() as db:
        await CatalogWriter(db, clock).write(songs)
        await db.commit()
        show = Show(host_id=1, title="t", status=ShowStatus.live, clean=clean)
        windows: dict[int, Window] = {}
        found = await load_candidates(
            db,
            None,
            licensing=Licensing.of(onair.settings, clock),
            show=show,
            windows=windows,
        )
    return sorted(t.title for t in found), windows


async def test_only_songs_licensed_everywhere_now_are_candidates(
    app: FastAPI, clock: FakeClock, tmp_path: Path
) -> None:
    titles, windows = await _candidates(app, clock, tmp_path, clean=False)
    assert "US Only" not in titles  # the service is heard in Canada too
    assert "From March" not in titles and "Gone Last Year" not in titles
    assert {"Anywhere", "North America", "Until Jan 10", "Rude Words"} <= set(titles)
    # A candidate whose licence lapses mid-show stops being picked then.
    until = next(w for w in windows.values() if w.closes is not None)
    assert until.covers(clock.now())
    assert not until.covers(until.closes)  # type: ignore[arg-type]


async def test_a_clean_show_has_no_explicit_candidates(
    app: FastAPI, clock: FakeClock, tmp_path: Path
) -> None:
    titles, _ = await _candidates(app, clock, tmp_path, clean=True)
    assert "Rude Words" not in titles and "Anywhere" in titles


def _deck(track_id: int) -> DeckTrack:
    return DeckTrack(None, track_id, Path(f"/{track_id}.mp3"), f"T{track_id}", ("A",), None, 200)


def test_picks_that_break_a_rule_give_way_to_those_that_keep_them() -> None:
    rules = RULE_SETS["dmca"]
    now = FakeClock().now()
    album = {i: Song(i, 1, "One Album", ((i, f"A{i}"),)) for i in (1, 2, 3, 4)}
    other = Song(9, None, None, ((9, "Other"),))
    songs = {**album, 9: other}
    heard = [Slot(album[1], now - timedelta(minutes=8)), Slot(album[2], now - timedelta(minutes=4))]

    def keeps(track: DeckTrack) -> bool:
        return not breaches(rules, [*heard, Slot(songs[track.track_id], now)], len(heard))

    tracks = [_deck(3), _deck(4), _deck(9)]

    def picks(**kw: object) -> set[int]:
        chosen = (AutoDj(tracks, rng=random.Random(seed), **kw).pick() for seed in range(20))  # type: ignore[arg-type]
        return {t.track_id for t in chosen if t is not None}

    assert picks() == {3, 4, 9}  # left alone it would play a third from the album in a row
    assert picks(prefer=keeps) == {9}
    # When nothing keeps the rules, the music still plays.
    stuck = AutoDj([_deck(3), _deck(4)], rng=random.Random(7), prefer=keeps)
    assert stuck.pick() is not None
    # Licences are asked of every pick: a lapsed candidate is dropped for good.
    lapsed = AutoDj([_deck(3), _deck(9)], allowed=lambda t: t.track_id != 3)
    assert {lapsed.pick().track_id for _ in range(5)} == {9}  # type: ignore[union-attr]
