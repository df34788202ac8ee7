"""Every endpoint in the OpenAPI document answers malformed input with a 4xx JSON error."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import sign_up

WEIRD_VALUES: list[Any] = [
    None,
    "",
    "x" * 5000,
    "💥\u0000<script>",
    -1,
    0,
    2**63,
    1.5e308,
    True,
    [],
    {},
    [{"a": 1}],
]
WEIRD_PATH = ["0", "-1", "99999999999999999999", "abc", "%00", "..%2F..%2Fetc"]
RAW_BODIES = [b"{", b"[]", b"null", b'{"a": NaN}', b"\xff\xfe", b"1" * 10_000]


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            ops.append((method.upper(), path, op))
    return ops


def _bodies(op: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    ref = (
        op.get("requestBody", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema", {})
        .get("$ref")
    )
    if not ref:
        return [None]
    model = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    fields = list(model.get("properties", {}))
    bodies: list[Any] = [{}, [], "string", 7]
    for field, value in itertools.product(fields, WEIRD_VALUES):
        bodies.append({f: "valid-ish text" for f in fields} | {field: value})
    return bodies


async def _assert_no_5xx(client: httpx.AsyncClient, app: FastAPI) -> int:
    schema = app.openapi()
    sent = 0
    for method, path, op in _operations(app):
        for segment in WEIRD_PATH:
            url = re.sub(r"\{[^}]+\}", segment, path)
            for body in _bodies(op, schema):
                r = await client.request(method, url, json=body)
                sent += 1
                assert r.status_code < 500, (method, url, body, r.text)
                if r.status_code >= 400:
                    assert r.headers["content-type"].startswith("application/json"), url
                    assert {"code", "message"} <= set(r.json()["error"]), r.text
            if method in {"POST", "PUT", "PATCH"}:
                for raw in RAW_BODIES:
                    r = await client.request(
                        method, url, content=raw, headers={"content-type": "application/json"}
                    )
                    sent += 1
                    assert r.status_code < 500, (method, url, raw, r.text)
    return sent


async def test_anonymous_malformed_requests_never_500(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    assert await _assert_no_5xx(client, app) > 500


async def test_signed_in_malformed_requests_never_500(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await sign_up(client, "fuzzer")
    r = await client.post("/api/v1/shows", json={"title": "Target"})
    assert r.status_code == 201
    assert await _assert_no_5xx(client, app) > 500


async def test_query_strings_out_of_range_are_422(client: httpx.AsyncClient) -> None:
    for params in ({"limit": "0"}, {"limit": "1000"}, {"offset": "-5"}, {"q": "x" * 500}):
        r = await client.get("/api/v1/catalog/search", params=params)
        assert r.status_code == 422, params
