"""What the show page and the host page show of replays (the pages router asks for these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.replays import service
from onair.replays.router import ReplayOptionsOut, ReplayOut, get_replays, options_out
from onair.shows.models import Show, ShowStatus


@dataclass
class ShowReplays:
    replays: list[ReplayOut]
    options: ReplayOptionsOut | None
    """What the host may publish (only for the host, once the show has ended)."""
    can_unpublish: bool
    publishable: list[str]
    """The kinds the host may still publish (none yet, or the last try failed)."""


async def show_replays(
    request: Request, db: AsyncSession, show: Show, viewer: User | None
) -> ShowReplays:
    replays = [ReplayOut.of(r, show) for r in await service.show_replays(db, show, viewer)]
    options = None
    publishable: list[str] = []
    if viewer is not None and viewer.id == show.host_id and show.status is ShowStatus.ended:
        options = options_out(await get_replays(request).options(db, show))
        taken = {r.kind.value for r in replays if r.state != "failed"}
        publishable = [kind for kind in ("talk", "full") if kind not in taken]
    return ShowReplays(replays, options, service.may_manage(show, viewer), publishable)


async def host_replays(db: AsyncSession, host: User) -> dict[str, Any]:
    episodes = await service.host_replays(db, host.id, limit=50)
    return {
        "replays": [ReplayOut.of(r, s) for r, s in episodes],
        "podcast_url": f"/hosts/{host.id}/podcast.xml",
        "podcast_title": f"{host.display_name} on OnAir",
    }
