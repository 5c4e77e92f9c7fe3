"""POST /v1/admin/rules/diff and /apply: an admin previews a rule change (nothing kept) and applies it; bad
bodies are 400 and an unknown activity 404, each changing nothing. Who may call them is in
test_roles_routes.py (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from tests.helpers import award, new_profile
from tests.service.conftest import make_token
from xpbase.db import Database
from xpbase.models.rules import RuleChangeOutcome


async def admin_token(db: Database) -> dict[str, str]:
    admin = await new_profile(db, "Admin")
    await db.rpc("service_role_grant_admin", profile_id=admin)
    return {"Authorization": f"Bearer {make_token(sub=str(admin))}"}


async def rules_state(db: Database) -> tuple[Any, ...]:
    row = await db.pool.fetchrow(
        "select (select base_xp from public.activity_types where slug = 'message') as base_xp,"
        " (select count(*) from public.xp_ledger) as rows,"
        " (select count(*) from public.rule_changes) as changes"
    )
    return tuple(row)


async def test_an_admin_previews_then_applies(client: Client, db: Database) -> None:
    """One message worth 15 XP becomes 25: the diff says +10 and keeps nothing; apply does it."""
    headers = await admin_token(db)
    member = await new_profile(db, "Eve")
    when = (datetime.now(UTC) - timedelta(days=4)).replace(hour=12, minute=0, second=0, microsecond=0)
    await award(db, member, "message", "eve-0", occurred_at=when)
    before = await rules_state(db)
    body = {"change": {"activities": {"message": {"base_xp": 25}}}, "max_members": 5}
    response = await client.post("/v1/admin/rules/diff", json=body, headers=headers)
    assert response.status_code == 200, await response.get_data()
    preview = RuleChangeOutcome.model_validate(await response.get_json())
    assert (preview.dry_run, preview.xp_delta, [(m.profile_id, m.xp) for m in preview.members]) == (
        True,
        10,
        [(member, 25)],
    )
    assert await rules_state(db) == before

    response = await client.post("/v1/admin/rules/apply", json={**body, "reason": "more"}, headers=headers)
    assert response.status_code == 200, await response.get_data()
    applied = RuleChangeOutcome.model_validate(await response.get_json())
    assert (applied.dry_run, applied.xp_delta, applied.rule_change_id is not None) == (False, 10, True)
    assert await db.pool.fetchval("select xp from public.profiles where id = $1", member) == 25


SCHEMA = (400, "invalid_request")  # refused by the body's schema (xpbase.rules.RuleChange)
SQL = (400, "invalid_argument")  # refused by the SQL (XPBAD)
MARS = {"cap_groups": {"discord": {"time_zone": "Mars/Olympus"}}}


@pytest.mark.parametrize(
    ("path", "body", "answer"),
    [
        ("diff", {}, SCHEMA),
        ("diff", {"change": []}, SCHEMA),
        ("diff", {"change": {"badges": {}}}, SCHEMA),
        ("diff", {"change": {"activities": {"message": {"base_xp": 1.5}}}}, SCHEMA),
        ("diff", {"change": {}, "max_members": 1001}, SCHEMA),
        ("apply", {"change": {}}, SCHEMA),
        ("apply", {"change": {}, "reason": ""}, SCHEMA),
        ("diff", {"change": MARS}, SQL),
        ("diff", {"change": {"level_curve": [{"level": 2, "xp_required": 1}]}}, SQL),
        ("apply", {"change": {"multipliers": [{"id": 987654, "delete": True}]}, "reason": "r"}, SQL),
        ("diff", {"change": {"activities": {"nope": {"base_xp": 1}}}}, (404, "unknown_activity")),
    ],
)
async def test_bad_bodies_are_refused_and_change_nothing(
    client: Client, db: Database, path: str, body: dict[str, Any], answer: tuple[int, str]
) -> None:
    headers = await admin_token(db)
    before = await rules_state(db)
    response = await client.post(f"/v1/admin/rules/{path}", json=body, headers=headers)
    assert (response.status_code, (await response.get_json())["error"]["code"]) == answer
    assert await rules_state(db) == before
