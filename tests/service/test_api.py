"""The game over HTTP: the seed systems' endpoints walked as anon, two members and an admin.

Every answer is checked against the response schema the OpenAPI document
declares for its route and status (jsonschema), so the document and the
service cannot drift; privacy over HTTP matches the SQL (hidden members,
other members' private data). Also: Redocly lints the document with 0
errors, /docs needs nothing but this origin, CORS preflights.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import jsonschema
import pytest
from quart.typing import TestClientProtocol as Client

from tests.helpers import award, new_profile
from tests.service.conftest import make_token
from xpbase.db import Database
from xpbase.settings import REPO_ROOT

REDOCLY = REPO_ROOT / ".tools" / "redocly" / "node_modules" / ".bin" / "redocly"
FRONTEND = "https://frontend.example.test"


class Checked:
    """A test client wrapper that validates every answer against the OpenAPI document."""

    def __init__(self, client: Client, document: dict[str, Any]) -> None:
        self.client = client
        self.document = document
        self.seen: set[tuple[str, str]] = set()

    def _operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        for template, operations in self.document["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path) and method in operations:
                return template, operations[method]
        raise AssertionError(f"{method.upper()} {path} is not in the OpenAPI document")

    async def call(
        self, method: str, url: str, *, token: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.open(url, method=method.upper(), headers=headers, **kwargs)
        body = await response.get_json()
        template, operation = self._operation(method, url.split("?")[0])
        self.seen.add((method, template))
        declared = operation["responses"].get(str(response.status_code))
        assert declared is not None, f"{method} {url} answered undocumented {response.status_code}: {body}"
        schema = declared["content"]["application/json"]["schema"]
        resolver = {"components": self.document["components"], **schema}
        jsonschema.validate(body, resolver)
        return response.status_code, body


@pytest.fixture
async def api(client: Client) -> Checked:
    document = await (await client.get("/openapi.json")).get_json()
    return Checked(client, document)


async def _world(db: Database) -> dict[str, Any]:
    admin = await new_profile(db, "Ada")
    member = await new_profile(db, "Bo")
    other = await new_profile(db, "Cy")
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set role = 'admin' where id = $1", admin)
        await conn.execute("update public.profiles set leaderboard_visible = false where id = $1", other)
    # a season that ended more than the late-award horizon (48 h) ago, so finalize_seasons takes it
    last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=40)).replace(day=10, hour=12)
    for i, pid in enumerate((admin, member, other)):
        await award(db, pid, "challenge_completed", f"old-{i}", amount=300 * (i + 1), occurred_at=last_month)
        await award(db, pid, "challenge_completed", f"new-{i}", amount=200 + 100 * i)
    await db.rpc("finalize_seasons")
    tokens = {
        name: make_token(sub=str(pid))
        for name, pid in (("admin", admin), ("member", member), ("other", other))
    }
    return {"admin": admin, "member": member, "other": other, "tokens": tokens}


async def test_seed_endpoints_as_anon_members_and_admin(api: Checked, db: Database) -> None:
    """Boards, seasons, check-in, timeline, stats, ledger, notifications, corrections match the schema."""
    w = await _world(db)
    member, other, t = w["member"], w["other"], w["tokens"]

    # Leaderboards (public): the hidden member is left out for anon, shown to themself.
    status, board = await api.call("get", "/v1/leaderboards/all_time?size=2")
    assert status == 200 and [row["display_name"] for row in board["items"]] == ["Bo", "Ada"]
    # Two members show: the first page of two is the last (by cursor, it knows).
    assert board["next"] is None and board["next_cursor"] is None
    status, page2 = await api.call("get", "/v1/leaderboards/all_time?size=2&cursor=2")
    assert str(other) not in {row["profile_id"] for row in page2["items"]}
    _, own = await api.call("get", "/v1/leaderboards/all_time", token=t["other"])
    assert str(other) in {row["profile_id"] for row in own["items"]}
    _, rank = await api.call("get", f"/v1/leaderboards/all_time/ranks/{other}")
    assert rank["rank"] is None and rank["xp"] is None
    _, rank = await api.call("get", f"/v1/leaderboards/layer/ranks/{member}?layer=reality")
    assert rank["rank"] == 1
    _, around = await api.call("get", f"/v1/leaderboards/all_time/around/{member}?radius=1")
    assert [row["display_name"] for row in around["items"]] == ["Bo", "Ada"]
    _, hidden_around = await api.call("get", f"/v1/leaderboards/all_time/around/{other}")
    assert hidden_around["items"] == []
    status, _ = await api.call("get", "/v1/leaderboards/layer?layer=nowhere")
    assert status == 400

    # Seasons and archived results: the hidden winner is left out for others.
    _, seasons = await api.call("get", "/v1/seasons?size=10")
    finished = [s for s in seasons["items"] if s["status"] == "finalized"]
    assert finished
    _, results = await api.call("get", f"/v1/seasons/{finished[0]['id']}/results")
    assert str(other) not in {r["profile_id"] for r in results["items"]}
    _, results = await api.call("get", f"/v1/seasons/{finished[0]['id']}/results", token=t["other"])
    # The hidden winner sees their own place (1: nobody visible had more XP); they took no one's rank.
    own_result = [r for r in results["items"] if r["profile_id"] == str(other)]
    assert [r["rank"] for r in own_result] == [1]
    _, season_board = await api.call("get", f"/v1/leaderboards/season?season_id={finished[0]['id']}")
    assert season_board["items"]

    # Levels.
    _, guide = await api.call("get", "/v1/levels")
    assert guide["levels"][0] == {"level": 1, "xp_required": 0}

    # A member: check-in twice, streak, timeline, stats, ledger, notifications, profile edit.
    status, checked = await api.call("post", "/v1/me/check-ins", token=t["member"])
    assert checked["checked_in"] and checked["granted"] == checked["xp"]["granted"] > 0
    _, again = await api.call("post", "/v1/me/check-ins", token=t["member"])
    assert again["checked_in"] is False and again["xp"] is None
    _, streak = await api.call("get", "/v1/me/streak", token=t["member"])
    assert streak["current_streak"] == 1 and streak["done_today"]
    _, timeline = await api.call("get", "/v1/me/timeline?granularity=month&periods=2", token=t["member"])
    assert timeline["items"][-1]["cumulative_xp"] == board["items"][0]["xp"] + checked["granted"]
    _, stats = await api.call("get", "/v1/me/stats?period=month", token=t["member"])
    assert stats["total_xp"] == timeline["items"][-1]["cumulative_xp"]
    _, ledger = await api.call("get", "/v1/me/ledger?size=2", token=t["member"])
    assert len(ledger["items"]) == 2 and ledger["items"][0]["activity"] == "daily_check_in"
    _, older = await api.call(
        "get", f"/v1/me/ledger?size=2&cursor={ledger['next_cursor']}", token=t["member"]
    )
    assert older["items"][0]["id"] < ledger["items"][-1]["id"]
    _, notes = await api.call("get", "/v1/me/notifications", token=t["member"])
    assert notes["unread"] == len(notes["items"]) > 0
    _, marked = await api.call(
        "post", "/v1/me/notifications/read", token=t["member"], json={"up_to_id": notes["items"][0]["id"]}
    )
    assert marked == {"marked": len(notes["items"]), "unread": 0}
    _, mine = await api.call(
        "patch",
        "/v1/me",
        token=t["member"],
        json={"bio": "hello", "time_zone": "Europe/Berlin", "avatar_url": None},
    )
    assert (mine["bio"], mine["time_zone"]) == ("hello", "Europe/Berlin")
    status, error = await api.call("patch", "/v1/me", token=t["member"], json={"time_zone": "Mars/Olympus"})
    assert status == 400 and error["error"]["code"] == "invalid_argument"

    # Another member's ledger and notifications stay theirs: the other member sees only their own.
    _, theirs = await api.call("get", "/v1/me/ledger", token=t["other"])
    assert all(entry["receipt"]["profile_id"] == str(other) for entry in theirs["items"])
    status, _ = await api.call("get", "/v1/me/ledger")
    assert status == 401

    # Admin corrections: a member is refused, the admin is recorded as actor.
    body = {"amount": 50, "reason": "event prize", "idempotency_key": "prize-1"}
    status, refused = await api.call(
        "post", f"/v1/admin/profiles/{other}/xp-adjustments", token=t["member"], json=body
    )
    assert status == 403 and refused["error"]["code"] == "forbidden"
    _, receipt = await api.call(
        "post", f"/v1/admin/profiles/{other}/xp-adjustments", token=t["admin"], json=body
    )
    assert receipt["granted"] == 50 and receipt["actor_id"] == str(w["admin"])
    receipt_prize_id = receipt["ledger_id"]
    _, receipt = await api.call(
        "post", f"/v1/admin/profiles/{member}/level", token=t["admin"], json={"level": 2, "reason": "test"}
    )
    assert receipt["level"] == 2
    _, receipt = await api.call(
        "post", f"/v1/admin/profiles/{member}/xp-reset", token=t["admin"], json={"reason": "x"}
    )
    assert receipt["total_xp"] == 0
    status, _ = await api.call(
        "post", f"/v1/admin/profiles/{UUID(int=7)}/xp-reset", token=t["admin"], json={"reason": "x"}
    )
    assert status == 404

    # Reversals: a member is refused; the admin's reversal takes the prize back; again it replays;
    # the reversal itself cannot be reversed (409) and an unknown row is 404.
    url = f"/v1/admin/ledger/{receipt_prize_id}/reversal"
    status, refused = await api.call("post", url, token=t["member"], json={"reason": "fraud"})
    assert status == 403 and refused["error"]["code"] == "forbidden"
    status, reversal = await api.call("post", url, token=t["admin"], json={"reason": "fraud"})
    assert (status, reversal["granted"], reversal["reverses_id"]) == (200, -50, receipt_prize_id)
    status, again = await api.call("post", url, token=t["admin"], json={"reason": "fraud"})
    assert (status, again["replayed"], again["ledger_id"]) == (200, True, reversal["ledger_id"])
    status, refused = await api.call(
        "post", f"/v1/admin/ledger/{reversal['ledger_id']}/reversal", token=t["admin"], json={"reason": "x"}
    )
    assert (status, refused["error"]["code"]) == (409, "cannot_reverse")
    status, refused = await api.call(
        "post", "/v1/admin/ledger/999999999/reversal", token=t["admin"], json={"reason": "x"}
    )
    assert (status, refused["error"]["code"]) == (404, "unknown_ledger_row")
    status, refused = await api.call("post", url, token=t["admin"], json={"reason": ""})
    assert status == 400


async def test_public_boards_have_etags_and_answer_304(client: Client, db: Database) -> None:
    """An anonymous board is public and cacheable; the same ETag in If-None-Match gets 304."""
    await new_profile(db, "Ada")
    first = await client.get("/v1/leaderboards/all_time")
    assert first.headers["Cache-Control"].startswith("public")
    etag = first.headers["ETag"]
    again = await client.get("/v1/leaderboards/all_time", headers={"If-None-Match": etag})
    assert again.status_code == 304
    pid = await new_profile(db, "Bo")
    signed_in = await client.get(
        "/v1/leaderboards/all_time", headers={"Authorization": f"Bearer {make_token(sub=str(pid))}"}
    )
    assert "private" in signed_in.headers["Cache-Control"]


async def test_openapi_document_lints_clean_with_redocly(client: Client, tmp_path: Path) -> None:
    """Redocly's recommended rules report no errors (warnings allowed); every operation has an id and tags."""
    document = await (await client.get("/openapi.json")).get_json()
    for operations in document["paths"].values():
        for operation in operations.values():
            assert re.match(r"^[a-z]+[A-Za-z]*$", operation["operationId"]) and operation["tags"]
            assert "security" in operation
    assert document["servers"]
    if not REDOCLY.exists():
        pytest.fail(
            "Redocly is not installed: run `make .tools/redocly/node_modules/.bin/redocly` (`make test` does)"
        )
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(document))
    result = await asyncio.to_thread(
        subprocess.run,
        [str(REDOCLY), "lint", str(path), "--format=json"],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout[result.stdout.index("{") :])
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert errors == [], errors
    assert result.returncode == 0, result.stderr


