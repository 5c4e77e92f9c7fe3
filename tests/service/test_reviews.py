"""Resume reviews over HTTP: the admin's matcher and availability upload, the session .ics, the feed.

JSON answers are checked against the OpenAPI document (``Checked`` from test_api.py); the .ics
answers against the media type the document declares for them.
"""

from __future__ import annotations

from typing import Any

import pytest
from icalendar import Calendar
from quart.typing import TestClientProtocol as Client

from service.blueprints.reviews import MAX_CSV_BYTES
from tests.service.conftest import make_token
from tests.service.test_api import Checked
from tests.sql.reviews_world import EVERY_DAY, professional, request, weekly
from xpbase.db import Database, member_claims
from xpbase.models.reviews import CalendarToken, MyReviews

CSV_HEADER = "Timestamp,Full name,Email address,Time zone,When are you usually available?\n"


@pytest.fixture
async def api(client: Client) -> Checked:
    document = await (await client.get("/openapi.json")).get_json()
    return Checked(client, document)


async def people(db: Database) -> dict[str, Any]:
    """An admin, a member with an open request a professional can take, and another member."""
    ids = {}
    for name in ("admin", "member", "other"):
        ids[name] = await db.rpc(
            "ensure_profile", provider="email", subject=f"{name}@example.org", display_name=name.title()
        )
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set role = 'admin' where id = $1", ids["admin"])
    await professional(db, "Asia/Kolkata", weekly(EVERY_DAY, "00:00", "24:00"), name="Priya")
    req = await request(db, ids["member"], "America/Los_Angeles", weekly(EVERY_DAY, "09:00", "17:00"))
    return {**ids, "request_id": req["id"], "tokens": {n: make_token(sub=str(p)) for n, p in ids.items()}}


async def test_admin_dry_run_then_match_books_a_session_and_members_get_403(
    api: Checked, db: Database
) -> None:
    """A member is refused; the admin's dry run proposes without booking; the real run books."""
    w = await people(db)
    status, body = await api.call("post", "/v1/admin/reviews/match", token=w["tokens"]["member"], json={})
    assert status == 403 and body["error"]["code"] == "forbidden"

    status, dry = await api.call(
        "post", "/v1/admin/reviews/match", token=w["tokens"]["admin"], json={"dry_run": True}
    )
    assert status == 200 and dry["dry_run"] and len(dry["matches"]) == 1
    assert dry["matches"][0]["request_id"] == w["request_id"] and dry["matches"][0]["session_id"] is None
    mine = MyReviews.model_validate(await db.rpc("my_reviews", profile_id=w["member"]))
    assert mine.requests[0].session is None

    status, real = await api.call(
        "post",
        "/v1/admin/reviews/match",
        token=w["tokens"]["admin"],
        json={"horizon_days": 7, "session_minutes": 30},
    )
    assert status == 200 and not real["dry_run"] and real["unmatched"] == []
    [match] = real["matches"]
    session = MyReviews.model_validate(await db.rpc("my_reviews", profile_id=w["member"])).requests[0].session
    assert session is not None and match["session_id"] == session.id and session.status == "scheduled"
    assert set(match["terms"]) >= {"specialty", "industry", "slot", "capacity", "rating", "wait"}

    status, _ = await api.call(
        "post", "/v1/admin/reviews/match", token=w["tokens"]["admin"], json={"horizon_days": 0}
    )
    assert status == 400


