"""Per-app objects that handlers reach for."""

from __future__ import annotations

from quart import current_app

from service.relay import Relay
from xpbase.db import Database


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
