"""GET /v1/badges, /v1/profiles/{id}/badges and /v1/me/badges over HTTP."""

from __future__ import annotations

from uuid import UUID

from quart.typing import TestClientProtocol as Client

from tests.helpers import award, make_public, new_profile
from tests.service.conftest import make_token
from xpbase.db import Database
from xpbase.models.badges import BadgeCatalogue, ProfileBadges


def bearer(profile_id: UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=str(profile_id))}"}


async def test_badges_over_http_follow_profile_visibility(client: Client, db: Database) -> None:
    """Anon reads the catalogue and visible badges; a hidden member's are 404 to anon, theirs via /me."""
    ana = await new_profile(db, "Ana")
    await make_public(db, ana)
    await award(db, ana, "xp_purchase", "ana-1", amount=300)
    catalogue = await client.get("/v1/badges")
    assert catalogue.status_code == 200
    first = next(
        b for b in BadgeCatalogue.model_validate(await catalogue.get_json()).badges if b.slug == "first_steps"
    )
    assert (first.holders, first.level) == (1, "bronze")

    shown = await client.get(f"/v1/profiles/{ana}/badges")
    assert shown.status_code == 200
    badges = ProfileBadges.model_validate(await shown.get_json())
    assert [b.slug for b in badges.badges] == ["first_steps"] and badges.counts.bronze == 1

    async with db.as_member(ana) as conn:
        await conn.execute(
            "update public.profiles set leaderboard_visible = false where id = (select auth.uid())"
        )
    hidden = await client.get(f"/v1/profiles/{ana}/badges")
    assert hidden.status_code == 404 and (await hidden.get_json())["error"]["code"] == "unknown_profile"
    mine = await client.get("/v1/me/badges", headers=bearer(ana))
    assert mine.status_code == 200 and ProfileBadges.model_validate(await mine.get_json()).profile_id == ana
    assert (await client.get("/v1/me/badges")).status_code == 401


async def test_member_page_lists_badges(client: Client, db: Database) -> None:
    """The web member page /u/<id> shows the member's badges with their level."""
    ana = await new_profile(db, "Ana")
    await make_public(db, ana)
    await award(db, ana, "xp_purchase", "ana-1", amount=300)
    page = await client.get(f"/u/{ana}")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<h2>Badges</h2>" in html and "First steps" in html and 'class="badge badge-bronze"' in html
