"""The one error shape every endpoint answers with: {"error": {"code", "message"}}."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("onair")


class ApiError(Exception):
    """A refusal the user can act on; raised by services, turned into JSON here."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        """Seconds until the same request may succeed (a rate limit or a lock-out)."""
        self.headers = dict(headers or {})
        if retry_after is not None:
            self.headers.setdefault("Retry-After", str(retry_after_seconds(retry_after)))

    def body(self) -> dict[str, Any]:
        if self.retry_after is None:
            return error_body(self.code, self.message)
        return error_body(self.code, self.message, retry_after=round(self.retry_after, 3))


def retry_after_seconds(wait: float) -> int:
    """A Retry-After value: whole seconds, rounded up, never 0 (which would invite a retry now)."""
    return max(1, math.ceil(wait))


def rate_limited(what: str, wait: float, *, code: str = "rate_limited") -> ApiError:
    """A 429 for `what` ("too many messages"), carrying when to try again."""
    return ApiError(
        429,
        code,
        f"{what}; try again in {retry_after_seconds(wait)} s",
        retry_after=wait,
    )


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(message: str = "you may not do that") -> ApiError:
    return ApiError(403, "forbidden", message)


class FieldProblem(BaseModel):
    field: str = Field(description="Where, as body.title or query.limit.")
    problem: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable: invalid, not_found, rate_limited…")
    message: str = Field(description="For people.")
    retry_after: float | None = Field(
        default=None, description="Seconds until the request may succeed (429 only)."
    )
    details: list[FieldProblem] | None = Field(
        default=None, description="Every problem found in the request (422 only)."
    )


class Error(BaseModel):
    """What every refusal answers with."""

    error: ErrorDetail


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    """Answers every error in the one shape, and says so in the app's OpenAPI document."""
    _document_error_shape(app)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "")}
            for err in exc.errors()
        ]
        first = details[0] if details else {"field": "", "problem": "invalid request"}
        message = f"{first['field']}: {first['problem']}" if first["field"] else first["problem"]
        return JSONResponse(error_body("invalid", message, details=details), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal", "internal error"), status_code=500)


def _document_error_shape(app: FastAPI) -> None:
    # FastAPI documents its own {"detail": [...]} body for 422s and nothing for the other
    # refusals; OnAir answers all of them with `Error`, and clients (and schemathesis) should
    # be told so.
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_error_shape(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_error_shape(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    error = Error.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error.pop("$defs", {}))
    schemas["Error"] = error
    shape = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    refusal = {"description": "A refusal (401, 403, 404, 409, 429…).", "content": shape}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue  # a path-level "parameters" or "summary"
            responses = operation.setdefault("responses", {})
            responses.setdefault("default", refusal)
            invalid = responses.get("422")
            if invalid is not None:
                invalid["description"] = "The request is malformed or breaks a rule."
                invalid["content"] = shape
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in json.dumps(document):
            schemas.pop(unused, None)
    return document
