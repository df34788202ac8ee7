"""Importers turn outside catalogs into `TrackInput`s; this writes them, all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import Clock

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Rejected:
    """An input an importer could not use: where it was and what was wrong with it."""

    where: str
    reason: str


@dataclass
class ImportSummary:
    imported: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.imported + len(self.rejected)


async def import_rows(
    db: AsyncSession,
    clock: Clock,
    items: Iterable[TrackInput | Rejected],
    *,
    total: int | None = None,
    batch: int = 1000,
    on_progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Writes every `TrackInput` through `CatalogWriter` in one transaction and collects the
    rejections. Commits at the end; on any error rolls back, so nothing is half-imported.

    `total` is what `on_progress(done, total)` counts towards (rows seen, imported or rejected);
    without it the items are read up front to count them.
    """
    if total is None:
        items = list(items)
        total = len(items)
    summary = ImportSummary()
    writer = CatalogWriter(db, clock)
    pending: list[TrackInput] = []

    async def flush() -> None:
        await writer.write(pending)
        summary.imported += len(pending)
        pending.clear()
        if on_progress:
            on_progress(summary.seen, max(total, summary.seen))

    try:
        for item in items:
            if isinstance(item, Rejected):
                summary.rejected.append(item)
                continue
            pending.append(item)
            if len(pending) >= batch:
                await flush()
        if pending:
            await flush()
        await db.commit()
    except BaseException:
        await db.rollback()
        raise
    if on_progress:
        on_progress(summary.seen, max(total, summary.seen))
    return summary