async def test_csv_upload_imports_readable_rows_and_lists_the_rest(api: Checked, db: Database) -> None:
    """Readable rows make professionals; unreadable ones come back with the reason; size and columns
    are checked; members get 403."""
    w = await people(db)
    admin = w["tokens"]["admin"]
    csv_text = (
        CSV_HEADER
        + "2026/11/01 10:00,Ana Ruiz,ana@example.org,Europe/Madrid,Tue/Thu 7-9pm\n"
        + "2026/11/01 10:05,Ben Ode,ben@example.org,EST,Weekdays after 6pm\n"
        + "2026/11/01 10:07,Cy Dee,cy@example.org,America/Chicago,evenings mostly\n"
        + '2026/11/01 10:09,Di Ng,di@example.org,IST,"Sat 10am-1pm"\n'
    )
    status, body = await api.call("post", "/v1/admin/reviews/availability", token=admin, data=csv_text)
    assert status == 200 and (body["created"], body["updated"]) == (2, 0)
    assert [(r["line"], r["email"]) for r in body["unreadable"]] == [
        (4, "cy@example.org"),
        (5, "di@example.org"),
    ]
    assert "vague" in body["unreadable"][0]["reason"] and "IST" in body["unreadable"][1]["reason"]
    status, again = await api.call("post", "/v1/admin/reviews/availability", token=admin, data=csv_text)
    assert (again["created"], again["updated"]) == (0, 2)

    status, body = await api.call(
        "post", "/v1/admin/reviews/availability", token=w["tokens"]["member"], data=csv_text
    )
    assert status == 403
    status, body = await api.call(
        "post",
        "/v1/admin/reviews/availability",
        token=admin,
        data="Name,Email\nAna,ana@example.org\n",
    )
    assert status == 400 and body["error"]["code"] == "invalid_csv"
    too_big = CSV_HEADER + "x" * MAX_CSV_BYTES
    status, body = await api.call("post", "/v1/admin/reviews/availability", token=admin, data=too_big)
    assert status == 413 and body["error"]["code"] == "too_large"


def events(ics: bytes) -> list[Any]:
    return [c for c in Calendar.from_ical(ics).walk("VEVENT")]


def declared_media_type(api: Checked, template: str) -> list[str]:
    return list(api.document["paths"][template]["get"]["responses"]["200"]["content"])


async def test_session_ics_for_its_parties_only_and_the_feed_by_token(api: Checked, db: Database) -> None:
    """The member's own session as an invitation (404 for someone else); the calendar feed answers its
    token and 404 for any other."""
    w = await people(db)
    await api.call("post", "/v1/admin/reviews/match", token=w["tokens"]["admin"], json={})
    session = MyReviews.model_validate(await db.rpc("my_reviews", profile_id=w["member"])).requests[0].session
    assert session is not None
    url = f"/v1/reviews/sessions/{session.id}.ics"

    response = await api.client.get(url, headers={"Authorization": f"Bearer {w['tokens']['member']}"})
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    assert declared_media_type(api, "/v1/reviews/sessions/{session_id}.ics") == ["text/calendar"]
    [event] = events(await response.get_data())
    assert str(event["uid"]) == f"review-session-{session.id}@xpbase"
    assert event.decoded("dtstart").isoformat() == session.starts_at.replace("Z", "+00:00").replace(
        ".000000", ""
    )
    assert "America/Los_Angeles" in str(event["description"]) and "Asia/Kolkata" in str(event["description"])
    status, body = await api.call("get", url, token=w["tokens"]["other"])
    assert status == 404 and body["error"]["code"] == "unknown_review"
    status, _ = await api.call("get", url)
    assert status == 401
    status, body = await api.call(
        "get", f"/v1/reviews/sessions/{session.id + 1}.ics", token=w["tokens"]["admin"]
    )
    assert status == 404  # an admin sees every session, but not one that does not exist
    admin_view = await api.client.get(url, headers={"Authorization": f"Bearer {w['tokens']['admin']}"})
    assert admin_view.status_code == 200

    token = CalendarToken.model_validate(
        await db.rpc("review_calendar_token", role="authenticated", claims=member_claims(w["member"]))
    ).token
    feed = await api.client.get(f"/v1/reviews/calendar/{token}.ics")
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    assert declared_media_type(api, "/v1/reviews/calendar/{token}.ics") == ["text/calendar"]
    assert [str(e["uid"]) for e in events(await feed.get_data())] == [f"review-session-{session.id}@xpbase"]
    status, body = await api.call("get", f"/v1/reviews/calendar/{'0' * 64}.ics")
    assert status == 404 and body["error"]["code"] == "unknown_calendar_token"
