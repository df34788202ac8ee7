from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from onair.accounts.models import User
from onair.clock import FakeClock
from tests.conftest import sign_up


async def test_sign_up_sets_a_safe_session_cookie_and_signs_in(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/accounts/signup",
        json={"username": "Nova", "email": "nova@example.org", "password": "s3cret-pass"},
    )
    assert r.status_code == 201
    assert r.json()["username"] == "nova"
    assert r.json()["role"] == "listener"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    me = await client.get("/api/v1/accounts/me")
    assert me.status_code == 200 and me.json()["username"] == "nova"


async def test_password_is_stored_as_argon2(client: httpx.AsyncClient, app: FastAPI) -> None:
    await sign_up(client, "hashy", "a very long password")
    async with app.state.onair.sessions() as db:
        user = await db.scalar(select(User).where(User.username == "hashy"))
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert "a very long password" not in user.password_hash


async def test_secure_cookie_over_https(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://radio.example") as c:
        r = await c.post(
            "/api/v1/accounts/signup",
            json={"username": "tls", "email": "tls@example.org", "password": "s3cret-pass"},
        )
    assert "secure" in r.headers["set-cookie"].lower()


async def test_log_out_then_log_in_with_email(client: httpx.AsyncClient) -> None:
    await sign_up(client, "dj_one", "password-one")
    assert (await client.post("/api/v1/accounts/logout")).status_code == 204
    client.cookies.clear()
    assert (await client.get("/api/v1/accounts/me")).status_code == 401
    bad = await client.post(
        "/api/v1/accounts/login", json={"login": "dj_one", "password": "wrong-password"}
    )
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "bad_credentials"
    good = await client.post(
        "/api/v1/accounts/login", json={"login": "DJ_ONE@example.org", "password": "password-one"}
    )
    assert good.status_code == 200
    assert (await client.get("/api/v1/accounts/me")).json()["username"] == "dj_one"


async def test_logged_out_cookie_no_longer_works(client: httpx.AsyncClient) -> None:
    await sign_up(client, "leaver")
    token = client.cookies.get("onair_session")
    await client.post("/api/v1/accounts/logout")
    client.cookies.set("onair_session", token or "")
    assert (await client.get("/api/v1/accounts/me")).status_code == 401


async def test_session_expires(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await sign_up(client, "sleepy")
    clock.advance(31 * 86400)
    assert (await client.get("/api/v1/accounts/me")).status_code == 401


async def test_duplicate_and_invalid_sign_ups_are_refused(client: httpx.AsyncClient) -> None:
    await sign_up(client, "taken")
    again = await client.post(
        "/api/v1/accounts/signup",
        json={"username": "TAKEN", "email": "other@example.org", "password": "password-x"},
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "taken"
    for body in (
        {"username": "x", "email": "x@example.org", "password": "password-x"},
        {"username": "bad name!", "email": "y@example.org", "password": "password-x"},
        {"username": "shorty", "email": "s@example.org", "password": "short"},
        {"username": "nomail", "email": "not-an-email", "password": "password-x"},
        {"username": 5},
    ):
        r = await client.post("/api/v1/accounts/signup", json=body)
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == "invalid"
    r = await client.post(
        "/api/v1/accounts/signup",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422


async def test_sign_ups_are_rate_limited_per_address(app: FastAPI, clock: FakeClock) -> None:
    from onair.ratelimit import RateLimiter

    app.state.onair.limiters.signup = RateLimiter(clock, burst=3, per_seconds=3600, name="sign-ups")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        codes = []
        for i in range(4):
            r = await c.post(
                "/api/v1/accounts/signup",
                json={
                    "username": f"bot{i}",
                    "email": f"bot{i}@example.org",
                    "password": "password-x",
                },
            )
            codes.append(r.status_code)
        assert codes == [201, 201, 201, 429]
        assert "try again" in r.json()["error"]["message"]
        clock.advance(1200)
        r = await c.post(
            "/api/v1/accounts/signup",
            json={"username": "bot9", "email": "bot9@example.org", "password": "password-x"},
        )
        assert r.status_code == 201
