"""The play-log indexes "who is playing this now?" reads (migration 0006).

They are declared here, beside the queries that need them, rather than on `PlayLog` itself;
`onair.db.models` imports this module so the metadata (and the migration check) sees them.
"""

from __future__ import annotations

from sqlalchemy import Index, text

from onair.royalties.models import PlayLog

# The songs on air now: one open row per live show (two during a crossfade), so a few
# thousand entries at most however long the log grows. By track, then start (heard yet?) and
# show, so a lookup by the tracks a search found reads only the index. With the start in it,
# SQLite's planner also prefers it to ix_play_log_track_started, which covers every play.
PLAY_LOG_ON_AIR = Index(
    "ix_play_log_on_air",
    PlayLog.track_id,
    PlayLog.started_at,
    PlayLog.show_id,
    sqlite_where=text("ended_at IS NULL"),
    postgresql_where=text("ended_at IS NULL"),
)
# Every play of a track, latest last: recently played and the setlists of ended shows, read
# a few per track from its end. Without the end time in it, so that for the songs on air
# SQLite (even without ANALYZE statistics) picks ix_play_log_on_air, the covering one.
PLAY_LOG_BY_TRACK = Index(
    "ix_play_log_track_started", PlayLog.track_id, PlayLog.started_at, PlayLog.show_id
)
