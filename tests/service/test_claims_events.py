"""Claims, point values and layer events over HTTP, answers checked against the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from tests.helpers import load_career_pack
from tests.service.conftest import make_token
from tests.service.test_api import Checked
from xpbase.db import Database


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
    await load_career_pack(db)
    return {**ids, "tokens": {n: make_token(sub=str(p)) for n, p in ids.items()}}


async def test_claim_review_flow_and_point_values(api: Checked, db: Database) -> None:
    """A member claims; members may not read the queue; the admin approves twice and XP lands once."""
    w = await people(db)
    status, values = await api.call("get", "/v1/pointvalues")
    assert status == 200 and any(a["slug"] == "mock_interview" for a in values["activities"])

    status, claim = await api.call(
        "post",
        "/v1/claims",
        token=w["tokens"]["member"],
        json={"activity": "mock_interview", "note": "With Ana", "evidence_url": "https://notes.example/1"},
    )
    assert status == 201 and claim["status"] == "pending"
    status, refused = await api.call(
        "post", "/v1/claims", token=w["tokens"]["member"], json={"activity": "message"}
    )
    assert status == 400 and refused["error"]["code"] == "activity_not_claimable"
    status, body = await api.call("get", "/v1/claims", token=w["tokens"]["member"])
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, queue = await api.call("get", "/v1/claims?status=pending", token=w["tokens"]["admin"])
    assert status == 200 and [c["id"] for c in queue["claims"]] == [claim["id"]]
    for _ in range(2):
        status, approved = await api.call(
            "post",
            f"/v1/claims/{claim['id']}/review",
            token=w["tokens"]["admin"],
            json={"decision": "approve"},
        )
        assert status == 200 and approved["granted"] == 25
    status, rejected = await api.call(
        "post",
        f"/v1/claims/{claim['id']}/review",
        token=w["tokens"]["admin"],
        json={"decision": "reject", "reason": "late"},
    )
    assert status == 409 and rejected["error"]["code"] == "claim_already_decided"
    status, mine = await api.call("get", "/v1/me/claims", token=w["tokens"]["member"])
    assert status == 200 and mine["claims"][0]["status"] == "approved"
    assert await db.pool.fetchval("select xp from public.profiles where id = $1", w["member"]) == 25


async def test_events_gate_signup_and_check_in(api: Checked, db: Database) -> None:
    """An admin makes a gated event and an open one; the gate answers 403 with its reason; check-in pays."""
    w = await people(db)
    start = datetime.now(UTC) + timedelta(days=1)
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()}
    status, forbidden = await api.call(
        "post",
        "/v1/layer-events",
        token=w["tokens"]["member"],
        json={"title": "x", "layer": "reality", **window},
    )
    assert status == 403 and forbidden["error"]["code"] == "forbidden"
    status, gated = await api.call(
        "post",
        "/v1/layer-events",
        token=w["tokens"]["admin"],
        json={"title": "Summit", "layer": "reality", "min_status": "grounded", "location": "Hall", **window},
    )
    assert status == 201 and gated["kind"] == "event"
    status, open_event = await api.call(
        "post",
        "/v1/layer-events",
        token=w["tokens"]["admin"],
        json={
            "title": "Open",
            "layer": "reality",
            "location": "Park",
            "check_in_code": "PARK-7",
            "xp": 40,
            **window,
        },
    )
    assert status == 201
    status, refused = await api.call(
        "post", f"/v1/layer-events/{gated['id']}/signup", token=w["tokens"]["member"]
    )
    assert status == 403 and refused["error"]["code"] == "event_gate_refused"
    assert "needs reality status 'grounded', you are 'dormant'" in refused["error"]["message"]
    status, joined = await api.call(
        "post", f"/v1/layer-events/{open_event['id']}/signup", token=w["tokens"]["member"]
    )
    assert status == 200 and joined["my_status"] == "confirmed"
    status, listed = await api.call("get", "/v1/layer-events?layer=reality", token=w["tokens"]["member"])
    assert status == 200 and {e["title"] for e in listed["events"]} == {"Summit", "Open"}
    status, anon_list = await api.call("get", "/v1/layer-events")
    assert status == 200 and all(e["my_status"] is None for e in anon_list["events"])
    await db.pool.execute(
        "update public.events set starts_at = now() - interval '5 minutes' where id = $1", open_event["id"]
    )
    status, wrong = await api.call(
        "post",
        f"/v1/layer-events/{open_event['id']}/check-in",
        token=w["tokens"]["member"],
        json={"code": "nope"},
    )
    assert status == 403 and wrong["error"]["code"] == "wrong_check_in_code"
    status, attended = await api.call(
        "post",
        f"/v1/layer-events/{open_event['id']}/check-in",
        token=w["tokens"]["member"],
        json={"code": "PARK-7"},
    )
    assert status == 200 and attended["granted"] == 40
    status, again = await api.call(
        "post",
        f"/v1/layer-events/{open_event['id']}/attendance",
        token=w["tokens"]["admin"],
        json={"member_id": str(w["member"])},
    )
    assert status == 200 and again["granted"] == 0
    status, left = await api.call(
        "delete", f"/v1/layer-events/{gated['id']}/signup", token=w["tokens"]["member"]
    )
    assert status == 200 and left["my_status"] is None
