"""People with browsers of their own, as in the moderation tests (tests/moderation/people.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI

from onair.accounts.models import Role
from tests.conftest import sign_up
from tests.moderation.people import PASSWORD, MakePerson, Person, set_role


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
