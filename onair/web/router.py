from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse


def mount_web(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home() -> str:
        return "<!doctype html><title>OnAir</title><h1>OnAir</h1>"
