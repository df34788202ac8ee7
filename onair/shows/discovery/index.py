"""What discovery keeps findable: shows, their hosts and their hashtags, in indexes of the
catalog's search engine (`onair.catalog.search`), written as shows are created and changed.

Shows are filed in bands by status (live, upcoming, past), so a search asks each band for its
best few and live shows come first however many ended shows match better. Nothing of a show's
queue is ever indexed: songs still to come are never announced (see `playing.py` for what has
been heard).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.catalog import search
from onair.catalog.search import Document, SearchIndex, document
from onair.shows.models import Show, ShowStatus

# A word in a show's title counts most, then its hashtags, its host's name, its description.
SHOWS = SearchIndex(
    "show_search",
    ("title", "hashtags", "host", "description"),
    {"title": 10, "hashtags": 6, "host": 4, "description": 1},
    "show_search_terms",
    "show_search_term_variants",
    bands=3,
)
HOSTS = SearchIndex(
    "host_search",
    ("name", "username"),
    {"name": 10, "username": 8},
    "host_search_terms",
    "host_search_term_variants",
)
HASHTAGS = SearchIndex(
    "hashtag_search", ("tag",), {"tag": 10}, "hashtag_search_terms", "hashtag_search_term_variants"
)

# The band of each status: searched in this order.
BANDS = {ShowStatus.live: 0, ShowStatus.scheduled: 1, ShowStatus.ended: 2}


def show_document(show: Show) -> Document:
    return document(
        show.id,
        show.title,
        show.hashtags,
        [show.host.display_name, show.host.username],
        show.description,
        band=BANDS[show.status],
    )


def host_document(user: User) -> Document:
    return document(user.id, user.display_name, user.username)


async def index_show(db: AsyncSession, show: Show) -> None:
    """Files `show` (flushed, host loaded) under its status, its host and its hashtags.

    Called whenever a show is created, edited, goes live or ends; the caller commits."""
    await search.write_documents(db, [show_document(show)], index=SHOWS)
    await search.write_documents(db, [host_document(show.host)], index=HOSTS)
    await index_hashtags(db, show.hashtags)


async def index_hashtags(db: AsyncSession, tags: Sequence[str]) -> None:
    """Makes the hashtags findable; each is indexed once, whatever number of shows carry it."""
    if not tags:
        return
    known = set(
        await db.scalars(
            text("SELECT tag FROM hashtag_search_tags WHERE tag IN :tags").bindparams(
                bindparam("tags", expanding=True)
            ),
            {"tags": list(tags)},
        )
    )
    new = [t for t in tags if t not in known]
    if not new:
        return
    await db.execute(
        text("INSERT INTO hashtag_search_tags (tag) VALUES (:tag)"), [{"tag": t} for t in new]
    )
    rows = await db.execute(
        text("SELECT id, tag FROM hashtag_search_tags WHERE tag IN :tags").bindparams(
            bindparam("tags", expanding=True)
        ),
        {"tags": new},
    )
    await search.write_documents(
        db, [document(tag_id, tag) for tag_id, tag in rows], replace=False, index=HASHTAGS
    )


async def rebuild_discovery(db: AsyncSession, *, batch: int = 2000) -> int:
    """Indexes every show, host and hashtag from scratch; returns the number of shows. The
    caller commits."""
    for index in (SHOWS, HOSTS, HASHTAGS):
        await search.clear_index(db, index)

    async def shows() -> AsyncIterator[Sequence[Document]]:
        last_id = 0
        while True:
            stmt = select(Show).where(Show.id > last_id).order_by(Show.id).limit(batch)
            found = list((await db.scalars(stmt)).unique())
            if not found:
                return
            yield [show_document(s) for s in found]
            last_id = found[-1].id

    async def hosts() -> AsyncIterator[Sequence[Document]]:
        stmt = select(User).where(User.id.in_(select(Show.host_id).distinct())).order_by(User.id)
        yield [host_document(u) for u in await db.scalars(stmt)]

    async def hashtags() -> AsyncIterator[Sequence[Document]]:
        await db.execute(
            text(
                "INSERT INTO hashtag_search_tags (tag) SELECT DISTINCT tag FROM show_hashtags"
                " WHERE tag NOT IN (SELECT tag FROM hashtag_search_tags)"
            )
        )
        rows = await db.execute(text("SELECT id, tag FROM hashtag_search_tags ORDER BY id"))
        yield [document(tag_id, tag) for tag_id, tag in rows]

    indexed = await search.fill_index(db, SHOWS, shows())
    await search.fill_index(db, HOSTS, hosts())
    await search.fill_index(db, HASHTAGS, hashtags())
    return indexed


async def backfill_if_empty(db: AsyncSession) -> bool:
    """After migration 0006, indexes the shows and artists that were there before it (they
    were not yet indexed); does nothing on later runs. Commits; True if it indexed anything."""
    done = False
    if await _empty_beside(db, "show_search", "shows"):
        await rebuild_discovery(db)
        done = True
    if await _empty_beside(db, "artist_search", "artists"):
        await search.rebuild_artists(db)
        done = True
    if done:
        await db.commit()
    return done


async def _empty_beside(db: AsyncSession, index_table: str, source: str) -> bool:
    indexed = await db.scalar(text(f"SELECT 1 FROM {index_table} LIMIT 1"))
    rows = await db.scalar(text(f"SELECT 1 FROM {source} LIMIT 1"))
    return indexed is None and rows is not None
