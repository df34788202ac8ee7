"""What the follow and calendar tests share: people signed up in clients of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import sign_up

Person = Callable[[str], Awaitable[tuple[httpx.AsyncClient, int]]]


@pytest.fixture
async def person(app: FastAPI) -> AsyncIterator[Person]:
    """Signs someone up, in a client of their own (closed after the test)."""
    clients: list[httpx.AsyncClient] = []

    async def make(name: str) -> tuple[httpx.AsyncClient, int]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(client)
        body = await sign_up(client, name)
        return client, int(str(body["id"]))

    yield make
    for client in clients:
        await client.aclose()
