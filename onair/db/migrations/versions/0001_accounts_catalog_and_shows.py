"""accounts, catalog and shows

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "albums",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("artist_name", sa.String(length=255), nullable=False),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("source_key", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_albums")),
        sa.UniqueConstraint("source_key", name=op.f("uq_albums_source_key")),
    )
    op.create_table(
        "artists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artists")),
        sa.UniqueConstraint("name", name=op.f("uq_artists_name")),
    )
    op.create_table(
        "genres",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_genres")),
        sa.UniqueConstraint("name", name=op.f("uq_genres_name")),
        sa.UniqueConstraint("slug", name=op.f("uq_genres_slug")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum("listener", "moderator", "admin", name="role", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "shows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("genre_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("scheduled", "live", "ended", name="showstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("scheduled_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cover_path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["genre_id"], ["genres.id"], name=op.f("fk_shows_genre_id_genres")),
        sa.ForeignKeyConstraint(["host_id"], ["users.id"], name=op.f("fk_shows_host_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shows")),
    )
    with op.batch_alter_table("shows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shows_ended_at"), ["ended_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_shows_genre_id"), ["genre_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_shows_host_id"), ["host_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_shows_scheduled_start"), ["scheduled_start"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_shows_status"), ["status"], unique=False)

    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("album_id", sa.Integer(), nullable=True),
        sa.Column("track_number", sa.Integer(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("isrc", sa.String(length=12), nullable=True),
        sa.Column("explicit", sa.Boolean(), nullable=False),
        sa.Column("loudness_lufs", sa.Float(), nullable=True),
        sa.Column("audio_path", sa.Text(), nullable=True),
        sa.Column("artwork_path", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_key", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["album_id"], ["albums.id"], name=op.f("fk_tracks_album_id_albums")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracks")),
        sa.UniqueConstraint("source_key", name=op.f("uq_tracks_source_key")),
    )
    with op.batch_alter_table("tracks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracks_album_id"), ["album_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tracks_isrc"), ["isrc"], unique=False)

    op.create_table(
        "licences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("territories", sa.String(length=1024), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("on_demand_allowed", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("licence_url", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["tracks.id"],
            name=op.f("fk_licences_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licences")),
        sa.UniqueConstraint("track_id", name=op.f("uq_licences_track_id")),
    )
    op.create_table(
        "queue_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "playing",
                "played",
                "skipped",
                name="queuestate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("added_by", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.id"], name=op.f("fk_queue_items_added_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["show_id"], ["shows.id"], name=op.f("fk_queue_items_show_id_shows"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["track_id"], ["tracks.id"], name=op.f("fk_queue_items_track_id_tracks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_items")),
        sa.UniqueConstraint("show_id", "position", name=op.f("uq_queue_items_show_id")),
    )
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_items_show_id"), ["show_id"], unique=False)

    op.create_table(
        "show_hashtags",
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["show_id"],
            ["shows.id"],
            name=op.f("fk_show_hashtags_show_id_shows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("show_id", "tag", name=op.f("pk_show_hashtags")),
    )
    with op.batch_alter_table("show_hashtags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_show_hashtags_tag"), ["tag"], unique=False)

    op.create_table(
        "track_artists",
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("artist_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["artist_id"], ["artists.id"], name=op.f("fk_track_artists_artist_id_artists")
        ),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["tracks.id"],
            name=op.f("fk_track_artists_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("track_id", "artist_id", name=op.f("pk_track_artists")),
    )
    with op.batch_alter_table("track_artists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_track_artists_artist_id"), ["artist_id"], unique=False)

    op.create_table(
        "track_genres",
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("genre_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["genre_id"], ["genres.id"], name=op.f("fk_track_genres_genre_id_genres")
        ),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["tracks.id"],
            name=op.f("fk_track_genres_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("track_id", "genre_id", name=op.f("pk_track_genres")),
    )
    with op.batch_alter_table("track_genres", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_track_genres_genre_id"), ["genre_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("track_genres", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_track_genres_genre_id"))

    op.drop_table("track_genres")
    with op.batch_alter_table("track_artists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_track_artists_artist_id"))

    op.drop_table("track_artists")
    with op.batch_alter_table("show_hashtags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_show_hashtags_tag"))

    op.drop_table("show_hashtags")
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queue_items_show_id"))

    op.drop_table("queue_items")
    op.drop_table("licences")
    with op.batch_alter_table("tracks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracks_isrc"))
        batch_op.drop_index(batch_op.f("ix_tracks_album_id"))

    op.drop_table("tracks")
    with op.batch_alter_table("shows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shows_status"))
        batch_op.drop_index(batch_op.f("ix_shows_scheduled_start"))
        batch_op.drop_index(batch_op.f("ix_shows_host_id"))
        batch_op.drop_index(batch_op.f("ix_shows_genre_id"))
        batch_op.drop_index(batch_op.f("ix_shows_ended_at"))

    op.drop_table("shows")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))

    op.drop_table("sessions")
    op.drop_table("users")
    op.drop_table("genres")
    op.drop_table("artists")
    op.drop_table("albums")
