"""People in several roles, each with a browser of their own, and the moves the tests repeat.

Kept out of conftest.py, which pytest imports under a name of its own: a test importing from
it would get second copies of these classes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from onair.accounts.models import Role, User
from onair.moderation.models import AuditEntry
from tests.conftest import sign_up

PASSWORD = "correct horse"


@dataclass
class Person:
    client: httpx.AsyncClient
    id: int
    username: str

    async def login(self) -> httpx.Response:
        return await self.client.post(
            "/api/v1/accounts/login", json={"login": self.username, "password": PASSWORD}
        )


MakePerson = Callable[..., Awaitable[Person]]


async def set_role(app: FastAPI, user_id: int, role: Role) -> None:
    async with app.state.onair.sessions() as db:
        user = await db.get(User, user_id)
        assert user is not None
        user.role = role
        await db.commit()


async def new_show(host: Person, title: str = "Talk", *, live: bool = True) -> int:
    r = await host.client.post("/api/v1/shows", json={"title": title})
    assert r.status_code == 201, r.text
    show_id = int(r.json()["id"])
    if live:
        assert (await host.client.post(f"/api/v1/shows/{show_id}/live")).status_code == 200
    return show_id


async def chat(person: Person, show_id: int, text: str) -> int:
    r = await person.client.post(f"/api/v1/shows/{show_id}/chat", json={"text": text})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def report(
    person: Person, target: str, target_id: int, reason: str = "spam", details: str = ""
) -> httpx.Response:
    body = {"target": target, "target_id": target_id, "reason": reason, "details": details}
    return await person.client.post("/api/v1/reports", json=body)


async def filed(person: Person, target: str, target_id: int, reason: str = "spam") -> int:
    r = await report(person, target, target_id, reason)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def act(
    person: Person, report_id: int, action: str, reason: str = "breaks the rules", **extra: Any
) -> httpx.Response:
    return await person.client.post(
        f"/api/v1/moderation/reports/{report_id}/actions",
        json={"action": action, "reason": reason, **extra},
    )


async def on_user(
    person: Person, user_id: int, action: str, reason: str = "breaks the rules", **extra: Any
) -> httpx.Response:
    return await person.client.post(
        f"/api/v1/moderation/users/{user_id}/{action}", json={"reason": reason, **extra}
    )


async def audit_rows(app: FastAPI) -> list[AuditEntry]:
    async with app.state.onair.sessions() as db:
        return list((await db.scalars(select(AuditEntry).order_by(AuditEntry.id))).unique())


async def account(app: FastAPI, user_id: int) -> User:
    async with app.state.onair.sessions() as db:
        user = await db.get(User, user_id)
        assert user is not None
        return user


@pytest.fixture
async def people(app: FastAPI) -> AsyncIterator[MakePerson]:
    async with AsyncExitStack() as stack:

        async def make(username: str, role: Role = Role.listener) -> Person:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            await stack.enter_async_context(client)
            body = await sign_up(client, username, PASSWORD)
            person = Person(client, int(str(body["id"])), username)
            if role is not Role.listener:
                await set_role(app, person.id, role)
            return person

        yield make
