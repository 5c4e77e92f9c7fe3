"""The bot's view of another member's card: ``public.service_role_discord_profile_card``
(supabase/sql/91_discord_members.sql), which is ``public.profile_card`` run for the Discord user asking.

Same shape as ProfileCard (XP whole, times aware UTC): never bio, time zone, points, role or links.
"""

from __future__ import annotations

from xpbase.models.profiles import ProfileCard

RESULTS = {"service_role_discord_profile_card": ProfileCard}
