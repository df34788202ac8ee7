"""The people fixtures: a factory, and a moderator and an admin ready to act."""

from __future__ import annotations

import pytest

from onair.accounts.models import Role
from tests.moderation import people as persons
from tests.moderation.people import MakePerson, Person

people = persons.people  # the fixture, shared with tests/royalties


@pytest.fixture
async def mod(people: MakePerson) -> Person:
    return await people("mod", Role.moderator)


@pytest.fixture
async def admin(people: MakePerson) -> Person:
    return await people("boss", Role.admin)
