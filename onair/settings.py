"""Every setting OnAir reads, in one place: ONAIR_* environment variables with embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from onair.licensing.territories import parse_territories


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONAIR_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("var"),
        description="Where the SQLite database, the demo catalog and uploads live.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL; empty means SQLite in data_dir/onair.db.",
    )
    redis_url: str = Field(
        default="",
        description="Redis URL (redis://host:6379/0) shared by every node; empty means one node "
        "with the in-process bus.",
    )
    redis_prefix: str = Field(
        default="onair:",
        description="Prefix of every Redis key and channel of this deployment (several can share "
        "one Redis).",
    )
    node_id: str = Field(
        default="",
        description="This node's name among several; empty means a random one at each start.",
    )
    node_url: str = Field(
        default="",
        description="Where the other nodes reach this one (http://10.0.0.2:8000), for media of "
        "the studios it runs; empty means http://host:port.",
    )
    metrics_token: str = Field(
        default="",
        description="Bearer token that reads /metrics (Prometheus' authorization: credentials); "
        "empty: only callers on this host (loopback, not through a proxy) and signed-in admins.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    source_port: int = Field(
        default=8010,
        ge=0,
        le=65535,
        description="Port of the Icecast source ingest (DJ software broadcasting into a live "
        "show), on the same host as the web server; 0 turns it off.",
    )
    secret_cookie_name: str = "onair_session"
    session_days: int = 30
    cookie_secure: bool | None = Field(
        default=None,
        description="Force the Secure cookie flag; None sets it when the request came over HTTPS.",
    )
    demo_catalog_size: int = 40
    demo_seed: int = 1
    signup_per_hour: int = Field(
        default=20, description="Sign-ups allowed per client address per hour."
    )
    login_per_minute: int = 10
    max_upload_bytes: int = 5 * 1024 * 1024
    territories: str = Field(
        default="US",
        description="Comma-separated ISO 3166-1 alpha-2 codes the service runs in; the first is "
        "the default for listeners whose territory is unknown.",
    )
    territory_header: str = Field(
        default="",
        description="A request header set by a trusted CDN with the listener's country "
        "(e.g. CF-IPCountry); empty trusts no header.",
    )
    programming_rules: Literal["dmca", "strict", "none"] = Field(
        default="dmca",
        description="dmca: the US webcasting performance complement; strict: 2 per album and "
        "3 per artist in 3 hours; none.",
    )
    programming_rules_mode: Literal["warn", "block"] = Field(
        default="warn",
        description="warn: the console marks a song that breaks a rule; block: the queue "
        "refuses it.",
    )
    crossfade_s: float = Field(default=3.0, ge=0, le=12, description="Default crossfade.")
    target_lufs: float = Field(
        default=-16.0, description="Loudness every song is played at (EBU R128)."
    )
    max_on_air: int = Field(
        default=10, ge=1, le=50, description="Voices on air at once (host, co-hosts, callers)."
    )
    max_cohosts: int = Field(default=3, ge=0, le=10, description="Co-hosts per show.")
    hand_raises_per_minute: int = Field(
        default=3, ge=1, description="Call-ins one user may start per minute."
    )
    chat_burst: int = Field(default=3, ge=1, description="Chat messages one user may send at once.")
    chat_per_seconds: float = Field(
        default=2.0, gt=0, description="...refilled over this many seconds (3 per 2 s)."
    )
    reactions_per_10s: int = Field(default=20, ge=1, description="Reactions per user per 10 s.")
    requests_per_10min: int = Field(
        default=5, ge=1, description="Song requests per user per 10 min."
    )
    reports_per_hour: int = Field(
        default=10, ge=1, description="Reports one user may file per hour."
    )
    login_failures_allowed: int = Field(
        default=5, ge=1, description="Wrong passwords for one account before it is locked out."
    )
    login_lockout_minutes: int = Field(
        default=15, ge=1, description="How long an account stays locked after too many failures."
    )
    blocked_words: str = Field(
        default="",
        description="Comma-separated words and phrases; chat containing one is held for the crew.",
    )
    hold_links: bool = Field(
        default=True, description="Hold chat messages with links for the crew."
    )
    chat_min_account_age_minutes: int = Field(
        default=0, ge=0, description="Accounts younger than this may read chat but not write."
    )
    follows_per_hour: int = Field(
        default=60, ge=1, description="Follows and unfollows one user may make per hour."
    )
    notification_heartbeat_s: float = Field(
        default=15.0,
        gt=0,
        description="Seconds between the comments that keep a notification stream open.",
    )
    community_rules: str = Field(
        default="",
        description="The community rules shown until an admin edits them (empty: a short default).",
    )

    recently_played_hours: float = Field(
        default=6.0,
        gt=0,
        le=24 * 30,
        description="How far back the search's recently played list looks in shows still live "
        "(ended shows' setlists count at any age).",
    )
    analytics_sample_s: float = Field(
        default=5.0,
        ge=1,
        le=600,
        description="Shortest gap between two stored listener samples of a live show.",
    )
    analytics_heartbeat_s: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="A live show's listeners are stored at least this often, changed or not.",
    )
    royalties_service_name: str = Field(
        default="OnAir",
        min_length=1,
        max_length=255,
        description="NAME_OF_SERVICE in the SoundExchange report of use.",
    )
    royalties_transmission_category: str = Field(
        default="A",
        pattern=r"^[A-Z]$",
        description="TRANSMISSION_CATEGORY in the SoundExchange report of use (one letter).",
    )

    recordings_dir: Path | None = Field(
        default=None,
        description="Where live shows are recorded (FLAC segments); empty: data_dir/recordings.",
    )
    recording_segment_s: float = Field(
        default=300.0,
        ge=1,
        le=3600,
        description="Length of one recorded FLAC file: a crash loses at most the open one.",
    )

    restream_retry_first_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Restream: wait before retrying a failed RTMP destination; it doubles with "
        "each failure in a row.",
    )
    restream_retry_max_s: float = Field(
        default=60.0, ge=1, le=3600, description="Restream: the longest wait between two attempts."
    )
    restream_max_destinations: int = Field(
        default=5, ge=1, le=50, description="RTMP destinations one host may keep."
    )
    restream_video_fps: int = Field(
        default=10,
        ge=1,
        le=30,
        description="Restream: frame rate of the still title card sent as video (a keyframe "
        "every 2 s whatever the rate; more frames cost almost nothing).",
    )
    restream_ffmpeg: str = Field(
        default="ffmpeg",
        description="The ffmpeg binary that relays restreams over RTMP (PyAV muxes, ffmpeg sends).",
    )

    public_url: str = Field(
        default="",
        description="The site's public base URL (https://radio.example): absolute links in "
        "embeds, oEmbed and the Alexa skill's stream URLs; empty: taken from each request.",
    )
    alexa_skill_id: str = Field(
        default="",
        description="The Alexa skill's application id (amzn1.ask.skill.…); requests for any "
        "other skill are refused. Empty: refused all, unless alexa_verify is off.",
    )
    alexa_verify: bool = Field(
        default=True,
        description="Verify Alexa requests' signatures and timestamps; false only for local "
        "development (logged as a warning at start).",
    )
    alexa_stream: Literal["aac", "hls"] = Field(
        default="aac",
        description="The stream Alexa plays: the Icecast-style AAC stream or HLS.",
    )

    @field_validator("territories")
    @classmethod
    def _valid_territories(cls, value: str) -> str:
        return ",".join(parse_territories(value))

    @property
    def territory_list(self) -> tuple[str, ...]:
        """The service's territories, the default first."""
        return tuple(self.territories.split(","))

    @property
    def blocked_word_list(self) -> list[str]:
        return [w.strip().lower() for w in self.blocked_words.split(",") if w.strip()]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'onair.db').resolve()}"

    @property
    def demo_dir(self) -> Path:
        return self.data_dir / "demo"

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def recordings_path(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    @property
    def replays_path(self) -> Path:
        return self.data_dir / "replays"
