"""Per-app objects that handlers reach for."""

from __future__ import annotations

from typing import Any

from quart import current_app, g

from service.lib.relay import Relay
from xpbase.db import Database
from xpbase.rpc import PostgresRPC
from xpbase.settings import Settings


def get_db() -> Database:
    """The app's Database (inside a request or websocket). RuntimeError when the app is not serving."""
    database: Database | None = current_app.config["XPBASE_DB"]
    if database is None:
        raise RuntimeError("the database is not open (the app is not serving)")
    return database


def get_relay() -> Relay:
    """The app's notification relay (in a request or websocket). RuntimeError when the app is not serving."""
    relay: Relay | None = current_app.config.get("XPBASE_RELAY")
    if relay is None:
        raise RuntimeError("the notification relay is not running (the app is not serving)")
    return relay


def get_rpc() -> PostgresRPC:
    """The app's typed RPC client (xpbase.rpc) over its Database: ``call`` answers result models."""
    rpc: PostgresRPC | None = current_app.config.get("XPBASE_RPC")
    if rpc is None or rpc.database is not get_db():
        rpc = PostgresRPC(get_db())
        current_app.config["XPBASE_RPC"] = rpc
    return rpc


def caller() -> dict[str, Any]:
    """``role`` and ``claims`` for rpc.call: the signed-in member's (after require_member), else anon's."""
    claims = getattr(g, "claims", None)
    if claims is not None:
        return {"role": "authenticated", "claims": claims}
    return {"role": "anon", "claims": None}


def current_settings() -> Settings:
    """The app's Settings (inside a request or websocket)."""
    value: Settings = current_app.config["XPBASE_SETTINGS"]
    return value
