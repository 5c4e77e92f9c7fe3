"""Accounts (issue 13): email sign-in codes, roles and moderation, as the service and the bot read them.

SQL: supabase/sql/12_roles.sql, 13_moderation.sql and 81_email_codes.sql.
Times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from xpbase.models import Result
from xpbase.models.sign_in import LinkedIdentity, Session


class EmailCode(Result):
    """service_role_request_email_code: the code to mail (6 digits), when it expires, its lifetime (s)."""

    code: str = Field(pattern=r"^[0-9]{6}$")
    expires_at: datetime
    ttl_seconds: int


class EmailSignedIn(Result):
    """A right code: the email identity signed in; ``created`` when this made the profile."""

    status: Literal["signed_in"]
    created: bool
    session: Session


class EmailLinked(Result):
    """A right code presented by a signed-in member: the address is now an identity of their profile."""

    status: Literal["linked"]
    link: LinkedIdentity


class EmailCodeWrong(Result):
    """A wrong code, counted: ``locked`` when no tries are left (ask for a new code)."""

    status: Literal["wrong", "locked"]
    tries_left: int


EmailCodeChecked = Annotated[EmailSignedIn | EmailLinked | EmailCodeWrong, Field(discriminator="status")]
"""service_role_verify_email_code's answer, told apart by ``status``."""


class RoleChange(Result):
    """admin_set_role / service_role_set_role: the role before and after (``changed`` false: same)."""

    profile_id: UUID
    display_name: str
    from_role: str
    role: str
    changed: bool


class ModerationAction(Result):
    """A warning or suspension: reason, who (null actor_id: the backend), when, until (null: a ban)."""

    id: int
    profile_id: UUID
    kind: Literal["warning", "suspension"]
    reason: str
    actor_id: UUID | None
    actor_role: str
    created_at: datetime
    until: datetime | None
    lifted_at: datetime | None
    lifted_by: UUID | None
    lift_reason: str | None


class Moderated(Result):
    """moderate / service_role_moderate: the new record (null for unsuspend), suspensions lifted,
    sessions ended."""

    action: Literal["warn", "suspend", "unsuspend"]
    profile_id: UUID
    lifted: int
    sessions_revoked: int
    record: ModerationAction | None


class ModerationRecord(Result):
    """moderation_record: a member's actions, newest first, and the suspension in force (if any)."""

    profile_id: UUID
    suspended_until: datetime | None
    banned: bool
    actions: list[ModerationAction]


class Permissions(Result):
    """my_permissions: the public.permissions slugs the caller's role holds."""

    permissions: list[str]


RESULTS = {
    "service_role_request_email_code": EmailCode,
    "service_role_verify_email_code": EmailCodeChecked,
    "admin_set_role": RoleChange,
    "service_role_set_role": RoleChange,
    "moderate": Moderated,
    "service_role_moderate": Moderated,
    "moderation_record": ModerationRecord,
    "my_permissions": Permissions,
}
