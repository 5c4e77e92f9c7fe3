"""Sign-in, OAuth states and sessions (supabase/sql/80_sign_in.sql), as the service reads them.

Secrets never come back: the functions take sha256 hashes and answer ids,
outcomes and the profile summary that access tokens are made from. Times are
UTC; ``refresh_expires_at`` is when the family's live refresh token expires.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from xpbase.models import Result


class ProfileSummary(Result):
    """A profile as sign-in answers it; ``role`` is ``profiles.role``, the app role access tokens carry."""

    id: UUID
    display_name: str
    avatar_url: str | None
    role: str = Field(pattern=r"^[a-z][a-z_]{1,31}$")
    """A ``public.roles`` slug: member, student, company, university, professional, moderator or admin."""


class SignedIn(Result):
    """service_role_sign_in: the identity's profile, ``created`` when this sign-in made it."""

    profile_id: UUID
    created: bool
    user: ProfileSummary


class LinkedIdentity(Result):
    """An identity attached to a profile (service_role_link_identity, service_role_redeem_link_code).

    ``already_linked`` is true when the profile had that identity already
    (nothing changed but the provider-side display name).
    """

    profile_id: UUID
    provider: str
    subject: str
    display_name: str | None
    already_linked: bool
    user: ProfileSummary


class OAuthStateRefused(Result):
    """A sign-in state that may not be used: unknown (never issued, tampered, used), for another
    provider, issued to another browser, or expired. It is spent all the same."""

    status: Literal["unknown", "other_provider", "other_browser", "expired"]


class OAuthState(Result):
    """A sign-in state that may be used: what the authorize step remembered for the callback.

    ``link_profile_id`` is the profile to link the identity to (None for a
    sign-in); ``cookie_mode``: the tokens go to cookies.
    """

    status: Literal["ok"]
    provider: str
    redirect_uri: str
    code_verifier: str
    nonce: str
    link_profile_id: UUID | None
    cookie_mode: bool


TakenOAuthState = Annotated[OAuthState | OAuthStateRefused, Field(discriminator="status")]
"""service_role_take_oauth_state's answer: an ``OAuthState`` when ``status`` is ok, else refused."""


class Session(Result):
    """A session (refresh-token family) started: its id, profile, sign-in provider (None when none)."""

    session_id: UUID
    profile_id: UUID
    provider: str | None
    refresh_expires_at: datetime
    user: ProfileSummary


class RefreshedSession(Session):
    """A refresh that worked: ``rotated`` (the token was live and is now spent) or ``reissued`` (the
    live token's parent again within the grace window: nothing changed)."""

    outcome: Literal["rotated", "reissued"]


class ReuseDetected(Result):
    """A spent refresh token presented again outside the grace window: the session has been revoked."""

    outcome: Literal["reuse_detected"]
    session_id: UUID
    profile_id: UUID


Refresh = Annotated[RefreshedSession | ReuseDetected, Field(discriminator="outcome")]
"""service_role_refresh_session's answer, told apart by ``outcome``."""


class SignedOut(Result):
    """How many sessions a sign-out revoked (0: unknown or already ended), and whose."""

    revoked: int
    profile_id: UUID | None
    session_id: UUID | None


class PurgedAuth(Result):
    """How many rows service_role_purge_auth deleted, per kind."""

    oauth_states: int
    refresh_tokens: int
    sessions: int
    link_codes: int


RESULTS = {
    "service_role_sign_in": SignedIn,
    "service_role_link_identity": LinkedIdentity,
    "service_role_take_oauth_state": TakenOAuthState,
    "service_role_create_session": Session,
    "service_role_refresh_session": Refresh,
    "service_role_sign_out": SignedOut,
    "service_role_purge_auth": PurgedAuth,
}
