"""The app factory."""

from __future__ import annotations

import asyncio
import contextlib

from quart import Quart
from quart_schema import Info, QuartSchema

from service.auth import ACCESS_COOKIE, origin_of
from service.blueprints import auth, chat, events, health, payments, points, profiles, redemptions, store
from service.errors import register_error_handlers
from service.jobs import call_forever, describe_compacted, describe_finalized
from service.oauth import configured_providers
from service.relay import Relay
from service.tokens import load_token_keys
from xpbase import __version__
from xpbase.db import Database, resolve_url
from xpbase.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Quart:
    """Build the Quart app.

    ``settings`` defaults to the environment's; unusable token settings raise
    service.tokens.SettingsError here, before anything is served. ``database`` lets tests (and
    callers that own a pool) hand in a ready xpbase.db.Database; otherwise one
    is opened before serving (starting the embedded Postgres when
    ``DATABASE_URL`` is unset) and closed after.
    """
    settings = settings or get_settings()
    app = Quart("xpbase")
    app.config["XPBASE_SETTINGS"] = settings
    app.config["XPBASE_TOKEN_KEYS"] = load_token_keys(settings)
    app.config["XPBASE_OAUTH_PROVIDERS"] = configured_providers(settings)
    app.config["XPBASE_TRUSTED_ORIGINS"] = frozenset(origin_of(uri) for uri in settings.oauth_redirect_uris)
    app.config["XPBASE_DB"] = database

    QuartSchema(
        app,
        info=Info(
            title="xpbase",
            version=__version__,
            description="Gamification backend: XP, levels, tiers, seasons.",
        ),
        security_schemes={
            "bearer": {"type": "http", "scheme": "bearer", "bearer_format": "JWT"},
            "cookie": {"type": "apiKey", "in_": "cookie", "name": ACCESS_COOKIE},
        },
        swagger_ui_path="/docs",
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    register_error_handlers(app)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(profiles.blueprint)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(events.blueprint)
    app.register_blueprint(chat.blueprint)
    for economy in (points, store, redemptions, payments):  # issue 11
        app.register_blueprint(economy.blueprint)

    owns_database = database is None

    background: list[asyncio.Task[None]] = []

    @app.before_serving
    async def open_database() -> None:
        if app.config["XPBASE_DB"] is None:
            url, _ = resolve_url(settings)
            app.config["XPBASE_DB"] = await Database.connect(
                url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
            )
        database: Database = app.config["XPBASE_DB"]
        relay = Relay(database.url or resolve_url(settings)[0], database)
        await relay.start()
        app.config["XPBASE_RELAY"] = relay
        jobs = [
            ("finalize_seasons", settings.season_finalize_interval, describe_finalized),
            (
                "service_role_compact_leaderboard_counts",
                settings.leaderboard_compact_interval,
                describe_compacted,
            ),
        ]
        for function, interval, describe in jobs:
            if interval > 0:
                background.append(
                    asyncio.create_task(call_forever(database, function, interval, describe), name=function)
                )

    @app.after_serving
    async def close_database() -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        background.clear()
        if app.config.get("XPBASE_RELAY") is not None:
            await app.config["XPBASE_RELAY"].stop()
            app.config["XPBASE_RELAY"] = None
        if owns_database and app.config["XPBASE_DB"] is not None:
            await app.config["XPBASE_DB"].close()
            app.config["XPBASE_DB"] = None

    return app
