"""People with browsers of their own, as in the moderation tests (tests/moderation/people.py)."""

from tests.moderation import people as persons

people = persons.people  # the fixture
