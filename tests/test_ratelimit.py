"""The one rate limiter: token buckets on the fake clock, 429 with Retry-After, log-in lock-out."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from onair.clock import FakeClock
from onair.errors import ApiError
from onair.ratelimit import RateLimiter
from tests.conftest import sign_up


def test_a_burst_is_allowed_then_refused_until_a_token_refills(clock: FakeClock) -> None:
    chat = RateLimiter(clock, burst=3, per_seconds=2, name="messages")
    assert [chat.retry_after("ana") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert chat.retry_after("ana") == pytest.approx(2 / 3)
    clock.advance(0.5)
    assert chat.retry_after("ana") == pytest.approx(2 / 3 - 0.5)
    clock.advance(0.2)
    assert chat.retry_after("ana") == 0.0


def test_keys_are_counted_apart(clock: FakeClock) -> None:
    chat = RateLimiter(clock, burst=1, per_seconds=10, name="messages")
    chat.check("ana")
    chat.check("bo")
    with pytest.raises(ApiError):
        chat.check("ana")


def test_a_bucket_never_holds_more_than_its_burst(clock: FakeClock) -> None:
    chat = RateLimiter(clock, burst=2, per_seconds=2, name="messages")
    clock.advance(3600)
    assert [chat.retry_after("ana") for _ in range(3)][-1] > 0


def test_check_refuses_with_429_and_when_to_come_back(clock: FakeClock) -> None:
    reports = RateLimiter(clock, burst=1, per_seconds=3600, name="reports")
    reports.check("ana")
    with pytest.raises(ApiError) as refused:
        reports.check("ana")
    exc = refused.value
    assert (exc.status, exc.code) == (429, "rate_limited")
    assert exc.retry_after == pytest.approx(3600)
    assert exc.headers == {"Retry-After": "3600"}
    assert exc.message == "too many reports; try again in 3600 s"


def test_retry_after_header_is_whole_seconds_rounded_up_and_at_least_one(
    clock: FakeClock,
) -> None:
    chat = RateLimiter(clock, burst=3, per_seconds=2, name="messages")
    for _ in range(3):
        chat.check("ana")
    with pytest.raises(ApiError) as refused:
        chat.check("ana")
    assert refused.value.headers["Retry-After"] == "1"  # 0.67 s
    assert refused.value.body()["error"]["retry_after"] == pytest.approx(0.667, abs=1e-3)
    slow = RateLimiter(clock, burst=2, per_seconds=5, name="reactions")
    slow.check("ana")
    slow.check("ana")
    with pytest.raises(ApiError) as refused:
        slow.check("ana")
    assert refused.value.headers["Retry-After"] == "3"  # 2.5 s


def test_peek_tells_the_wait_without_counting(clock: FakeClock) -> None:
    hands = RateLimiter(clock, burst=2, per_seconds=60, name="call-ins")
    assert hands.peek("ana") == 0.0
    assert hands.peek("ana") == 0.0
    hands.check("ana")
    assert hands.peek("ana") == 0.0
    hands.check("ana")
    assert hands.peek("ana") == pytest.approx(30)
    clock.advance(10)
    assert hands.peek("ana") == pytest.approx(20)
    clock.advance(20)
    assert hands.peek("ana") == 0.0
    hands.check("ana")  # peeking spent nothing


def test_a_limiter_forgets_full_buckets_when_it_holds_too_many(clock: FakeClock) -> None:
    signups = RateLimiter(clock, burst=1, per_seconds=1, name="sign-ups")
    for i in range(100_002):
        signups.retry_after(f"10.0.{i // 256}.{i % 256}")
    clock.advance(2)
    signups.retry_after("fresh")
    assert len(signups._buckets) == 1


async def test_http_429_carries_retry_after_header_and_body(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    app.state.onair.limiters.signup = RateLimiter(clock, burst=1, per_seconds=90, name="sign-ups")
    await sign_up(client, "first")
    r = await client.post(
        "/api/v1/accounts/signup",
        json={"username": "second", "email": "second@example.org", "password": "password-x"},
    )
    assert r.status_code == 429
    assert r.headers["retry-after"] == "90"
    error = r.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["retry_after"] == pytest.approx(90)
    assert error["message"] == "too many sign-ups; try again in 90 s"


# Log-in lock-out: the conftest's settings allow 5 wrong passwords per 15 minutes.


async def _log_in(client: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/accounts/login", json={"login": login, "password": password})


async def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "target", "the-right-one")
    client.cookies.clear()
    for _ in range(5):
        r = await _log_in(client, "target", "a-wrong-guess")
        assert r.status_code == 401, r.text
    r = await _log_in(client, "target", "the-right-one")
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "locked_out"
    assert int(r.headers["retry-after"]) == 900  # locked for the whole 15 minutes
    assert "set-cookie" not in r.headers
    # The name is matched as the log-in form matches it.
    assert (await _log_in(client, "  TARGET ", "the-right-one")).status_code == 429


async def test_a_locked_account_opens_again_once_the_lock_out_passes(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "patient", "the-right-one")
    client.cookies.clear()
    for _ in range(5):
        await _log_in(client, "patient", "a-wrong-guess")
    r = await _log_in(client, "patient", "the-right-one")
    assert r.status_code == 429
    clock.advance(int(r.headers["retry-after"]))
    r = await _log_in(client, "patient", "the-right-one")
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/accounts/me")).json()["username"] == "patient"


async def test_guessing_while_locked_out_does_not_extend_the_lock_out(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "stubborn", "the-right-one")
    for _ in range(5):
        await _log_in(client, "stubborn", "a-wrong-guess")
    for _ in range(20):
        assert (await _log_in(client, "stubborn", "a-wrong-guess")).status_code == 429
    clock.advance(180)  # not a token at a time: still locked
    r = await _log_in(client, "stubborn", "the-right-one")
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 720
    clock.advance(720)
    assert (await _log_in(client, "stubborn", "the-right-one")).status_code == 200


async def test_the_username_and_the_email_share_one_lock_out(client: httpx.AsyncClient) -> None:
    await sign_up(client, "twofaced", "the-right-one")
    client.cookies.clear()
    for login in ("twofaced", "twofaced@example.org") * 2 + ("TwoFaced",):
        assert (await _log_in(client, login, "a-wrong-guess")).status_code == 401
    r = await _log_in(client, "twofaced@example.org", "the-right-one")
    assert r.status_code == 429 and r.json()["error"]["code"] == "locked_out"


async def test_a_lock_out_is_per_account_not_per_address(client: httpx.AsyncClient) -> None:
    await sign_up(client, "locked", "the-right-one")
    await sign_up(client, "neighbour", "neighbour-pass")
    client.cookies.clear()
    for _ in range(5):
        await _log_in(client, "locked", "a-wrong-guess")
    assert (await _log_in(client, "locked", "the-right-one")).status_code == 429
    r = await _log_in(client, "neighbour", "neighbour-pass")
    assert r.status_code == 200, r.text


async def test_right_passwords_do_not_count_towards_a_lock_out(client: httpx.AsyncClient) -> None:
    await sign_up(client, "regular", "the-right-one")
    for _ in range(10):
        assert (await _log_in(client, "regular", "the-right-one")).status_code == 200
