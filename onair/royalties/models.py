"""The play log (every song played, for whom and how long) and the audience over time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from onair.db.base import Base, UTCDateTime


class PlayLog(Base):
    """One play of one track in one show, from when it was heard until it stopped."""

    __tablename__ = "play_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    show_id: Mapped[int] = mapped_column(ForeignKey("shows.id"), index=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id"), index=True)
    queue_item_id: Mapped[int | None] = mapped_column(ForeignKey("queue_items.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    seconds_played: Mapped[float] = mapped_column(Float, default=0.0)
    listeners_at_start: Mapped[int] = mapped_column(Integer, default=0)
    listener_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    peak_listeners: Mapped[int] = mapped_column(Integer, default=0)
    performances: Mapped[int] = mapped_column(Integer, default=0)
    """Listeners who heard any of this play: those there at its start plus those who joined
    while it played (a royalty report's "actual total performances")."""
    auto_dj: Mapped[bool] = mapped_column(Boolean, default=False)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    end_reason: Mapped[str | None] = mapped_column(String(64))


class ListenerSample(Base):
    """A show's listeners by transport from `at` until the next sample (a step function).

    The station writes one when the counts change (at most every few seconds), on a new
    peak, at least once a minute while live, and a last one of zeros when the show stops.
    `reactions` are those sent since the previous sample.
    """

    __tablename__ = "listener_samples"
    __table_args__ = (Index("ix_listener_samples_show_id_at", "show_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    show_id: Mapped[int] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    webrtc: Mapped[int] = mapped_column(Integer, default=0)
    hls: Mapped[int] = mapped_column(Integer, default=0)
    stream: Mapped[int] = mapped_column(Integer, default=0)
    smart_speaker: Mapped[int] = mapped_column(Integer, default=0)
    reactions: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def total(self) -> int:
        return self.webrtc + self.hls + self.stream + self.smart_speaker
