"""Settings from the environment and `.env` (every one documented in `.env.example`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    host: str = Field(default="127.0.0.1", description="Address the HTTP service binds to.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port the HTTP service binds to.")
    jwt_secret: str = Field(
        default="",
        description="HS256 secret shared with PostgREST (Supabase's JWT secret); at least 32 bytes.",
    )
    jwt_audience: str = Field(default="authenticated", description="The `aud` claim tokens must carry.")
    supabase_dir: Path = Field(
        default=REPO_ROOT / "supabase", description="Folder with migrations/, functions.sql, seed.sql."
    )
    db_pool_min: int = Field(default=1, ge=0, description="Smallest asyncpg pool size.")
    db_pool_max: int = Field(default=10, ge=1, description="Largest asyncpg pool size.")
    log_level: str = Field(default="info", description="Logging level of the service (debug, info, warning).")
    season_finalize_interval: float = Field(
        default=300,
        ge=0,
        description="Seconds between the service's finalize_seasons runs; 0 turns it off (pg_cron does it).",
    )
    leaderboard_compact_interval: float = Field(
        default=10,
        ge=0,
        description="Seconds between foldings of leaderboard count changes; 0 turns it off (pg_cron).",
    )

    @field_validator("data_dir", "supabase_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
