"""schemathesis against /openapi.json: no operation answers 500 or strays from its own schema.

Every operation is fuzzed with a few examples (valid and invalid) as a signed-in host, half of
them aimed at the host's own show and account, so the suite stays fast; bench/schemathesis_full.py
runs the same checks with the coverage phase and many more examples.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.python import asgi

from onair.app import create_app
from onair.clock import FakeClock
from onair.db.migrate import upgrade
from onair.settings import Settings
from tests.databases import copy_data_dir

EXAMPLES = int(os.environ.get("ONAIR_SCHEMATHESIS_EXAMPLES", "8"))
# A fixed seed keeps the suite's cases the same from run to run; bench/ varies it.
SEED = int(os.environ.get("ONAIR_SCHEMATHESIS_SEED", "5"))
# The coverage phase (boundaries, wrong types, unexpected methods for every parameter) is
# thorough but sends about 2,000 requests more, so it runs in bench/ only.
PHASES = os.environ.get("ONAIR_SCHEMATHESIS_PHASES", "examples,fuzzing").split(",")
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
]
HOST = {"username": "fuzz_host", "email": "fuzz_host@example.org", "password": "fuzz-password"}
# The template database's first user and show; path parameters of these names are sometimes
# set to them, since random ids would almost never find anything to act on.
HOST_ID = SHOW_ID = 1
REAL_IDS = {"show_id": SHOW_ID, "user_id": HOST_ID}
INT64_MAX = 2**63 - 1


def fuzz_settings(data_dir: Path) -> Settings:
    """Limits high enough that no route hides behind a 429."""
    unlimited = 1_000_000
    return Settings(
        data_dir=data_dir,
        signup_per_hour=unlimited,
        login_per_minute=unlimited,
        hand_raises_per_minute=unlimited,
        chat_burst=unlimited,
        reactions_per_10s=unlimited,
        requests_per_10min=unlimited,
        reports_per_hour=unlimited,
        login_failures_allowed=unlimited,
    )


def _openapi_document() -> dict[str, Any]:
    # The document depends on no setting or data, so a throwaway app can tell it at collection.
    with tempfile.TemporaryDirectory() as tmp:
        document: dict[str, Any] = create_app(fuzz_settings(Path(tmp))).openapi()
        return document


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "phases": {p: {"enabled": p in PHASES} for p in ("examples", "coverage", "fuzzing")},
    }
)
schema = schemathesis.openapi.from_dict(_openapi_document(), config=CONFIG)
# An SDP offer is text; random text exercises the offer checks and, while live, the parser.
schemathesis.serializer.alias("application/sdp", "text/plain")


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    real = {name: REAL_IDS[name] for name in path_parameters or {} if name in REAL_IDS}
    if not real:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **real}])


# One app and database per operation, copied from a template made once.


@dataclass(frozen=True)
class Template:
    """A migrated database where the host has signed up and created a show."""

    data_dir: Path
    cookies: dict[str, str]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    # Signing up (an argon2 hash) and migrating cost more than an operation's examples, so
    # they are done once and each operation gets a copy of the result.
    data_dir = tmp_path_factory.mktemp("schemathesis") / "var"
    settings = fuzz_settings(data_dir)
    data_dir.mkdir()
    upgrade(settings.resolved_database_url)
    app = create_app(settings, FakeClock())
    with asgi.get_client(app) as client:
        r = client.post("/api/v1/accounts/signup", json=HOST)
        assert r.status_code == 201 and r.json()["id"] == HOST_ID, r.text
        show = client.post("/api/v1/shows", json={"title": "Fuzzed"})
        assert show.status_code == 201 and show.json()["id"] == SHOW_ID, show.text
    asgi.shutdown_lifespans()  # closes the database, so the copies are whole
    return Template(data_dir, {"onair_session": r.cookies["onair_session"]})


@pytest.fixture
def api(tmp_path: Path, template: Template) -> FastAPI:
    """A fresh app and database, so what one operation did misleads no other."""
    settings = fuzz_settings(tmp_path / "var")
    copy_data_dir(template.data_dir, settings.data_dir)  # with its database, on either backend
    return create_app(settings, FakeClock())


@pytest.fixture
def live_api(api: FastAPI, template: Template) -> FastAPI:
    with asgi.get_client(api) as client:
        r = client.post(f"/api/v1/shows/{SHOW_ID}/live", cookies=template.cookies)
        assert r.status_code == 200, r.text
    return api


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The app is per operation and shared by its examples, as a server is by its clients.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
    derandomize=True,
)


# The notification stream never ends (each example would wait out the client's timeout); it is
# read over a real server in tests/discovery/test_follows.py.
@schema.exclude(path="/api/v1/notifications/stream").parametrize()
@FUZZ_SETTINGS
def test_api(case: schemathesis.Case, api: FastAPI, template: Template) -> None:
    checks = CHECKS
    if case.path == "/oembed" and (case.query or {}).get("format") == "xml":
        # oEmbed's own answer for a format it does not offer is 501 (spec 2.3.4).
        checks = [schemathesis.checks.response_schema_conformance]
    # A generous timeout: in CI this runs under nice beside the real-time tests (scripts/test).
    case.call_and_validate(app=api, cookies=template.cookies, checks=checks, timeout=60)


# The SDP routes answer 409 until the show is live; live, random offers reach the parser.
# Listening over /listen/ is no operation in the document (a stream that never ends).


@schema.include(path_regex=r"/(whep|studio/webrtc)$").parametrize()
@FUZZ_SETTINGS
def test_sdp_offers_while_live(
    case: schemathesis.Case, live_api: FastAPI, template: Template
) -> None:
    case.call_and_validate(app=live_api, cookies=template.cookies, checks=CHECKS)


# Requests schemathesis once found answering 500, replayed on every run whatever the seed.
FOUND = [
    ("GET", f"/api/v1/shows?offset={INT64_MAX + 1}"),  # overflowed SQLite's INTEGER
]


@pytest.mark.parametrize(("method", "url"), FOUND)
def test_what_schemathesis_found_stays_fixed(
    method: str, url: str, api: FastAPI, template: Template
) -> None:
    with asgi.get_client(api) as client:
        r = client.request(method, url, cookies=template.cookies)
    assert r.status_code < 500, r.text
    assert {"code", "message"} <= set(r.json()["error"])


def test_the_document_tells_the_error_shape_of_every_refusal() -> None:
    document = _openapi_document()
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    ref = {"$ref": "#/components/schemas/Error"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert responses["default"]["content"]["application/json"]["schema"] == ref
            if "422" in responses:
                assert responses["422"]["content"]["application/json"]["schema"] == ref, (
                    method,
                    path,
                )
