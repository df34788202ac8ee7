"""The playhead each live studio saves, for the node that may have to take its show over."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from onair.db.base import Base, UTCDateTime


class ShowPlayhead(Base):
    """Where a live show's program was a second or so ago: the song on air (a queue item, or
    an auto-DJ pick by track), how far into it, and its open play-log row."""

    __tablename__ = "show_playheads"

    show_id: Mapped[int] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), primary_key=True
    )
    queue_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("queue_items.id", ondelete="SET NULL")
    )
    track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id", ondelete="SET NULL"))
    position_s: Mapped[float] = mapped_column(Float, default=0.0)
    play_id: Mapped[int | None] = mapped_column(Integer)
    """The play-log row of the song on air (no foreign key: the play log is never deleted
    from, and the row is only ever read back by id)."""
    node_id: Mapped[str] = mapped_column(String(64))
    """The node whose studio saved it."""
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime())
