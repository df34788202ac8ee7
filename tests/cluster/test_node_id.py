"""A node started without ONAIR_NODE_ID is one node to the bus and to the cluster alike."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from redis.asyncio import Redis

from onair.app import create_app
from onair.db.migrate import upgrade
from onair.settings import Settings
from tests.cluster import require_redis


def test_the_bus_and_the_cluster_share_the_id_they_pick(tmp_path: Path) -> None:
    require_redis().close()
    prefix = f"onair-test-{secrets.token_hex(4)}:"
    settings = Settings(
        data_dir=tmp_path,
        redis_url="redis://127.0.0.1:6379/0",
        redis_prefix=prefix,
        node_id="",
    )
    upgrade(settings.resolved_database_url)
    asyncio.run(_one_node(settings, prefix))


async def _one_node(settings: Settings, prefix: str) -> None:
    app = create_app(settings)
    onair = app.state.onair
    assert onair.bus is not None and onair.cluster is not None
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        async with app.router.lifespan_context(app):
            assert onair.bus.node_id == onair.cluster.node_id
            assert onair.bus.node_id.startswith("node-")
            # What other nodes see in Redis: one node, under one name, on both.
            alive: list[bytes] = []
            for _ in range(100):
                alive = await redis.zrange(f"{prefix}bus:alive", 0, -1)
                if alive:
                    break
                await asyncio.sleep(0.05)
            nodes = await redis.smembers(f"{prefix}nodes")
            assert alive == [onair.bus.node_id.encode()]
            assert nodes == {onair.cluster.node_id.encode()}
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
