"""The app factory."""

from __future__ import annotations

from quart import Quart

from service.blueprints import (
    admin,
    api_docs,
    badges,
    challenges,
    chat,
    claims,
    email_sign_in,
    event_pages,
    events,
    health,
    imports,
    layer_events,
    leaderboards,
    ledger,
    levels,
    link_codes,
    member_data,
    moderation,
    notifications,
    oauth,
    pages,
    payments,
    points,
    preferences,
    profile_cards,
    profiles,
    redemptions,
    reviews,
    rules,
    seasons,
    sessions,
    stats,
    store,
    streaks,
    tools,
)
from service.lib import supabase_auth
from service.lib.access import origin_of
from service.lib.api_error import register_error_handlers
from service.lib.cors import enable_cors
from service.lib.oauth_providers import configured_providers
from service.lib.openapi import configure_openapi
from service.lib.relay import Relay
from service.lib.strict_json import StrictRequest
from service.lib.tokens import load_token_keys
from xpbase.db import Database, resolve_url
from xpbase.settings import Settings, get_settings

# Every blueprint, one per resource; a new one is one line here and one in the import above.
BLUEPRINTS = [
    health.blueprint,
    api_docs.blueprint,
    oauth.blueprint,
    email_sign_in.blueprint,
    sessions.blueprint,
    link_codes.blueprint,
    moderation.blueprint,
    profiles.blueprint,
    badges.blueprint,
    profile_cards.blueprint,
    ledger.blueprint,
    leaderboards.blueprint,
    seasons.blueprint,
    streaks.blueprint,
    stats.blueprint,
    levels.blueprint,
    notifications.blueprint,
    preferences.blueprint,
    admin.blueprint,
    rules.blueprint,
    events.blueprint,
    chat.blueprint,
    pages.blueprint,
    event_pages.blueprint,
    points.blueprint,
    store.blueprint,
    redemptions.blueprint,
    payments.blueprint,
    reviews.blueprint,
    claims.blueprint,
    layer_events.blueprint,
    member_data.blueprint,
    imports.blueprint,
    tools.blueprint,
    challenges.blueprint,
]


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Quart:
    """Build the Quart app.

    ``settings`` defaults to the environment's; unusable token settings raise
    service.lib.tokens.SettingsError here, before anything is served. ``database`` lets tests (and
    callers that own a pool) hand in a ready xpbase.db.Database; otherwise one
    is opened before serving (starting the embedded Postgres when
    ``DATABASE_URL`` is unset) and closed after.
    """
    settings = settings or get_settings()
    app = Quart("xpbase")
    app.request_class = StrictRequest
    app.config["XPBASE_SETTINGS"] = settings
    app.config["XPBASE_TOKEN_KEYS"] = load_token_keys(settings)
    supabase_auth.install(app, settings)
    app.config["XPBASE_OAUTH_PROVIDERS"] = configured_providers(settings)
    app.config["XPBASE_TRUSTED_ORIGINS"] = frozenset(origin_of(uri) for uri in settings.oauth_redirect_uris)
    app.config["XPBASE_DB"] = database

    configure_openapi(app, settings)
    register_error_handlers(app)
    enable_cors(app, settings)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    owns_database = database is None

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

    @app.after_serving
    async def close_database() -> None:
        if app.config.get("XPBASE_RELAY") is not None:
            await app.config["XPBASE_RELAY"].stop()
            app.config["XPBASE_RELAY"] = None
        if owns_database and app.config["XPBASE_DB"] is not None:
            await app.config["XPBASE_DB"].close()
            app.config["XPBASE_DB"] = None

    return app
