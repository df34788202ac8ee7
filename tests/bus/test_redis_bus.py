"""The Redis bus against a real Redis: several nodes in one process, each a RoomHub with its
own RedisBus on one prefix, as `onair serve` nodes would be on one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from onair.bus.redis_bus import UNFOLLOW_AFTER_S, RedisBus
from onair.clock import FakeClock, SystemClock
from onair.errors import ApiError
from onair.ratelimit import RedisRateLimiter
from onair.rooms.hub import ROOM_IDLE_S, RoomClient, RoomEvent, RoomHub
from onair.shows.follows.notifications import NotificationHub
from tests.bus.conftest import SHARED_REDIS, OwnRedis

Node = tuple[RedisBus, RoomHub]
MakeNode = Callable[..., Node]


@pytest.fixture
async def make_node(redis_prefix: str) -> AsyncIterator[MakeNode]:
    buses: list[RedisBus] = []

    def make(name: str, *, url: str = SHARED_REDIS, **options: Any) -> Node:
        clock = options.pop("clock", SystemClock())
        bus = RedisBus.from_url(url, node_id=name, clock=clock, prefix=redis_prefix)
        for key, value in options.items():
            setattr(bus, key, value)
        hub = RoomHub(clock, relay=bus)
        bus.attach(hub)
        buses.append(bus)
        return bus, hub

    yield make
    for bus in buses:
        await bus.aclose()


async def take(client: RoomClient, n: int, within: float = 5) -> list[RoomEvent]:
    got: list[RoomEvent] = []
    async with asyncio.timeout(within):
        while len(got) < n:
            got += await client.next_batch()
    return got


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10) -> None:
    for _ in range(int(within / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not so within {within} s")


async def test_an_event_published_on_one_node_reaches_the_clients_of_every_node(
    make_node: MakeNode,
) -> None:
    (_, a), (_, b) = make_node("a"), make_node("b")
    await a.open(7)
    await b.open(7)
    on_a, on_b = a.join(7), b.join(7)
    a.publish(7, "chat.message", {"text": "hello"})
    for client in (on_a, on_b):
        (event,) = await take(client, 1)
        assert (event.type, event.seq, event.data) == ("chat.message", 1, {"text": "hello"})


async def test_clients_joining_a_room_at_once_all_join_it(make_node: MakeNode) -> None:
    # The second join came while the first was still loading the room: it used to start a
    # load of its own and fail with a KeyError (the first had removed its marker).
    (_, a), (_, b) = make_node("a"), make_node("b")
    await asyncio.gather(*(a.open(9) for _ in range(5)))
    clients = [a.join(9) for _ in range(5)]
    await b.open(9)
    b.publish(9, "chat.message", {"text": "all of you"})
    for client in clients:
        (event,) = await take(client, 1)
        assert event.data == {"text": "all of you"}


async def test_events_from_several_nodes_arrive_in_one_order_everywhere(
    make_node: MakeNode,
) -> None:
    nodes = [make_node(name) for name in "abc"]
    clients = []
    for _, hub in nodes:
        await hub.open(3)
        clients.append(hub.join(3))
    (_, a), (_, b), _ = nodes
    for i in range(50):
        a.publish(3, "note", {"from": "a", "i": i})
        b.publish(3, "note", {"from": "b", "i": i})
    orders = [[(e.seq, e.data["from"], e.data["i"]) for e in await take(c, 100)] for c in clients]
    assert orders[0] == orders[1] == orders[2]
    assert [seq for seq, _, _ in orders[0]] == list(range(1, 101))
    # One node's events never overtake each other.
    for node in "ab":
        assert [i for _, n, i in orders[0] if n == node] == list(range(50))


async def test_a_node_that_joins_late_has_the_state_and_the_history(make_node: MakeNode) -> None:
    _, a = make_node("a")
    await a.open(5)
    watcher = a.join(5)
    a.publish(5, "now_playing", {"title": "First"}, sticky=True)
    for i in range(4):
        a.publish(5, "note", {"i": i})
    a.publish(5, "now_playing", {"title": "Second"}, sticky=True)
    await take(watcher, 6)
    _, late = make_node("late")
    room = await late.open(5)
    assert room.seq == 6
    assert [s["title"] for s in room.state.values()] == ["Second"]
    newcomer = late.join(5)
    missed = room.since(3, newcomer)
    assert missed is not None and [e.seq for e in missed] == [4, 5, 6]
    a.publish(5, "note", {"i": "after"})
    (event,) = await take(newcomer, 1)
    assert event.seq == 7


async def test_crew_only_and_to_user_events_keep_their_visibility_on_every_node(
    make_node: MakeNode,
) -> None:
    (_, a), (_, b) = make_node("a"), make_node("b")
    await a.open(9)
    await b.open(9)
    crew = b.join(9, user_id=1, crew=True)
    listener = b.join(9, user_id=2)
    other = b.join(9, user_id=3)
    a.publish(9, "chat.held", {"id": 1}, crew_only=True)
    a.publish(9, "chat.sanction", {"to": 2}, to_user=2)
    a.publish(9, "chat.message", {"id": 2})
    assert [e.type for e in await take(crew, 2)] == ["chat.held", "chat.message"]
    assert [e.type for e in await take(listener, 2)] == ["chat.sanction", "chat.message"]
    assert [e.type for e in await take(other, 1)] == ["chat.message"]
    assert [e.seq for e in b.room(9).since(0, other) or []] == [3]


async def test_a_users_connections_are_closed_and_made_crew_on_every_node(
    make_node: MakeNode,
) -> None:
    (_, a), (_, b) = make_node("a"), make_node("b")
    await b.open(4)
    target = b.join(4, user_id=11)
    cohost = b.join(4, user_id=12)
    a.set_crew(4, 12, True)
    a.disconnect_user(11, "banned")
    async with asyncio.timeout(5):
        await target.closing.wait()
    assert (target.close_code, target.close_reason) == (4403, "banned")
    assert not cohost.closing.is_set()
    assert cohost.crew


async def test_presence_is_the_sum_over_nodes_and_a_dead_node_stops_counting(
    make_node: MakeNode,
) -> None:
    fast = {"_heartbeat_s": 0.2, "_node_ttl_s": 1.0}
    (bus_a, a), (bus_b, b) = make_node("a", **fast), make_node("b", **fast)
    await a.open(2)
    await b.open(2)
    a.join(2)
    for _ in range(3):
        b.join(2)

    async def counted(n: int, hubs: tuple[RoomHub, ...]) -> bool:
        return {h.presence(2) for h in hubs} == {n} and (await bus_a.count([2]))[2] == n

    await eventually(lambda: counted(4, (a, b)))
    await bus_b.abandon()  # dies without a word: its entry lapses
    await eventually(lambda: counted(1, (a,)))


async def test_a_rate_limit_holds_across_nodes(redis_prefix: str, make_node: MakeNode) -> None:
    clock = FakeClock()
    (bus_a, _), (bus_b, _) = make_node("a"), make_node("b")
    limiters = [
        RedisRateLimiter(
            bus.client, clock, burst=3, per_seconds=2, name="messages", prefix=redis_prefix
        )
        for bus in (bus_a, bus_b)
    ]
    waits = [await limiters[i % 2].aretry_after("user:1") for i in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(2 / 3)
    assert await limiters[0].apeek("user:2") == 0.0  # another key, and peeking spends nothing
    clock.advance(0.7)
    assert await limiters[1].aretry_after("user:1") == 0.0
    with pytest.raises(ApiError) as refused:
        await limiters[0].acheck("user:1")
    assert (refused.value.status, refused.value.code) == (429, "rate_limited")


async def test_a_lock_out_holds_across_nodes(redis_prefix: str, make_node: MakeNode) -> None:
    clock = FakeClock()
    (bus_a, _), (bus_b, _) = make_node("a"), make_node("b")
    a, b = (
        RedisRateLimiter(
            bus.client,
            clock,
            burst=2,
            per_seconds=900,
            name="failed log-ins",
            lockout_s=900,
            prefix=redis_prefix,
        )
        for bus in (bus_a, bus_b)
    )
    await a.aretry_after("ana")
    await b.aretry_after("ana")
    assert await a.apeek("ana") == pytest.approx(900)
    clock.advance(180)
    assert await b.apeek("ana") == pytest.approx(720)  # locked, not a token at a time
    clock.advance(720)
    assert await a.apeek("ana") == 0.0
    assert await b.aretry_after("ana") == 0.0


async def test_a_notification_reaches_the_users_stream_on_another_node(
    make_node: MakeNode,
) -> None:
    (bus_a, _), (bus_b, _) = make_node("a"), make_node("b")
    here = NotificationHub(relay=bus_a.channel("notifications"))
    there = NotificationHub(relay=bus_b.channel("notifications"))
    bus_a.start()
    bus_b.start()
    stream = there.subscribe(42)
    await asyncio.sleep(0.3)  # both nodes have subscribed to the control channel
    assert here.publish(42, "unread", {"unread": 3}) == 0  # no stream of 42 on this node
    event = await stream.next(5)
    assert event is not None and (event.type, event.data) == ("unread", {"unread": 3})
    here.disconnect_user(42, "suspended")
    await eventually(lambda: _true(stream.closed == "suspended"))
    await here.aclose()
    await there.aclose()


async def _true(value: bool) -> bool:
    return value


async def test_events_resume_after_redis_restarts_and_the_numbers_go_on(
    own_redis: OwnRedis, make_node: MakeNode
) -> None:
    (_, a), (_, b) = make_node("a", url=own_redis.url), make_node("b", url=own_redis.url)
    await a.open(1)
    await b.open(1)
    on_a, on_b = a.join(1), b.join(1)
    a.publish(1, "now_playing", {"title": "Before"}, sticky=True)
    a.publish(1, "note", {"i": 0})
    await take(on_b, 2)
    await take(on_a, 2)
    own_redis.stop()
    a.publish(1, "note", {"i": "while down"})  # waits in node a's queue
    await asyncio.sleep(0.5)
    own_redis.start()  # empty: no counter, no stream, no state
    got = await take(on_b, 1, within=20)
    assert [(e.seq, e.data) for e in got] == [(3, {"i": "while down"})]
    b.publish(1, "note", {"i": "after"})
    assert [e.seq for e in await take(on_a, 2, within=20)] == [3, 4]
    assert [e.seq for e in await take(on_b, 1)] == [4]
    _, late = make_node("late", url=own_redis.url)
    room = await late.open(1)  # the state was put back by the nodes that had it
    assert [s["title"] for s in room.state.values()] == ["Before"]
    assert not on_a.closing.is_set() and not on_b.closing.is_set()


async def test_a_redis_emptied_unnoticed_still_goes_on_from_the_numbers_a_node_knows(
    own_redis: OwnRedis, make_node: MakeNode
) -> None:
    (bus_a, a), (_, b) = make_node("a", url=own_redis.url), make_node("b", url=own_redis.url)
    await a.open(6)
    await b.open(6)
    on_b = b.join(6)
    for i in range(3):
        a.publish(6, "note", {"i": i})
    await take(on_b, 3)
    await bus_a.client.flushdb()  # as a restart no connection noticed would leave it
    a.publish(6, "note", {"i": "after"})
    (event,) = await take(on_b, 1)
    assert (event.seq, event.data) == (4, {"i": "after"})


async def test_a_room_is_forgotten_once_the_bus_stops_following_it_and_comes_back_whole(
    make_node: MakeNode,
) -> None:
    clock = FakeClock()
    (bus, a), (_, b) = make_node("a", clock=clock), make_node("b")
    await a.open(5)
    client = a.join(5)
    a.leave(5, client)
    clock.advance(ROOM_IDLE_S + 1)
    # Nobody is here, but the bus still delivers to this room: it must stay.
    assert 5 in bus.following() and a.forget_idle(force=True) == 0

    async def unfollowed() -> bool:
        clock.advance(UNFOLLOW_AFTER_S + 1)
        a.publish(5, "test.note", {"text": "wakes the reader"})
        return 5 not in bus.following()

    await eventually(unfollowed)
    assert a.forget_idle(force=True) == 1 and a.rooms() == []
    await a.open(5)  # a listener comes back: the room is loaded from the bus again
    back = a.join(5)
    b.publish(5, "chat.message", {"text": "welcome back"})
    got: list[RoomEvent] = []
    async with asyncio.timeout(5):
        while not got or got[-1].type != "chat.message":
            got += await back.next_batch()  # the last wake-up note may come first
    assert got[-1].data == {"text": "welcome back"} and got[-1].seq == a.room(5).seq


async def test_the_studio_node_counts_the_reactions_made_on_every_node(
    make_node: MakeNode,
) -> None:
    (_, studio), (_, other) = make_node("a"), make_node("b")
    studio.keep = lambda show_id: show_id == 6  # the show's studio runs on node a
    await studio.open(6)
    await other.open(6)
    here, there = studio.join(6), other.join(6)
    studio.leave(6, here)  # nobody need be connected to the studio's node
    for emoji in ("🔥", "🔥", "👏"):
        other.reactions.add(other.room(6), emoji)
    (burst,) = await take(there, 1)
    assert burst.type == "reactions" and burst.data["counts"] == {"🔥": 2, "👏": 1}

    async def counted() -> bool:
        return studio.room(6).reactions_total == 3

    await eventually(counted)
    assert other.room(6).reactions_total == 3


async def test_a_batch_sent_again_after_a_cut_is_published_once(make_node: MakeNode) -> None:
    """The writer's pipeline went through but its answer was lost (the connection broke): the
    writer sends the batch again, and nobody sees its events twice."""
    (bus, a), (_, b) = make_node("a"), make_node("b")
    await a.open(8)
    await b.open(8)
    watcher = b.join(8)
    for text in ("one", "two", "three"):
        a.publish(8, "chat.message", {"text": text})
    batch = list(bus._pending)  # what the writer would send
    await bus._send_batch(batch)  # sent, but "lost" on the way back ...
    await bus._send_batch(batch)  # ... so sent again
    got = await take(watcher, 3)
    a.publish(8, "chat.message", {"text": "four"})
    got += await take(watcher, 1)
    assert [e.data["text"] for e in got] == ["one", "two", "three", "four"]
    assert [e.seq for e in got] == [1, 2, 3, 4]
