"""Link codes (supabase/sql/85_link_codes.sql): a member's one-time code, and what redeeming it linked."""

from __future__ import annotations

from datetime import datetime

from xpbase.models import Result
from xpbase.models.sign_in import LinkedIdentity


class LinkCode(Result):
    """A one-time code (``ABCDE-FGHJK``) valid ``ttl_seconds`` until ``expires_at`` (UTC)."""

    code: str
    expires_at: datetime
    ttl_seconds: int


RESULTS = {"create_link_code": LinkCode, "service_role_redeem_link_code": LinkedIdentity}
