from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onair.catalog.models import Genre
from onair.db.base import Base
from onair.royalties.models import PlayLog


class ShowGenreSeconds(Base):
    """Seconds of music a show has played, per genre of the tracks played.

    A track in two genres counts for both. Kept up as plays progress (with the show's
    `played_seconds`), so a show's genre match is read from a few rows, never summed from
    the play log on a page view.
    """

    __tablename__ = "show_genre_seconds"

    show_id: Mapped[int] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), primary_key=True
    )
    genre_id: Mapped[int] = mapped_column(ForeignKey("genres.id"), primary_key=True, index=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)

    genre: Mapped[Genre] = relationship(lazy="joined")


# Trending hashtags sum the listener-seconds of the plays of the last 24 hours by show: with
# both in the index the window is read from it alone, not row by row from the table.
PLAY_LOG_LISTENING = Index(
    "ix_play_log_started_listening",
    PlayLog.started_at,
    PlayLog.show_id,
    PlayLog.listener_seconds,
)
