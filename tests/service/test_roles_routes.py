"""The role matrix over HTTP: every role against every privileged route (admin and moderation routes).

Each role gets a token for a profile holding it; each route answers 2xx for the
roles whose permissions allow it and 403 ``forbidden`` for everyone else.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import pytest
from quart.typing import TestClientProtocol as Client

from tests.helpers import award, new_profile
from tests.service.conftest import make_token
from tests.sql.engine import T0
from tests.sql.test_roles import ROLES, with_role
from xpbase.db import Database

ADMINS = frozenset({"admin"})
SOON = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
MODERATORS = frozenset({"admin", "moderator"})

#: (method, path with {target}, JSON body, roles allowed)
ROUTES: dict[str, tuple[str, str, dict[str, Any] | None, frozenset[str]]] = {
    "adjust_xp": (
        "POST",
        "/v1/admin/profiles/{target}/xp-adjustments",
        {"amount": 5, "reason": "matrix", "idempotency_key": "route-matrix"},
        ADMINS,
    ),
    "set_level": ("POST", "/v1/admin/profiles/{target}/level", {"level": 2, "reason": "matrix"}, ADMINS),
    "reset_xp": ("POST", "/v1/admin/profiles/{target}/xp-reset", {"reason": "matrix"}, ADMINS),
    "adjust_points": (
        "POST",
        "/v1/admin/points",
        {"profile_id": "{target}", "amount": 5, "reason": "matrix", "idempotency_key": "route-pts"},
        ADMINS,
    ),
    "set_role": ("PUT", "/v1/admin/profiles/{target}/role", {"role": "student", "reason": "matrix"}, ADMINS),
    "warn": (
        "POST",
        "/v1/admin/profiles/{target}/moderation",
        {"action": "warn", "reason": "matrix"},
        MODERATORS,
    ),
    "suspend": (
        "POST",
        "/v1/admin/profiles/{target}/moderation",
        {"action": "suspend", "reason": "matrix", "until": SOON},
        MODERATORS,
    ),
    "unsuspend": (
        "POST",
        "/v1/admin/profiles/{target}/moderation",
        {"action": "unsuspend", "reason": "matrix"},
        MODERATORS,
    ),
    "read_record": ("GET", "/v1/admin/profiles/{target}/moderation", None, MODERATORS),
    "redemption_queue": ("GET", "/v1/admin/redemptions", None, MODERATORS),
    "rules_diff": (
        "POST",
        "/v1/admin/rules/diff",
        {"change": {"activities": {"message": {"base_xp": 20}}}, "max_members": 1},
        ADMINS,
    ),
    "rules_apply": ("POST", "/v1/admin/rules/apply", {"change": {}, "reason": "matrix"}, ADMINS),
}


def fill(value: Any, target: UUID) -> Any:
    if isinstance(value, str):
        return value.replace("{target}", str(target))
    if isinstance(value, dict):
        return {k: fill(v, target) for k, v in value.items()}
    return value


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_every_role_against_every_privileged_route(client: Client, db: Database, route: str) -> None:
    method, path, body, allowed = ROUTES[route]
    people = {role: await with_role(db, role) for role in ROLES}
    outcome: dict[str, int] = {}
    for role in ROLES:
        target = await new_profile(db, f"Target of {role}")
        await award(db, target, "event_attendance", f"route-{role}", amount=300, occurred_at=T0)
        token = make_token(sub=str(people[role]))
        response = await client.open(
            fill(path, target),
            method=method,
            json=fill(body, target),
            headers={"Authorization": f"Bearer {token}"},
        )
        outcome[role] = response.status_code
        if response.status_code == 403:
            assert (await response.get_json())["error"]["code"] == "forbidden"
    assert {role: status < 300 for role, status in outcome.items()} == {
        role: role in allowed for role in ROLES
    }, outcome


async def test_my_permissions_and_my_record(client: Client, db: Database) -> None:
    moderator, member = await with_role(db, "moderator"), await new_profile(db, "Member")
    mod = await client.get(
        "/v1/me/permissions", headers={"Authorization": f"Bearer {make_token(sub=str(moderator))}"}
    )
    assert mod.status_code == 200, await mod.get_data()
    assert "suspend_members" in (await mod.get_json())["permissions"]
    await client.post(
        f"/v1/admin/profiles/{member}/moderation",
        json={"action": "warn", "reason": "Mind the language"},
        headers={"Authorization": f"Bearer {make_token(sub=str(moderator))}"},
    )
    mine = await client.get(
        "/v1/me/moderation", headers={"Authorization": f"Bearer {make_token(sub=str(member))}"}
    )
    record = await mine.get_json()
    assert [a["reason"] for a in record["actions"]] == ["Mind the language"] and record["banned"] is False
