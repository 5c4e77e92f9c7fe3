"""The typed contract: every public SQL function, called with valid arguments, answers what its model says.

A scenario (an admin, two members, one hidden; awards in a finished and a
running season; check-ins; notifications; a Discord guild; sessions and
link codes) is built, then each public function is called through
``xpbase.rpc`` as the role that uses it and its answer is validated
against ``xpbase.models.results()``. A public function that returns jsonb or
rows without a model fails the test, unless it is on ``NOT_READ`` with the
reason Python never reads its answer.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.helpers import award, load_career_pack, make_public, new_profile
from tests.sql.reviews_world import book, next_weekday_at, professional, request, weekly
from xpbase.db import Database, member_claims
from xpbase.models import results
from xpbase.rpc import PostgresRPC, typed

# Functions whose answer Python never reads (their model would describe nothing anyone checks).
NOT_READ: dict[str, str] = {
    "leaderboard_scope": "an internal building block of the leaderboard RPCs; nothing calls it from Python",
    "leaderboard_around_rows": "leaderboard_around's window, inlined into it; Python calls that",
    "leaderboard_rank_row": "leaderboard_rank's rank on one board, inlined into it; Python calls that",
    "service_role_award_xp_batch": "xpbase/replay sums its rows in SQL; Python reads the sums",
    "chat_history": "read by supabase-js clients; the chat websocket reads the table",
}


ALL_DAY = weekly(range(1, 8), "00:00", "24:00")


def h(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


async def scenario(db: Database) -> dict[str, Any]:
    """Build the world the calls run in; returns ids by name."""
    admin = await new_profile(db, "Ada")
    member = await new_profile(db, "Bo")
    await make_public(db, member)  # anon reads her card and badges (the default is members only)
    hidden = await new_profile(db, "Cy")
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set role = 'admin' where id = $1", admin)
        await conn.execute("update public.profiles set leaderboard_visible = false where id = $1", hidden)
    # a season that ended more than the late-award horizon (48 h) ago, so finalize_seasons takes it
    last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=40)).replace(day=10, hour=12)
    for i, pid in enumerate((admin, member, hidden)):
        await award(db, pid, "challenge_completed", f"old-{i}", amount=300 * (i + 1), occurred_at=last_month)
        await award(db, pid, "challenge_completed", f"new-{i}", amount=300 + 200 * i)
    await db.rpc("finalize_seasons")
    await db.rpc("service_role_check_in", profile_id=member)
    async with db.as_service() as conn:
        season_id = await conn.fetchval(
            "select id from public.seasons where finalized_at is not null limit 1"
        )
    await db.rpc("service_role_discord_set_role_reward", guild_id="1", role_id="20", min_level=2)
    dee = await db.rpc("ensure_profile", provider="discord", subject="30", display_name="Dee")
    await award(db, dee, "challenge_completed", "dee-up", amount=200)  # a level-up queued for the bot
    session = await db.rpc(
        "service_role_create_session",
        profile_id=member,
        provider="discord",
        token_hash=h("t1"),
        ttl_seconds=3600,
    )
    link = await db.rpc("create_link_code", role="authenticated", claims=member_claims(hidden))
    # The outbox: a device and a notification routed to it make one FCM delivery.
    await db.rpc(
        "register_push_device", role="authenticated", claims=member_claims(admin), platform="fcm", token="c"
    )
    async with db.pool.acquire() as conn:
        # A tier_up as the award path writes it (the bot's announcement model reads its data).
        await conn.execute(
            "insert into public.notifications (profile_id, kind, title, data) values ($1, 'tier_up', 'T',"
            " jsonb_build_object('tier_before', 'basic', 'tier', 'member', 'tier_name', 'Member',"
            " 'unlocks', '[]'::jsonb, 'ledger_id', null))",
            admin,
        )
        delivery_id = await conn.fetchval("select max(id) from private.deliveries where channel = 'fcm'")
    # The economy (issue 11): items, a redemption waiting for an admin, and payment orders.
    await db.rpc(
        "admin_save_store_item",
        item={
            "slug": "mug",
            "name": "Mug",
            "category": "merchandise",
            "price_points": 5,
            "delivery": "address",
        },
    )
    bought = await db.rpc(
        "service_role_buy_item",
        profile_id=hidden,
        item="mug",
        idempotency_key="mug",
        delivery={"address": "12 MG Road, Bengaluru"},
    )
    orders = [
        await db.rpc("service_role_create_payment_order", profile_id=member, package="xp_100")
        for _ in range(2)
    ]
    # Resume reviews: a professional (the admin), a review done and rated-to-be (hidden's), one booked
    # (asker's) and one open (member's, booked by the calls).
    asker = await new_profile(db, "Di")
    pro = await professional(db, "Europe/Berlin", ALL_DAY, profile_id=admin)
    done = await request(db, hidden, "Europe/Berlin", ALL_DAY)
    past = await book(db, done["id"], pro["id"], next_weekday_at(3, 10))
    await db.pool.execute(  # the session took place (as the database owner: no role may move it)
        "update public.review_sessions set during = tstzrange(now() - interval '1 hour',"
        " now() - interval '15 minutes') where id = $1",
        past["id"],
    )
    await db.rpc("review_action", request_id=done["id"], action="complete")
    booked = await request(db, asker, "Europe/Berlin", ALL_DAY)
    session_row = await book(db, booked["id"], pro["id"], next_weekday_at(4, 10))
    open_request = await request(db, member, "Europe/Berlin", ALL_DAY)
    calendar = await db.rpc("review_calendar_token", role="authenticated", claims=member_claims(asker))
    # Claims (the career rule pack; member's claim waits for review) and events (a running one with a
    # check-in code that asker and member joined, and a future one).
    await load_career_pack(db)
    claim = await db.rpc(
        "submit_claim", role="authenticated", claims=member_claims(member), activity="mock_interview"
    )
    soon = datetime.now(UTC) + timedelta(hours=1)
    running, future = [
        await db.rpc(
            "admin_save_event",
            event={
                "title": title,
                "layer": "reality",
                "starts_at": soon.isoformat(),
                "ends_at": (soon + timedelta(hours=2)).isoformat(),
                "location": "Hall",
                "check_in_code": "CODE-1",
            },
        )
        for title in ("Running", "Future")
    ]
    for pid in (asker, member):
        await db.rpc("join_event", profile_id=pid, event_id=running["id"])
    await db.rpc("join_event", profile_id=hidden, event_id=future["id"])
    await db.pool.execute(  # the event started (as the database owner: no role may move it)
        "update public.events set starts_at = now() - interval '5 minutes' where id = $1", running["id"]
    )
    reversible = await db.rpc(
        "award_xp", profile_id=member, activity="challenge_completed", idempotency_key="to-reverse", amount=20
    )
    async with db.as_service() as conn:  # a default badge's retroactive evaluation, queued by its migration
        badge_evaluation = await conn.fetchval("select min(id) from public.badge_evaluations")
    email_code = await db.rpc("service_role_request_email_code", email="cy@example.org")
    return {
        "claim_id": claim["id"],
        "running_event": running["id"],
        "future_event": future["id"],
        "reversible_ledger_id": reversible["ledger_id"],
        "badge_evaluation": badge_evaluation,
        "delivery_id": delivery_id,
        "admin": admin,
        "member": member,
        "hidden": hidden,
        "season_id": season_id,
        "session": session,
        "link_code": link["code"],
        "redemption_id": bought["grants"]["redemption_id"],
        "order_id": orders[0]["order_id"],
        "failed_order_id": orders[1]["order_id"],
        "asker": asker,
        "pro": pro["id"],
        "done_request": done["id"],
        "booked_request": booked["id"],
        "review_session": session_row["id"],
        "open_request": open_request["id"],
        "calendar_token": calendar["token"],
        "email_code": email_code["code"],
    }


def calls(w: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(function, caller, params) for every public function; caller: anon, service_role or a profile name."""
    admin, member, hidden, season_id = w["admin"], w["member"], w["hidden"], w["season_id"]
    state = {
        "state_hash": h("s"),
        "browser_hash": h("b"),
        "provider": "discord",
        "redirect_uri": "https://app.example.test/cb",
        "code_verifier": "v" * 64,
        "nonce": "n" * 16,
        "link_profile_id": None,
        "cookie_mode": False,
        "ttl_seconds": 600,
    }
    return [
        ("schema_version", "service_role", {}),
        ("level_guide", "anon", {}),
        ("level_for_xp", "anon", {"xp": 100}),
        ("xp_for_level", "anon", {"level": 3}),
        ("tier_for_level", "anon", {"level": 3}),
        ("layer_status_for", "anon", {"layer": "cyber", "xp": 10}),
        ("ensure_profile", "service_role", {"provider": "discord", "subject": "77", "display_name": "E"}),
        (
            "award_xp",
            "service_role",
            {"profile_id": member, "activity": "challenge_completed", "idempotency_key": "k", "amount": 50},
        ),
        (
            "admin_adjust_xp",
            "admin",
            {"profile_id": member, "amount": 10, "reason": "fix", "idempotency_key": "adj"},
        ),
        ("admin_set_level", "admin", {"profile_id": hidden, "level": 4, "reason": "fix"}),
        ("reverse_award", "admin", {"ledger_id": w["reversible_ledger_id"], "reason": "contract"}),
        ("admin_reset_xp", "service_role", {"profile_id": hidden, "reason": "fix"}),
        ("admin_rules_diff", "admin", {"change": {"activities": {"challenge_completed": {"base_xp": 60}}}}),
        # {} replays the rules as they are: the answer's shape without changing the world for later calls.
        ("admin_rules_apply", "service_role", {"change": {}, "reason": "contract", "max_members": 5}),
        (
            "service_role_admin_adjust_xp",
            "service_role",
            {"actor_id": admin, "profile_id": member, "amount": -5, "reason": "r", "idempotency_key": "a2"},
        ),
        (
            "service_role_admin_set_level",
            "service_role",
            {"actor_id": admin, "profile_id": member, "level": 5, "reason": "r", "idempotency_key": "a3"},
        ),
        (
            "service_role_admin_reset_xp",
            "service_role",
            {"actor_id": admin, "profile_id": hidden, "reason": "r", "idempotency_key": "a4"},
        ),
        ("finalize_seasons", "service_role", {}),
        ("check_in", "admin", {}),
        ("service_role_check_in", "service_role", {"profile_id": hidden}),
        ("streak_status", "member", {}),
        ("service_role_streak_status", "service_role", {"profile_id": member}),
        ("leaderboard", "anon", {"board": "all_time", "page_size": 10}),
        ("leaderboard", "hidden", {"board": "layer", "layer": "cyber"}),
        ("leaderboard", "anon", {"board": "season", "season_id": season_id}),
        ("leaderboard_after", "anon", {"board": "all_time", "page_size": 1}),
        ("leaderboard_after", "hidden", {"board": "layer", "layer": "cyber"}),
        ("leaderboard_rank", "anon", {"profile_id": member}),
        ("leaderboard_rank", "anon", {"profile_id": hidden}),
        ("leaderboard_around", "member", {"profile_id": member, "radius": 2}),
        ("leaderboard_members_above", "anon", {"board": "all_time", "scope": "", "xp": 100}),
        ("leaderboard_suspended_ids", "anon", {}),
        ("my_leaderboard_visibility", "member", {}),
        ("set_leaderboard_visibility", "member", {"hidden_boards": [{"board": "server", "scope": "1"}]}),
        ("service_role_compact_leaderboard_counts", "service_role", {}),
        ("xp_timeline", "member", {"profile_id": member, "granularity": "day", "periods": 3}),
        ("dashboard_stats", "member", {"profile_id": member, "period": "month"}),
        ("post_chat_message", "member", {"body": "hello"}),
        ("update_my_profile", "member", {"changes": {"bio": "hi", "avatar_url": None}}),
        ("my_profile", "member", {}),
        ("list_my_ledger", "member", {"size": 2}),
        ("list_notifications", "member", {"size": 2}),
        ("mark_notifications_read", "member", {"up_to_id": 1000000}),
        ("list_seasons", "anon", {"size": 5}),
        ("list_season_results", "anon", {"season_id": season_id}),
        ("create_link_code", "member", {}),
        (
            "service_role_redeem_link_code",
            "service_role",
            {"code": w["link_code"], "provider": "slack", "subject": "5"},
        ),
        (
            "service_role_sign_in",
            "service_role",
            {"provider": "github", "subject": "9", "display_name": "G", "avatar_url": None},
        ),
        (
            "service_role_link_identity",
            "service_role",
            {"profile_id": member, "provider": "github", "subject": "10"},
        ),
        ("service_role_create_oauth_state", "service_role", state),
        (
            "service_role_take_oauth_state",
            "service_role",
            {"state_hash": h("s"), "browser_hash": h("b"), "provider": "discord"},
        ),
        (
            "service_role_create_session",
            "service_role",
            {"profile_id": member, "provider": "discord", "token_hash": h("t2"), "ttl_seconds": 60},
        ),
        (
            "service_role_refresh_session",
            "service_role",
            {"token_hash": h("t1"), "next_token_hash": h("t3"), "ttl_seconds": 60, "grace_seconds": 10},
        ),
        ("service_role_sign_out", "service_role", {"token_hash": h("t3")}),
        ("service_role_purge_auth", "service_role", {}),
        ("service_role_discord_guild", "service_role", {"guild_id": "1"}),
        (
            "service_role_discord_set_announcements",
            "service_role",
            {"guild_id": "1", "mode": "channel", "channel_id": "3"},
        ),
        (
            "service_role_discord_set_no_xp",
            "service_role",
            {"guild_id": "1", "kind": "channel", "target_id": "5", "no_xp": True},
        ),
        (
            "service_role_discord_set_multiplier",
            "service_role",
            {"guild_id": "1", "kind": "role", "target_id": "6", "factor": 1.5},
        ),
        (
            "service_role_discord_set_role_reward",
            "service_role",
            {"guild_id": "1", "role_id": "21", "tier": "member"},
        ),
        (
            "service_role_discord_award",
            "service_role",
            {
                "guild_id": "1",
                "user_id": "30",
                "display_name": "Dee",
                "activity": "message",
                "idempotency_key": "m1",
                "channel_id": "7",
                "role_ids": [],
            },
        ),
        (
            "service_role_award_group",
            "service_role",
            {
                "calls": [
                    {
                        "fn": "award_xp",
                        "profile_id": w["member"],
                        "activity": "challenge_completed",
                        "idempotency_key": "group-1",
                        "amount": 100,
                    },
                    {
                        "fn": "discord_award",
                        "guild_id": "1",
                        "user_id": "30",
                        "display_name": "Dee",
                        "activity": "message",
                        "idempotency_key": "m1",
                        "channel_id": "7",
                        "role_ids": [],
                    },
                    {
                        "fn": "discord_award",
                        "guild_id": "1",
                        "user_id": "30",
                        "display_name": "Dee",
                        "activity": "message",
                        "idempotency_key": "group-2",
                        "channel_id": "5",
                    },
                    {
                        "fn": "award_xp",
                        "profile_id": w["member"],
                        "activity": "nope",
                        "idempotency_key": "g3",
                    },
                ]
            },
        ),
        ("service_role_discord_member", "service_role", {"user_id": "30", "recent": 5}),
        (
            "service_role_discord_profile_card",
            "service_role",
            {"user_id": "30", "viewer_user_id": "30", "recent": 5},
        ),
        ("service_role_discord_seasons", "service_role", {}),
        ("service_role_discord_role_plan", "service_role", {"guild_id": "1", "user_ids": ["30", "31"]}),
        ("service_role_discord_notifications", "service_role", {"after_id": 0}),
        ("service_role_claim_discord_level_ups", "service_role", {"max_rows": 5}),
        ("service_role_finish_discord_level_ups", "service_role", {"notification_ids": []}),
        ("service_role_discord_stats", "service_role", {"guild_id": "1"}),
        # Preferences, devices and the outbox (issue 14).
        ("my_notification_preferences", "member", {}),
        (
            "set_notification_preferences",
            "member",
            {"channels": {"level_up": ["push"]}, "quiet_hours_start": "22:00", "quiet_hours_end": "07:00"},
        ),
        ("register_push_device", "member", {"platform": "fcm", "token": "contract"}),
        ("service_role_claim_delivery", "service_role", {"delivery_id": w["delivery_id"]}),
        (
            "service_role_finish_delivery",
            "service_role",
            {"delivery_id": w["delivery_id"], "outcome": "sent"},
        ),
        ("service_role_claim_discord_deliveries", "service_role", {"max_rows": 5}),
        ("service_role_sweep_deliveries", "service_role", {}),
        ("service_role_queue_streak_reminders", "service_role", {}),
        ("service_role_purge_old_messages", "service_role", {}),
        ("dead_deliveries", "admin", {}),
        # The economy (issue 11).
        (
            "admin_save_store_item",
            "admin",
            {"item": {"slug": "hat", "name": "Hat", "category": "cosmetic", "price_points": 5}},
        ),
        (
            "admin_adjust_points",
            "admin",
            {"profile_id": member, "amount": 100, "reason": "r", "idempotency_key": "p1"},
        ),
        (
            "service_role_admin_adjust_points",
            "service_role",
            {"actor_id": admin, "profile_id": member, "amount": -1, "reason": "r", "idempotency_key": "p2"},
        ),
        ("points_statement", "member", {"size": 5}),
        ("buy_item", "member", {"item": "hat", "idempotency_key": "b1"}),
        (
            "service_role_buy_item",
            "service_role",
            {"profile_id": member, "item": "hat", "idempotency_key": "b2"},
        ),
        ("store_catalogue", "anon", {}),
        ("store_catalogue", "member", {}),
        ("inventory_of", "member", {}),
        ("redemption_queue", "admin", {}),
        ("service_role_redemption_queue", "service_role", {"actor_id": admin}),
        ("redemption_history", "hidden", {}),
        (
            "service_role_update_redemption",
            "service_role",
            {"actor_id": admin, "redemption_id": w["redemption_id"], "status": "approved"},
        ),
        (
            "update_redemption",
            "admin",
            {"redemption_id": w["redemption_id"], "status": "fulfilled", "note": "sent"},
        ),
        ("service_role_create_payment_order", "service_role", {"profile_id": member, "package": "xp_100"}),
        (
            "service_role_attach_razorpay_order",
            "service_role",
            {
                "order_id": w["order_id"],
                "razorpay_order_id": "order_T",
                "amount_paise": 9900,
                "currency": "INR",
            },
        ),
        (
            "service_role_fail_payment_order",
            "service_role",
            {"order_id": w["failed_order_id"], "error": "refused"},
        ),
        ("service_role_open_payment_orders", "service_role", {"older_than_seconds": 0}),
        (
            "service_role_verify_payment",
            "service_role",
            {
                "profile_id": member,
                "razorpay_order_id": "order_T",
                "razorpay_payment_id": "pay_T",
                "amount_paise": 9900,
            },
        ),
        (
            "service_role_payment_webhook",
            "service_role",
            {
                "event_id": "evt_T",
                "event": "payment.captured",
                "payload": {
                    "payment": {
                        "entity": {"id": "pay_T", "order_id": "order_T", "amount": 9900, "status": "captured"}
                    }
                },
            },
        ),
        (
            "service_role_reconcile_payment",
            "service_role",
            {"razorpay_order_id": "order_T", "razorpay_payment_id": "pay_T", "amount_paise": 9900},
        ),
        ("service_role_expire_payment_orders", "service_role", {}),
        ("payment_orders_of", "member", {}),
        (
            "admin_upsert_professional",
            "service_role",
            {"professional": {"name": "Eve", "email": "eve@example.org", "time_zone": "Asia/Kolkata"}},
        ),
        ("set_review_availability", "service_role", {"professional_id": w["pro"], "weekly": ALL_DAY}),
        (
            "admin_import_review_availability",
            "service_role",
            {"rows": [{"name": "Fay", "email": "fay@example.org", "time_zone": "UTC", "weekly": ALL_DAY}]},
        ),
        (
            "request_review",
            "hidden",
            {
                "request": {
                    "target_role": "Data engineer",
                    "specialties": ["resume"],
                    "time_zone": "Europe/Berlin",
                    "preferred_times": ALL_DAY,
                }
            },
        ),
        ("my_reviews", "asker", {}),
        ("review_action", "asker", {"request_id": w["booked_request"], "action": "confirm"}),
        ("review_feedback", "hidden", {"request_id": w["done_request"], "rating": 5, "body": "clear"}),
        ("review_session", "asker", {"session_id": w["review_session"]}),
        ("service_role_review_calendar_feed", "service_role", {"token": w["calendar_token"]}),
        ("review_calendar_token", "asker", {}),  # a new token: the feed above read the old one
        ("admin_review_match_input", "service_role", {}),
        (
            "admin_book_review",
            "service_role",
            {
                "request_id": w["open_request"],
                "professional_id": w["pro"],
                "starts_at": next_weekday_at(5, 10),
                "run_id": "00000000-0000-4000-8000-000000000001",
                "score": 1.0,
                "terms": {"manual": 1},
            },
        ),
        ("admin_review_matches", "service_role", {"request_id": w["open_request"]}),
        ("reviewer_stats", "service_role", {}),
        ("review_specialty_list", "anon", {}),
        ("point_values", "anon", {}),
        (
            "submit_claim",
            "asker",
            {"activity": "linkedin_update", "evidence_url": "https://example.org/in/di"},
        ),
        ("claim_queue", "admin", {}),
        ("review_claim", "admin", {"claim_id": w["claim_id"], "decision": "approve"}),
        ("my_claims", "member", {}),
        ("event_list", "service_role", {}),
        ("event_list", "member", {"include_past": True}),
        ("join_event", "asker", {"event_id": w["future_event"]}),
        ("leave_event", "hidden", {"event_id": w["future_event"]}),
        ("event_check_in", "asker", {"event_id": w["running_event"], "code": "CODE-1"}),
        ("admin_mark_attended", "admin", {"event_id": w["running_event"], "member_id": str(member)}),
        ("admin_save_event", "admin", {"event": {"id": w["future_event"], "capacity": 5}}),
        ("profile_card", "anon", {"profile_id": member, "recent": 3}),
        ("profile_card", "member", {"profile_id": member}),
        ("service_role_grant_admin", "service_role", {"profile_id": member}),
        ("badge_catalogue", "anon", {}),
        ("profile_badges", "anon", {"profile_id": member}),
        ("profile_badges", "hidden", {"profile_id": w["hidden"]}),
        (
            "service_role_evaluate_badge",
            "service_role",
            {"evaluation_id": w["badge_evaluation"], "max_profiles": 2},
        ),
        # Issue 17: importers, per-server boards, rank card colours, export and erasure (erasure last).
        (
            "admin_import_members",
            "service_role",
            {
                "source": "csv",
                "guild_id": "1",
                "keep": "xp",
                "members": [{"user_id": "990001", "xp": 10_500, "level": 0}],  # level 11: member tier
                "dry_run": False,
            },
        ),
        (
            "admin_import_role_rewards",
            "service_role",
            {"guild_id": "1", "rewards": [{"role_id": "77", "min_level": 2}], "dry_run": True},
        ),
        ("service_role_discord_take_role_resyncs", "service_role", {}),
        (
            "service_role_discord_see_members",
            "service_role",
            {"guild_id": "1", "members": [{"user_id": "990002", "display_name": "Seen"}]},
        ),
        ("service_role_discord_forget_member", "service_role", {"guild_id": "1", "user_id": "990002"}),
        ("service_role_discord_guild_rank", "service_role", {"guild_id": "1", "user_id": "990001"}),
        ("guild_leaderboard", "anon", {"guild_id": "1"}),
        (
            "service_role_discord_set_rank_card",
            "service_role",
            {"user_id": "990001", "accent": "gold", "background": "night"},
        ),
        ("service_role_discord_rank_card", "service_role", {"user_id": "990001"}),
        ("my_permissions", "member", {}),
        ("my_permissions", "admin", {}),
        ("moderate", "admin", {"action": "warn", "profile_id": member, "reason": "be kind"}),
        (
            "service_role_moderate",
            "service_role",
            {"actor_id": admin, "action": "warn", "profile_id": member, "reason": "again"},
        ),
        ("moderation_record", "admin", {"profile_id": member}),
        ("moderation_record", "member", {}),
        ("admin_set_role", "admin", {"profile_id": hidden, "new_role": "moderator", "reason": "helps out"}),
        (
            "service_role_set_role",
            "service_role",
            {"actor_id": admin, "profile_id": hidden, "new_role": "member", "reason": "stepped down"},
        ),
        ("service_role_request_email_code", "service_role", {"email": "dee@example.org"}),
        (
            "service_role_verify_email_code",
            "service_role",
            {"email": "cy@example.org", "code": w["email_code"], "token_hash": h("e"), "ttl_seconds": 3600},
        ),
        ("my_export", "hidden", {}),
        ("erase_me", "hidden", {}),
        ("admin_erase_profile", "service_role", {"profile_id": hidden}),
        # Tools (37_tools.sql).
        ("tool_catalogue", "anon", {}),
        (
            "admin_save_tool",
            "admin",
            {"slug": "ai_assistant", "name": "AI assistant", "description": "Helps."},
        ),
        (
            "admin_unlock_tool",
            "admin",
            {"profile_id": member, "tool": "ai_assistant", "reason": "beta tester"},
        ),
        ("has_tool", "member", {"tool": "ai_assistant"}),
        ("my_tools", "member", {}),
        ("admin_revoke_tool", "admin", {"profile_id": member, "tool": "ai_assistant", "reason": "beta over"}),
        # Challenges (39_challenges.sql).
        (
            "admin_save_challenges",
            "admin",
            {
                "challenges": [
                    {"slug": "intro", "title": "Intro", "difficulty": "easy", "layer": "cyber", "xp": 20},
                    {
                        "slug": "next",
                        "title": "Next",
                        "difficulty": "hard",
                        "layer": "reality",
                        "xp": 200,
                        "prerequisites": ["intro"],
                        "ends_at": "2099-01-01T00:00:00Z",
                    },
                ]
            },
        ),
        ("challenge_catalogue", "anon", {}),
        (
            "service_role_complete_challenge",
            "service_role",
            {"profile_id": member, "challenge": "intro", "judge": "ci"},
        ),
        ("my_challenges", "member", {}),
    ]


