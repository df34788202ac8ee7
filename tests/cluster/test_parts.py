"""The cluster's parts on their own: the lease on real Redis, placement's choice, and the deck
starting a song part-way (what a node taking a show over does)."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from onair.cluster.lease import Leases
from onair.cluster.load import NodeLoad, least_loaded
from onair.cluster.node import Keys, reserve_least_loaded
from onair.studio.deck import DeckTrack, MusicDeck
from tests.cluster import chirp_position, require_redis, write_chirp
from tests.media import dominant_frequency

RATE = 48_000


async def test_one_node_holds_a_lease_until_it_lets_go() -> None:
    require_redis().close()
    prefix = f"onair-test-{secrets.token_hex(4)}:"
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    a, b = Leases(redis, prefix, "a"), Leases(redis, prefix, "b")
    try:
        assert await a.acquire(7)
        assert not await b.acquire(7)
        assert await a.owner(7) == "a"
        assert await a.renew(7)
        assert not await b.renew(7)  # only the holder renews
        await b.release(7)  # nor can another node let it go
        assert await b.owner(7) == "a"
        await a.release(7)
        assert await a.owner(7) is None
        assert await b.acquire(7)
        assert not await a.renew(7)
    finally:
        await redis.delete(a.key(7))
        await redis.aclose()


def test_a_new_studio_goes_to_the_least_loaded_open_node() -> None:
    nodes = [
        NodeLoad("a", "http://a", studios=2, listeners=10, cpu=0.3),
        NodeLoad("b", "http://b", studios=0, listeners=0, cpu=0.05, draining=True),
        NodeLoad("c", "http://c", studios=1, listeners=100, cpu=0.2),
        NodeLoad("d", "http://d", studios=1, listeners=20, cpu=0.2),
    ]
    chosen = least_loaded(nodes)
    assert chosen is not None and chosen.node_id == "d"  # b drains; c has more listeners
    second = least_loaded(nodes, excluding="d")
    assert second is not None and second.node_id == "c"  # 2 studios weigh more than 100
    assert least_loaded([nodes[1]]) is None


async def test_placements_made_at_once_spread_over_the_nodes() -> None:
    """Scheduled shows go live on the hour, all at once: the nodes' last heartbeats count none
    of them, and each placement alone would pick the same idlest node."""
    require_redis().close()
    keys = Keys(f"onair-test-{secrets.token_hex(4)}:")
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    nodes = [
        NodeLoad("a", "http://a", studios=0, listeners=0, cpu=0.1),
        NodeLoad("b", "http://b", studios=0, listeners=0, cpu=0.1),
        NodeLoad("c", "http://c", studios=1, listeners=0, cpu=0.0),
        NodeLoad("d", "http://d", studios=0, listeners=0, cpu=0.0, draining=True),
    ]
    try:
        chosen = await asyncio.gather(
            *(reserve_least_loaded(redis, keys, show, nodes) for show in range(1, 7))
        )
        assert Counter(n.node_id for n in chosen if n) == {"a": 2, "b": 2, "c": 2}
        await redis.zrem(keys.reserved("a"), *(range(1, 7)))  # a's studios run: it counts them
        a_counts = replace(nodes[0], studios=2)
        again = await reserve_least_loaded(redis, keys, 7, [a_counts, *nodes[1:]])
        assert again is not None and again.node_id == "a"  # 2.1 against 2.1 and 3.0
    finally:
        await redis.delete(*(keys.reserved(n) for n in "abcd"))
        await redis.aclose()


def test_the_deck_starts_a_song_where_another_studio_left_it(tmp_path: Path) -> None:
    path = tmp_path / "chirp.flac"
    write_chirp(path, 30.0)
    track = DeckTrack(1, 1, path, "Chirp", ("Test Tones",), None, 30.0, start_s=20.0)
    deck = MusicDeck(crossfade_s=0, decode_in_background=False)
    deck.set_queue([track])
    deck.play()
    heard = np.concatenate([deck.next_frame()[0] for _ in range(50)]).astype(np.float64)
    assert abs(chirp_position(dominant_frequency(heard[: RATE // 2])) - 20.25) < 0.3
    assert abs(deck.position_s - 21.0) < 0.05  # counted from the song's top
    deck.close()
