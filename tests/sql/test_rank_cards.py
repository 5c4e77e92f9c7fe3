"""The "Custom rank card" unlock (supabase/sql/97_rank_cards.sql): only its holders choose colours, from
the safe set; a choice stops counting when the unlock is lost."""

from __future__ import annotations

import pytest

from xpbase.db import Database
from xpbase.errors import DomainError


async def test_only_holders_choose_colours_from_the_safe_set(db: Database) -> None:
    pid = await db.rpc("ensure_profile", provider="discord", subject="61", display_name="Ada")
    with pytest.raises(DomainError) as locked:
        await db.rpc("service_role_discord_set_rank_card", user_id="61", accent="gold", background="night")
    assert locked.value.error.sqlstate == "XPCRD"
    # Level 11 (10,500 XP) starts the member tier, which unlocks the custom rank card.
    await db.rpc("admin_adjust_xp", profile_id=pid, amount=10_500, reason="test", idempotency_key="a")
    with pytest.raises(DomainError) as unsafe:
        await db.rpc("service_role_discord_set_rank_card", user_id="61", accent="#000000", background="night")
    assert unsafe.value.error.sqlstate == "XPBAD"
    chosen = await db.rpc(
        "service_role_discord_set_rank_card", user_id="61", accent="gold", background="night"
    )
    assert chosen == {"accent": "gold", "background": "night"}
    assert await db.rpc("service_role_discord_rank_card", user_id="61") == chosen
    await db.rpc("admin_reset_xp", profile_id=pid, reason="test", idempotency_key="r")
    assert await db.rpc("service_role_discord_rank_card", user_id="61") == {
        "accent": None,
        "background": None,
    }