async def public_functions(db: Database) -> dict[str, str]:
    """``{name: result type}`` of every function in schema public (jsonb, a set, or a scalar type)."""
    async with db.as_service() as conn:
        rows = await conn.fetch(
            """
            select p.proname as name,
                   case when p.proretset then 'rows' else format_type(p.prorettype, null) end as returns
              from pg_catalog.pg_proc p
             where p.pronamespace = 'public'::regnamespace and p.prokind = 'f'
            """
        )
    return {row["name"]: row["returns"] for row in rows}


async def test_every_public_function_answers_its_model(db: Database) -> None:
    """Each call's answer validates against its model; every jsonb/rows function has a model or a reason."""
    world = await scenario(db)
    rpc = PostgresRPC(db)
    models = results()
    called: set[str] = set()
    failures: list[str] = []
    for function, caller, params in calls(world):
        if caller in ("anon", "service_role"):
            role, claims = caller, None
        else:
            role, claims = "authenticated", member_claims(world[caller])
        answer = await rpc.call_json(function, role=role, claims=claims, **params)
        called.add(function)
        try:
            typed(function, answer)
        except ValidationError as exc:
            failures.append(f"{function}: {exc}")
    assert not failures, "\n".join(failures)

    functions = await public_functions(db)
    never_called = sorted(set(functions) - called - set(NOT_READ))
    assert never_called == [], f"public functions the test never calls: {never_called}"
    unmodelled = sorted(
        name
        for name, returns in functions.items()
        if returns in ("jsonb", "rows") and name not in models and name not in NOT_READ
    )
    assert unmodelled == [], "public functions returning jsonb or rows without a model in xpbase/models"
    assert sorted(set(models) - set(functions)) == [], "models for functions that do not exist"


async def test_a_renamed_key_fails_validation(db: Database) -> None:
    """An answer with a key its model does not declare (a rename in SQL) is refused, not read as a default."""
    world = await scenario(db)
    answer = await PostgresRPC(db).call_json("service_role_check_in", profile_id=world["admin"])
    answer["award"] = answer.pop("xp")
    with pytest.raises(ValidationError):
        typed("service_role_check_in", answer)
