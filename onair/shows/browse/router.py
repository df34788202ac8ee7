"""Hashtags: trending over the last 24 hours, and one tag's numbers (its shows are
`GET /api/v1/shows?hashtag=`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from onair.context import Ctx, Db
from onair.errors import ApiError
from onair.shows.browse.schemas import HashtagOut, TrendingTagOut
from onair.shows.service import HASHTAG

router = APIRouter(prefix="/api/v1/hashtags", tags=["hashtags"])


def normalised_tag(raw: str) -> str:
    tag = raw.strip().lstrip("#").lower()
    if not HASHTAG.match(tag):
        raise ApiError(422, "invalid", "a hashtag is letters, digits and underscores")
    return tag


@router.get(
    "/trending",
    response_model=list[TrendingTagOut],
    summary="Trending hashtags (last 24 hours)",
    description="Tags of the shows on air in the last 24 hours (live now, or started or ended "
    "in them): each show counts 1 plus the listener-minutes it had in the window. "
    "Recomputed at most once a minute.",
)
async def trending(
    db: Db, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> list[TrendingTagOut]:
    found = await ctx.trending.top(db, limit)
    return [TrendingTagOut.of(t) for t in found]


@router.get("/{tag}", response_model=HashtagOut, summary="A hashtag: its shows and trend")
async def hashtag(tag: Annotated[str, PathParam(max_length=65)], db: Db, ctx: Ctx) -> HashtagOut:
    summary = await ctx.trending.summary(db, normalised_tag(tag))
    return HashtagOut.of(summary)
