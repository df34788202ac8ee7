"""A small world for the search tests, made through the services a user's actions go through:
accounts, shows (create, edit, go live, end), the catalog writer and the play log as the
studio writes it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.accounts.service import create_user
from onair.catalog.models import Track
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from onair.royalties import service as play_log
from onair.shows import service as shows
from onair.shows.models import Show


@dataclass
class World:
    db: AsyncSession
    clock: FakeClock = field(default_factory=FakeClock)
    users: dict[str, User] = field(default_factory=dict)

    async def user(self, username: str, display_name: str | None = None) -> User:
        if username not in self.users:
            self.users[username] = await create_user(
                self.db,
                self.clock,
                username=username,
                email=f"{username}@example.org",
                password="correct horse",
                display_name=display_name,
            )
        return self.users[username]

    async def show(
        self,
        host: str,
        title: str,
        *,
        description: str = "",
        hashtags: Sequence[str] = (),
        genre: str | None = None,
    ) -> Show:
        fields = shows.ShowFields(
            title=title, description=description, hashtags=list(hashtags), genre=genre
        )
        show = await shows.create_show(self.db, self.clock, await self.user(host), fields)
        await self.db.commit()
        return show

    async def live(self, show: Show) -> Show:
        await shows.go_live(self.db, self.clock, show)
        await self.db.commit()
        return show

    async def end(self, show: Show) -> Show:
        await shows.end_show(self.db, self.clock, show)
        await self.db.commit()
        return show

    async def tracks(self, *items: tuple[str, str]) -> list[Track]:
        """(title, artist) pairs, written as an import would."""
        inputs = [
            TrackInput(
                source="test",
                source_key=f"test:{title}:{artist}",
                title=title,
                artists=(artist,),
                genres=("Pop",),
                duration_s=200.0,
                audio_path=f"/nonexistent/{title}.mp3",
            )
            for title, artist in items
        ]
        written = await CatalogWriter(self.db, self.clock).write(inputs)
        await self.db.commit()
        return written

    async def play(self, show: Show, track: Track, *, ago: float = 0.0) -> int:
        """The studio starts `track` in `show`, heard `ago` seconds before now."""
        return await play_log.play_started(
            self.db,
            show_id=show.id,
            track_id=track.id,
            queue_item_id=None,
            started_at=self.clock.now() - timedelta(seconds=ago),
            listeners=3,
            auto_dj=False,
        )

    async def stop(self, play_id: int, *, ago: float = 0.0) -> None:
        await play_log.play_progress(
            self.db,
            play_id,
            seconds_played=60.0,
            listener_seconds=180.0,
            peak_listeners=3,
            ended_at=self.clock.now() - timedelta(seconds=ago),
        )
