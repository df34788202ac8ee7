"""What the browse API answers with."""

from __future__ import annotations

from pydantic import BaseModel, Field

from onair.shows.browse.service import GenreMatch, HashtagSummary, TrendingTag, Verdict


class GenreMatchOut(BaseModel):
    """How well what a show actually played matches the genre it claims."""

    genre: str | None = Field(description="The genre the show claims.")
    share: float | None = Field(
        description="Share (0-1) of the played minutes whose track carries the claimed genre."
    )
    played_minutes: float
    top_genre: str | None = Field(description="The genre with the most played minutes.")
    top_share: float | None
    verdict: Verdict = Field(
        description="too_early (under 3 minutes played), matches (at least half), "
        "mostly_plays (another genre has at least half), off_genre, no_genre (none claimed)."
    )
    mostly_plays: str | None = Field(description="The genre a show far off its own mostly plays.")
    label: str = Field(description='What a show card says: "92 % Jazz", "Mostly plays Rock".')
    detail: str = Field(description="The same in a sentence, with the minutes played.")

    @classmethod
    def of(cls, match: GenreMatch) -> GenreMatchOut:
        return cls(
            genre=match.genre,
            share=round(match.share, 3) if match.share is not None else None,
            played_minutes=round(match.played_s / 60, 1),
            top_genre=match.top_genre,
            top_share=round(match.top_share, 3) if match.top_share is not None else None,
            verdict=match.verdict,
            mostly_plays=match.mostly_plays,
            label=match.label,
            detail=match.detail,
        )


class TrendingTagOut(BaseModel):
    tag: str
    shows: int = Field(description="Shows carrying the tag on air in the last 24 hours.")
    live: int = Field(description="Of them, live now.")
    listener_minutes: float = Field(description="Listener-minutes those shows had in the window.")
    score: float = Field(description="shows + listener_minutes: what the ranking sorts by.")

    @classmethod
    def of(cls, tag: TrendingTag) -> TrendingTagOut:
        return cls(
            tag=tag.tag,
            shows=tag.shows,
            live=tag.live,
            listener_minutes=tag.listener_minutes,
            score=tag.score,
        )


class HashtagOut(BaseModel):
    tag: str
    shows: int = Field(description="Every show that carries the tag.")
    live: int = Field(description="Shows carrying it live now.")
    trending: TrendingTagOut | None = Field(
        description="Its score over the last 24 hours; null when no show with it was on air."
    )

    @classmethod
    def of(cls, summary: HashtagSummary) -> HashtagOut:
        return cls(
            tag=summary.tag,
            shows=summary.shows,
            live=summary.live,
            trending=TrendingTagOut.of(summary.trending) if summary.trending else None,
        )
