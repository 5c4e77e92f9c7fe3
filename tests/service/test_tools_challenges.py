"""Tools and challenges over HTTP, answers checked against the OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from tests.service.conftest import make_token
from tests.service.test_api import Checked
from xpbase.challenges import load_challenges
from xpbase.db import Database

SAMPLE = Path(__file__).resolve().parents[2] / "supabase" / "rulepacks" / "challenges.yaml"


@pytest.fixture
async def api(client: Client) -> Checked:
    document = await (await client.get("/openapi.json")).get_json()
    return Checked(client, document)


async def people(db: Database) -> dict[str, Any]:
    ids = {}
    for name in ("admin", "member"):
        ids[name] = await db.rpc(
            "ensure_profile", provider="email", subject=f"{name}@example.org", display_name=name.title()
        )
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set role = 'admin' where id = $1", ids["admin"])
    return {**ids, "tokens": {n: make_token(sub=str(p)) for n, p in ids.items()}}


async def test_tool_catalogue_unlock_and_revoke(api: Checked, db: Database) -> None:
    """Anyone lists tools; only admins save and unlock; the member sees how they got each tool."""
    w = await people(db)
    member, admin = w["tokens"]["member"], w["tokens"]["admin"]
    status, catalogue = await api.call("get", "/v1/tools")
    assert status == 200 and catalogue["tools"][0]["tiers"][0]["tier"] == "basic"
    tool = {"slug": "ai_assistant", "name": "AI assistant"}
    status, body = await api.call("post", "/v1/admin/tools", token=member, json=tool)
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, saved = await api.call("post", "/v1/admin/tools", token=admin, json=tool)
    assert status == 200 and saved["slug"] == "ai_assistant"
    path = f"/v1/admin/profiles/{w['member']}/tools"
    status, body = await api.call("post", path, token=admin, json={"tool": "nope", "reason": "r"})
    assert status == 404 and body["error"]["code"] == "unknown_tool"
    status, unlock = await api.call(
        "post", path, token=admin, json={"tool": "ai_assistant", "reason": "beta"}
    )
    assert status == 200 and unlock["has_tool"] and unlock["unlocked_by"] == str(w["admin"])
    status, mine = await api.call("get", "/v1/me/tools", token=member)
    sources = {t["slug"]: [s["source"] for s in t["sources"]] for t in mine["tools"]}
    assert status == 200 and sources["ai_assistant"] == ["admin"] and sources["rank_card"] == ["tier"]
    status, revoked = await api.call(
        "post", f"{path}/ai_assistant/revoke", token=admin, json={"reason": "beta over"}
    )
    assert status == 200 and not revoked["has_tool"]
    status, body = await api.call(
        "post", f"{path}/ai_assistant/revoke", token=admin, json={"reason": "again"}
    )
    assert status == 404 and body["error"]["code"] == "tool_unlock_not_found"


async def test_challenge_catalogue_and_progress(api: Checked, db: Database) -> None:
    """The catalogue is public; a member's progress follows the judge's reports."""
    w = await people(db)
    await load_challenges(db, SAMPLE)
    await db.rpc(
        "service_role_complete_challenge", profile_id=w["member"], challenge="hello-world", judge="ci"
    )
    status, catalogue = await api.call("get", "/v1/challenges")
    assert status == 200 and next(c["slug"] for c in catalogue["challenges"]) == "hello-world"
    status, mine = await api.call("get", "/v1/me/challenges", token=w["tokens"]["member"])
    assert status == 200 and (mine["completed"], mine["xp_earned"]) == (1, 20)
    status, _body = await api.call("get", "/v1/me/challenges")
    assert status == 401