def _unbounded_integers(
    schema: Any, components: dict[str, Any], where: str, seen: frozenset[str]
) -> list[str]:
    """Places in ``schema`` (followed through $ref, anyOf, properties, items) where an integer lacks a
    minimum or a maximum."""
    if not isinstance(schema, dict):
        return []
    if ref := schema.get("$ref"):
        name = ref.rsplit("/", 1)[-1]
        return [] if name in seen else _unbounded_integers(components[name], components, where, seen | {name})
    found = []
    if schema.get("type") == "integer" and not (
        {"minimum", "exclusiveMinimum"} & schema.keys() and {"maximum", "exclusiveMaximum"} & schema.keys()
    ):
        found.append(where)
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            found += _unbounded_integers(part, components, where, seen)
    for name, part in schema.get("properties", {}).items():
        found += _unbounded_integers(part, components, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties"):
        found += _unbounded_integers(schema.get(key), components, f"{where}[]", seen)
    return found


async def test_every_integer_a_request_carries_is_bounded(client: Client) -> None:
    """Path, query and body integers all state a range, so a number Postgres cannot hold is refused at the
    door (CI once met a 500: ``expected_price`` 10**13 reached an SQL ``integer``)."""
    document = await (await client.get("/openapi.json")).get_json()
    components = document["components"]["schemas"]
    unbounded = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                place = f"{where} {parameter['name']}"
                unbounded += _unbounded_integers(parameter["schema"], components, place, frozenset())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                unbounded += _unbounded_integers(content["schema"], components, f"{where} body", frozenset())
    assert unbounded == []


async def test_numbers_postgres_cannot_hold_are_refused(client: Client, db: Database) -> None:
    """Past the bigint or integer range: 404 for an id in the path (no route matches), 400 in a query or
    body; never a 500."""
    token = make_token(sub=str(await new_profile(db, "Ada")))
    auth = {"Authorization": f"Bearer {token}"}
    huge = 2**70
    assert (await client.post(f"/v1/claims/{huge}/review", headers=auth, json={})).status_code == 404
    assert (await client.post("/v1/claims/0/review", headers=auth, json={})).status_code == 404
    assert (await client.get(f"/v1/seasons/{2**63}/results")).status_code == 404
    purchase = {"item": "alg", "idempotency_key": "k", "expected_price": 10**13}
    assert (await client.post("/v1/store/purchases", headers=auth, json=purchase)).status_code == 400
    read = await client.post("/v1/me/notifications/read", headers=auth, json={"ids": [huge]})
    assert read.status_code == 400
    card = await client.get(f"/v1/profiles/{UUID(int=1)}?recent={huge}")
    assert card.status_code == 400


async def test_docs_use_only_this_origin(client: Client) -> None:
    """/docs loads its script and stylesheet from this service (no CDN), and both are served."""
    html = await (await client.get("/docs")).get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    for url in urls:
        assert (await client.get(url)).status_code == 200, url


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"cors_origins": [FRONTEND]}


