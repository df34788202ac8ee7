"""`/metrics` for Prometheus, `/healthz` and `/readyz` for orchestrators and load balancers.

Who may read `/metrics`: with `ONAIR_METRICS_TOKEN` set, whoever sends it as a bearer token
(`Authorization: Bearer …`); without it, callers on this host (a loopback address, and no
proxy's forwarding header, since a proxy on the same host would make every visitor look
local); and signed-in admins either way. `/healthz` and `/readyz` are for anyone: they say
nothing private and cost a query or two.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field

from onair.accounts.service import user_for_token
from onair.context import OnAir
from onair.errors import ApiError, error_body
from onair.ops.metrics import HttpCounts, node_registry
from onair.ops.readiness import (
    Readiness,
    database_check,
    draining_check,
    migrations_check,
    redis_check,
)

__all__ = ["Ops", "router"]

_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


@dataclass
class Ops:
    """The app's metrics registry, its HTTP counts and its readiness checks."""

    onair: OnAir
    http: HttpCounts = field(default_factory=HttpCounts)
    readiness: Readiness = field(default_factory=Readiness)
    registry: CollectorRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.registry = node_registry(self.onair, self.http)
        settings = self.onair.settings
        engine = self.onair.engine
        self.readiness.add("database", database_check(engine))
        self.readiness.add("migrations", migrations_check(engine))
        if settings.redis_url:
            self.readiness.add("redis", redis_check(settings.redis_url))
        if self.onair.cluster is not None:
            self.readiness.add("draining", draining_check(self.onair.cluster))


def get_ops(app: FastAPI) -> Ops:
    ops: Ops = app.state.ops
    return ops


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessOut(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="Each check's answer: ok, or what is wrong.")
    error: dict[str, str] | None = Field(
        default=None, description="When not ready: code not_ready and the problems in one line."
    )


router = APIRouter(tags=["operations"])

_TEXT = {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus' text format.", **_TEXT}},
    summary="This node's figures for Prometheus",
    description="Listeners by transport, live shows, studio frame lateness, encoder time, "
    "WebSocket clients, room and chat deliveries, HTTP answers by status class, and the "
    "process' memory and CPU. For a bearer token (ONAIR_METRICS_TOKEN), else callers on this "
    "host; admins always.",
)
async def metrics(request: Request) -> Response:
    await _check_metrics_caller(request)
    body = generate_latest(get_ops(request.app).registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/healthz",
    response_model=Health,
    summary="The process is up",
    description="200 whenever the event loop runs; nothing else is checked (see /readyz).",
)
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "Not ready: the checks say why."}},
    summary="This node is ready for traffic",
    description="The database answers, its schema is at the migrations' head, Redis answers "
    "(when ONAIR_REDIS_URL is set) and no other part of the node (draining) says otherwise; "
    "503 with the reasons if not.",
)
async def readyz(request: Request) -> JSONResponse:
    verdict = await get_ops(request.app).readiness.verdict()
    if verdict.ready:
        out = ReadinessOut(status="ready", checks=verdict.checks())
        return JSONResponse(
            out.model_dump(exclude_none=True), headers={"cache-control": "no-store"}
        )
    body = {
        "status": "not_ready",
        "checks": verdict.checks(),
        **error_body("not_ready", verdict.summary()),
    }
    return JSONResponse(body, status_code=503, headers={"cache-control": "no-store"})


async def _check_metrics_caller(request: Request) -> None:
    onair: OnAir = request.app.state.onair
    token = onair.settings.metrics_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return
    if not token and _from_this_host(request):
        return
    session = request.cookies.get(onair.settings.secret_cookie_name)
    if session:
        async with onair.sessions() as db:
            user = await user_for_token(db, onair.clock, session)
        if user is not None:
            if user.is_admin:
                return
            raise ApiError(403, "forbidden", "metrics are for admins and the metrics token")
    how = "the metrics token as a bearer token" if token else "a call from this host"
    raise ApiError(
        401,
        "unauthorized",
        f"metrics need {how} or an admin",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _from_this_host(request: Request) -> bool:
    if request.client is None or any(name in request.headers for name in _FORWARDED):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False
