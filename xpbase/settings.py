"""Settings from the environment and `.env` (every one documented in `.env.example`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """xpbase settings.

    Names are the environment variables with the ``XPBASE_`` prefix, except
    ``DATABASE_URL`` which keeps its conventional name. Values in a ``.env``
    file in the working directory are read too; the environment wins.
    """

    model_config = SettingsConfigDict(env_prefix="XPBASE_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="Postgres URL. Unset: the embedded server in data_dir is started and used.",
    )
    data_dir: Path = Field(
        default=REPO_ROOT / ".xpbase", description="Where the embedded server keeps its data."
    )
    embedded_tcp: bool = Field(
        default=True,
        description="The embedded server also listens on 127.0.0.1 at a free port remembered in "
        "data_dir/pg-port, and `xpbase db url` prints that TCP URL (what the Supabase CLI needs); "
        "off: Unix socket only.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP service binds to.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port the HTTP service binds to.")
    jwt_secret: str = Field(
        default="",
        description="HS256 secret shared with PostgREST (Supabase's JWT secret); at least 32 bytes.",
    )
    jwt_audience: str = Field(default="authenticated", description="The `aud` claim tokens must carry.")
    supabase_dir: Path = Field(
        default=REPO_ROOT / "supabase",
        description="Folder with migrations/, functions.sql and sql/, seed.sql.",
    )
    review_horizon_days: int = Field(
        default=14, ge=1, le=60, description="How far ahead (days) the resume review matcher looks for slots."
    )
    review_session_minutes: int = Field(
        default=45,
        ge=15,
        le=240,
        description="Length (minutes) of a resume review session the matcher books.",
    )
    db_pool_min: int = Field(default=1, ge=0, description="Smallest asyncpg pool size.")
    db_pool_max: int = Field(default=10, ge=1, description="Largest asyncpg pool size.")
    award_group_commit: bool = Field(
        default=True,
        description="The bot's passive XP goes through the group commit (xpbase/group_commit.py): awards "
        "arriving within award_group_window_ms share one transaction, each caller still gets its own receipt "
        "or error after the commit. false: one transaction per award.",
    )
    award_group_window_ms: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="How long (ms) a group of awards stays open after its first award (0: only the awards "
        "made in the same event loop turn).",
    )
    award_group_max_batch: int = Field(
        default=64,
        ge=1,
        le=500,
        description="A group is sent as soon as this many awards wait (up to 64 keeps its subtransactions "
        "within Postgres' per-backend cache).",
    )
    log_level: str = Field(default="info", description="Logging level of the service (debug, info, warning).")
    discord_token: str | None = Field(
        default=None,
        validation_alias="DISCORD_TOKEN",
        description="The Discord bot's token. Set: `xpbase bot` runs, and `xpbase serve` runs the bot too.",
    )
    discord_api_url: str = Field(
        default="https://discord.com/api/v10",
        description="Discord's REST API base the bot talks to (tests point it at a stand-in on loopback).",
    )
    env: Literal["development", "production"] = Field(
        default="development",
        description="development allows `xpbase token` (access tokens for any profile) and `xpbase demo`; "
        "production refuses both.",
    )
    discord_test_guild: int | None = Field(
        default=None,
        description="A guild (server) id: the bot copies its slash commands there and syncs them at every "
        "start (development; guild commands update at once).",
    )
    supabase_url: str | None = Field(
        default=None,
        validation_alias="SUPABASE_URL",
        description="A Supabase project's URL. With SUPABASE_SERVICE_ROLE_KEY the bot calls the database "
        "through PostgREST instead of asyncpg.",
    )
    supabase_service_role_key: str | None = Field(
        default=None,
        validation_alias="SUPABASE_SERVICE_ROLE_KEY",
        description="The project's service_role key (a secret: it bypasses row-level security).",
    )

    # Access tokens (service/tokens.py).
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = Field(
        default="HS256",
        description="How access tokens are signed: HS256 with jwt_secret, RS256/ES256 with jwt_private_key.",
    )
    jwt_private_key: SecretStr = Field(
        default=SecretStr(""),
        description="RS256/ES256 signing key: a PEM (PKCS#8 or traditional) or the path of a PEM file.",
    )
    jwt_key_id: str = Field(
        default="", description="`kid` of the signing key; default: its RFC 7638 thumbprint (none for HS256)."
    )
    jwt_issuer: str = Field(default="xpbase", min_length=1, description="The `iss` tokens carry and need.")
    jwt_access_ttl_seconds: int = Field(default=3600, ge=60, le=3600, description="Access token lifetime, s.")

    # Supabase Auth mode (service/lib/supabase_auth.py): trust access tokens issued by GoTrue.
    supabase_auth: Literal["off", "beside", "only"] = Field(
        default="off",
        description="off: only xpbase's own tokens; beside: GoTrue's too; only: GoTrue's alone "
        "(supabase-js sign-in).",
    )
    supabase_auth_url: str = Field(
        default="",
        description="The project's auth URL (https://<ref>.supabase.co/auth/v1): "
        "the `iss` GoTrue tokens carry.",
    )
    supabase_jwt_secret: SecretStr = Field(
        default=SecretStr(""),
        description="The project's JWT secret (HS256 GoTrue tokens); empty: none accepted.",
    )
    supabase_jwks_url: str = Field(
        default="",
        description="JWKS of the project's asymmetric signing keys (RS256/ES256), read at startup and again "
        "as the two settings below say; empty: <supabase_auth_url>/.well-known/jwks.json when no JWT secret "
        "is set.",
    )
    supabase_jwks_max_age_seconds: float = Field(
        default=600,
        gt=0,
        le=86400,
        description="The JWKS is read again on the first lookup after it is this old (s; a key the project "
        "removed stops verifying within this time).",
    )
    supabase_jwks_refetch_interval_seconds: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="A token whose kid the cached JWKS lacks (a key rotated in) makes the service read it "
        "again, at most once per this many seconds since the last read (s).",
    )
    supabase_jwks_timeout_seconds: float = Field(
        default=5, gt=0, le=60, description="Timeout of one JWKS read (s)."
    )

    # Refresh tokens and sessions.
    refresh_token_ttl_seconds: int = Field(
        default=30 * 24 * 3600, ge=3600, description="A refresh token expires this long after issue (s)."
    )
    refresh_token_reuse_grace_seconds: int = Field(
        default=10,
        ge=0,
        le=300,
        description="Presenting the immediate parent of the live refresh token again within this many "
        "seconds returns the live token instead of revoking the family (concurrent refreshes, lost answers).",
    )
    auth_cookie_samesite: Literal["lax", "strict", "none"] = Field(
        default="lax", description="SameSite of the auth cookies (they are always HttpOnly and Secure)."
    )

    # OAuth sign-in (service/oauth.py).
    oauth_redirect_uris: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated redirect URIs a sign-in may return to; matched exactly.",
    )
    forwarded_for_hops: int = Field(
        default=0,
        ge=0,
        le=10,
        description="Reverse proxies in front of the service that append the client's address to "
        "X-Forwarded-For; the client is the address the outermost of them saw (0: the connection's peer). "
        "Used for per-client rate limits (sign-in starts).",
    )
    oauth_state_ttl_seconds: int = Field(
        default=600, ge=60, le=3600, description="How long a sign-in may take, authorize to callback (s)."
    )
    discord_client_id: str = Field(default="", description="Discord application's OAuth2 client id.")
    discord_client_secret: SecretStr = Field(default=SecretStr(""), description="Discord OAuth2 secret.")
    discord_authorize_url: str = Field(
        default="https://discord.com/oauth2/authorize", description="Discord's OAuth2 authorize page."
    )
    discord_token_url: str = Field(
        default="https://discord.com/api/oauth2/token", description="Discord's OAuth2 token endpoint."
    )
    discord_userinfo_url: str = Field(
        default="https://discord.com/api/users/@me", description="Discord's current-user endpoint."
    )
    github_client_id: str = Field(default="", description="GitHub OAuth app's client id.")
    github_client_secret: SecretStr = Field(default=SecretStr(""), description="GitHub OAuth app secret.")
    github_authorize_url: str = Field(
        default="https://github.com/login/oauth/authorize", description="GitHub's OAuth authorize page."
    )
    github_token_url: str = Field(
        default="https://github.com/login/oauth/access_token", description="GitHub's OAuth token endpoint."
    )
    github_userinfo_url: str = Field(
        default="https://api.github.com/user", description="GitHub's current-user endpoint."
    )
    google_client_id: str = Field(default="", description="Google OAuth client id (web application).")
    google_client_secret: SecretStr = Field(default=SecretStr(""), description="Google OAuth client secret.")
    google_discovery_url: str = Field(
        default="https://accounts.google.com/.well-known/openid-configuration",
        description="Google's OpenID Connect discovery document (endpoints, issuer, JWKS).",
    )

    # The job queue (xpbase/worker.py): periodic tasks as cron schedules (5 fields, or 6 with seconds last).
    worker_in_process: bool = Field(
        default=True,
        description="`xpbase serve` runs a queue worker beside the service (false: run `xpbase worker`).",
    )
    worker_concurrency: int = Field(
        default=8, ge=1, le=100, description="Jobs one worker runs at once (deliveries wait on the network)."
    )
    schedule_finalize_seasons: str = Field(
        default="*/5 * * * *",
        description="Cron schedule of finalize_seasons (empty: not scheduled; pg_cron).",
    )
    schedule_compact_leaderboards: str = Field(
        default="* * * * * */10",
        description="Cron schedule of the leaderboard count folding (6th field: seconds; empty: off).",
    )
    schedule_purge_auth: str = Field(
        default="17 * * * *", description="Cron schedule of service_role_purge_auth (empty: not scheduled)."
    )
    schedule_retention: str = Field(
        default="37 3 * * *", description="Cron schedule of chat/notification retention (empty: off)."
    )
    schedule_streak_reminders: str = Field(
        default="*/15 * * * *", description="Cron schedule of the daily streak reminders (empty: off)."
    )
    schedule_match_reviews: str = Field(
        default="*/10 * * * *", description="Cron schedule of resume review matching (empty: off)."
    )
    schedule_reconcile_payments: str = Field(
        default="*/5 * * * *",
        description="Cron schedule of the Razorpay reconciliation of open orders (empty: off; nothing is "
        "done while Razorpay is not configured).",
    )
    schedule_sweep_deliveries: str = Field(
        default="* * * * *",
        description="Cron schedule of the outbox sweep (overdue or abandoned deliveries).",
    )
    chat_socket_rate: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="Chat frames a socket may post per second on average (a token bucket in the socket, "
        "before the database; frames beyond it are answered rate_limited without a database call).",
    )
    chat_socket_burst: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Chat frames a socket may post at once before chat_socket_rate applies.",
    )
    chat_max_sockets_per_member: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Open /v1/chat websockets one member may hold per service process (more: 429).",
    )
    chat_retention_days: int = Field(default=90, ge=1, le=36500, description="Chat messages are kept (days).")
    notification_retention_days: int = Field(
        default=180, ge=1, le=36500, description="Notifications are kept this many days."
    )
    delivery_retention_days: int = Field(
        default=30, ge=1, le=36500, description="Finished deliveries (sent, dead) are kept this many days."
    )

    # Deliveries (xpbase/delivery.py): retries and the channels.
    delivery_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Attempts of one delivery before it is dead (listed for admins)."
    )
    delivery_backoff_base_seconds: float = Field(
        default=30, ge=0.01, le=86400, description="First retry after about this long; doubles each attempt."
    )
    delivery_backoff_max_seconds: float = Field(
        default=3600, ge=0.01, le=604800, description="Longest wait between two attempts (before jitter)."
    )
    delivery_lease_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="A delivery a worker claimed and did not finish within this long is tried again.",
    )
    delivery_timeout_seconds: float = Field(
        default=10, gt=0, le=120, description="HTTP and SMTP timeout of one delivery attempt (s)."
    )
    fcm_project_id: str = Field(default="", description="Firebase project id (FCM HTTP v1). Empty: no FCM.")
    fcm_service_account_file: Path | None = Field(
        default=None,
        description="The Firebase service account's JSON key file (its token_uri is where tokens come from).",
    )
    fcm_endpoint: str = Field(
        default="https://fcm.googleapis.com", description="FCM's base URL (messages:send lives under it)."
    )
    vapid_private_key: SecretStr = Field(
        default=SecretStr(""),
        description="Web Push VAPID private key: base64url raw (32 bytes), a PEM, or a PEM file's path. "
        "Empty: no Web Push.",
    )
    vapid_subject: str = Field(
        default="mailto:admin@localhost", description="VAPID `sub` claim: a mailto: or https: contact."
    )

    # Outgoing mail (xpbase/mail.py).
    smtp_host: str = Field(default="", description="SMTP server. Empty: no email is sent.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 TLS).")
    smtp_tls: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (upgrade after connecting), tls (implicit), none (local only).",
    )
    smtp_user: str = Field(default="", description="SMTP user name (empty: no login).")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP password.")
    smtp_from: str = Field(default="xpbase <noreply@localhost>", description="The From address of mail.")

    razorpay_key_id: str = Field(
        default="",
        description="Razorpay API key id (rzp_live_... or rzp_test_...); unset turns payments off (503).",
    )
    razorpay_key_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Razorpay API key secret: Basic auth and the checkout signature key. Never logged.",
    )
    razorpay_webhook_secret: SecretStr = Field(
        default=SecretStr(""),
        description="The Razorpay webhook's secret (X-Razorpay-Signature key). Unset: webhooks refused.",
    )
    razorpay_api_url: str = Field(
        default="https://api.razorpay.com",
        description="Razorpay API base URL (without /v1); tests point the SDK at a local stand-in.",
    )
    payment_order_ttl_seconds: int = Field(
        default=1800,
        ge=60,
        le=86400,
        description="Seconds an XP or item order stays payable before it expires.",
    )
    payment_reconcile_after_seconds: int = Field(
        default=900,
        ge=0,
        description="Orders still open this many seconds after creation are checked with Razorpay by "
        "reconcile_open_orders (xpbase/razorpay_gateway.py).",
    )

    # The REST API (service/).
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins (scheme://host[:port]) of browser frontends allowed to call the "
        "API across origins, with credentials (cookies, Authorization). Empty: no cross-origin access.",
    )
    public_url: str = Field(
        default="",
        description="The API's public base URL, the OpenAPI `servers` entry (default: http://HOST:PORT).",
    )

    @field_validator("data_dir", "supabase_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("oauth_redirect_uris", "cors_origins", mode="before")
    @classmethod
    def _split_uris(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("oauth_redirect_uris")
    @classmethod
    def _check_uris(cls, value: list[str]) -> list[str]:
        for uri in value:
            parts = urlsplit(uri)
            if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
                raise ValueError(f"redirect URI {uri!r} must be an absolute http(s) URL without a fragment")
            if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
                raise ValueError(f"redirect URI {uri!r} must use https (http is allowed for loopback only)")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("https", "http")
                or not parts.hostname
                or origin != f"{parts.scheme}://{parts.netloc}"
            ):
                raise ValueError(f"CORS origin {origin!r} must be scheme://host[:port], no path or '*'")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