async def test_cors_preflight_allows_only_listed_origins(client: Client) -> None:
    """A listed origin's preflight gets its origin and credentials back; others get no CORS headers."""
    preflight = {"Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "authorization"}
    allowed = await client.options("/v1/me", headers={"Origin": FRONTEND, **preflight})
    assert allowed.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "PATCH" in allowed.headers["Access-Control-Allow-Methods"]
    other = await client.options("/v1/me", headers={"Origin": "https://evil.example.test", **preflight})
    assert "Access-Control-Allow-Origin" not in other.headers
    simple = await client.get("/v1/levels", headers={"Origin": FRONTEND})
    assert simple.headers["Access-Control-Allow-Origin"] == FRONTEND


async def test_text_with_a_nul_is_refused(client: Client, db: Database) -> None:
    """Postgres cannot store NUL in text: in a query string it reaches the database, which refuses it (400
    ``invalid_text``); in a JSON body the request refuses it first (400 ``invalid_json``,
    service/lib/strict_json.py). The profile is unchanged."""
    member = await new_profile(db, "Ada")
    auth = {"Authorization": f"Bearer {make_token(sub=str(member))}"}
    ledger = await client.get("/v1/me/ledger?cursor=a%00b", headers=auth)
    assert (ledger.status_code, (await ledger.get_json())["error"]["code"]) == (400, "invalid_text")
    renamed = await client.patch("/v1/me", headers=auth, json={"display_name": "A\u0000da"})
    assert (renamed.status_code, (await renamed.get_json())["error"]["code"]) == (400, "invalid_json")
    me = await (await client.get("/v1/me", headers=auth)).get_json()
    assert me["display_name"] == "Ada"
