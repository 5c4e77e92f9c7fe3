"""A Discord guild for the bot tests, built from gateway payloads into real discord.py objects.

``World`` holds one guild (roles, text and voice channels, members, voice
states) added to the bot's own ``ConnectionState`` the way a GUILD_CREATE
would add it, and builds MESSAGE_CREATE and INTERACTION_CREATE payloads into
``discord.Message`` and ``discord.Interaction`` objects. Slash commands run
through ``bot.tree._call(interaction)``, the path discord.py takes for a real
interaction: option parsing, checks, the command and the error handler.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

import discord
from discord.utils import time_snowflake

from tests.bot.discord_api import APP_ID, BOT_USER

ALL = discord.Permissions.all().value
EVERYONE = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    connect=True,
    speak=True,
    use_application_commands=True,
).value
MANAGE_GUILD = discord.Permissions(manage_guild=True).value
MANAGE_ROLES = discord.Permissions(manage_roles=True).value
T0 = dt.datetime(2026, 11, 21, 4, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    roles: tuple[int, ...] = ()
    bot: bool = False
    avatar: str | None = "a1b2c3"

    def user(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name.lower(),
            "global_name": self.name,
            "discriminator": "0",
            "avatar": self.avatar,
            "bot": self.bot,
        }

    def member(self, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "joined_at": "2026-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "avatar": None,
        }
        if with_user:
            data["user"] = self.user()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


class World:
    """One guild with an admin (alice), members (bob, carol, dave), another bot, and channels:

    - #general, #bot-spam, #announcements (text); Lounge, Quiet and AFK (voice; AFK is the AFK channel)
    - roles: Admin (Manage Server), xpbase (the bot's role, Manage Roles, high), Regular, Veteran, Elite
      (reward roles below the bot's), Booster, Muted, Above (above the bot's role)
    """

    GUILD = 800_000_000_000_000_001

    def __init__(self, bot: discord.Client) -> None:
        self.bot = bot
        self.state = bot._connection  # type: ignore[attr-defined]
        self._ids = itertools.count(810_000_000_000_000_000)
        self._roles: dict[int, tuple[int, ...]] = {}
        g = self.GUILD
        self.role_admin, self.role_bot, self.role_regular, self.role_veteran = 801, 802, 803, 804
        self.role_elite, self.role_booster, self.role_muted, self.role_above = 805, 806, 807, 808
        self.general, self.spam, self.announcements = 820, 821, 822
        self.lounge, self.quiet, self.afk = 830, 831, 832
        self.alice = Person(701, "Alice", (self.role_admin,))
        self.bob = Person(702, "Bob")
        self.carol = Person(703, "Carol", (self.role_booster,))
        self.dave = Person(704, "Dave")
        self.other_bot = Person(705, "OtherBot", bot=True)
        self.me = Person(APP_ID, "xpbase", (self.role_bot,), bot=True, avatar=None)
        people = [self.alice, self.bob, self.carol, self.dave, self.other_bot, self.me]
        roles = [
            self._role(g, "@everyone", 0, EVERYONE),
            self._role(self.role_admin, "Admin", 5, MANAGE_GUILD | EVERYONE),
            self._role(self.role_bot, "xpbase", 20, MANAGE_ROLES | EVERYONE),
            self._role(self.role_regular, "Regular", 2, EVERYONE),
            self._role(self.role_veteran, "Veteran", 3, EVERYONE),
            self._role(self.role_elite, "Elite", 4, EVERYONE),
            self._role(self.role_booster, "Booster", 1, EVERYONE),
            self._role(self.role_muted, "Muted", 1, EVERYONE),
            self._role(self.role_above, "Above", 30, EVERYONE),
        ]
        channels = [
            self._channel(self.general, "general", 0),
            self._channel(self.spam, "bot-spam", 0),
            self._channel(self.announcements, "announcements", 0),
            self._channel(self.lounge, "Lounge", 2),
            self._channel(self.quiet, "Quiet", 2),
            self._channel(self.afk, "AFK", 2),
        ]
        self.payload = {
            "id": str(g),
            "name": "xpbase test server",
            "owner_id": str(self.alice.id),
            "roles": roles,
            "channels": channels,
            "members": [p.member() for p in people],
            "member_count": len(people),
            "voice_states": [],
            "afk_channel_id": str(self.afk),
            "afk_timeout": 300,
            "features": [],
            "emojis": [],
            "stickers": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
        }
        self.guild: discord.Guild = self.state._add_guild_from_data(self.payload)

    @staticmethod
    def _role(role_id: int, name: str, position: int, permissions: int) -> dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "hoist": False,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": True,
            "flags": 0,
        }

    def _channel(self, channel_id: int, name: str, kind: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(channel_id),
            "name": name,
            "type": kind,
            "guild_id": str(self.GUILD),
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
        }
        if kind == 2:
            data.update(bitrate=64000, user_limit=0, rtc_region=None)
        return data

    def next_id(self) -> int:
        return next(self._ids)

    def member(self, person: Person) -> discord.Member:
        found = self.guild.get_member(person.id)
        assert found is not None
        return found

    def channel(self, channel_id: int) -> Any:
        return self.guild.get_channel(channel_id)

    # Voice -------------------------------------------------------------------------------

    def voice(self, person: Person, channel_id: int | None, **flags: bool) -> None:
        """Put ``person`` in a voice channel (None: out of voice) with flags self_mute, self_deaf, mute,
        deaf, suppress, as a VOICE_STATE_UPDATE would."""
        data = {
            "guild_id": str(self.GUILD),
            "channel_id": str(channel_id) if channel_id else None,
            "user_id": str(person.id),
            "session_id": "s",
            "self_mute": False,
            "self_deaf": False,
            "mute": False,
            "deaf": False,
            "suppress": False,
            "self_video": False,
            "request_to_speak_timestamp": None,
            "member": self.member_payload(person),
        }
        data.update(flags)
        self.guild._update_voice_state(data, int(channel_id) if channel_id else None)  # type: ignore[arg-type]

    def set_roles(self, person: Person, *role_ids: int) -> None:
        """Give ``person`` exactly these roles (a GUILD_MEMBER_UPDATE; later payloads carry them too)."""
        self._roles[person.id] = tuple(role_ids)
        member = self.member(person)
        member._roles = discord.utils.SnowflakeList(role_ids)  # type: ignore[attr-defined]

    def member_payload(
        self, person: Person, with_user: bool = True, permissions: int | None = None
    ) -> dict[str, Any]:
        data = person.member(with_user=with_user, permissions=permissions)
        if person.id in self._roles:
            data["roles"] = [str(r) for r in self._roles[person.id]]
        return data

    # Messages ----------------------------------------------------------------------------

    def message(
        self,
        person: Person,
        content: str,
        *,
        at: dt.datetime = T0,
        channel_id: int | None = None,
        message_id: int | None = None,
        kind: int = 0,
        webhook: bool = False,
    ) -> discord.Message:
        """A MESSAGE_CREATE in the guild; its id is a snowflake of ``at`` (as Discord's ids are)."""
        mid = message_id or time_snowflake(at) + self.next_id() % 4096
        data = message_payload(mid, channel_id or self.general, person.user(), content, at, kind)
        data["guild_id"] = str(self.GUILD)
        data["member"] = self.member_payload(person, with_user=False)
        if webhook:
            data["webhook_id"] = str(self.next_id())
        channel = self.channel(channel_id or self.general)
        return discord.Message(state=self.state, channel=channel, data=data)  # type: ignore[arg-type]

    def dm(self, person: Person, content: str, at: dt.datetime = T0) -> discord.Message:
        """A direct message to the bot."""
        data = message_payload(time_snowflake(at), 999, person.user(), content, at)
        channel = discord.DMChannel(
            me=self.bot.user,
            state=self.state,  # type: ignore[arg-type]
            data={"id": "999", "type": 1, "recipients": [person.user()]},
        )
        return discord.Message(state=self.state, channel=channel, data=data)  # type: ignore[arg-type]

    # Interactions ------------------------------------------------------------------------

    def interaction(
        self,
        person: Person,
        command: str,
        *,
        options: list[dict[str, Any]] | None = None,
        channel_id: int | None = None,
        permissions: int | None = None,
        resolve: list[Person] | None = None,
        roles: list[int] | None = None,
        channels: list[int] | None = None,
        in_dm: bool = False,
    ) -> discord.Interaction:
        """An INTERACTION_CREATE for ``/command`` (``"xpconfig announcements"`` for a subcommand).

        ``options``: [{"name", "type", "value"}]; ``resolve``: people, ``roles`` and ``channels`` named in
        options (Discord sends them in ``resolved``); ``permissions`` default to those of the member's roles.
        """
        iid = self.next_id()
        names = command.split()
        opts = options or []
        for name in reversed(names[1:]):
            opts = [{"name": name, "type": 1, "options": opts}]
        resolved: dict[str, Any] = {}
        if resolve:
            resolved["users"] = {str(p.id): p.user() for p in resolve}
            resolved["members"] = {
                str(p.id): self.member_payload(p, with_user=False, permissions=ALL)
                for p in resolve
                if self.guild.get_member(p.id) is not None
            }
        if roles:
            resolved["roles"] = {str(r): self._role_payload(r) for r in roles}
        if channels:
            resolved["channels"] = {
                str(c): {
                    "id": str(c),
                    "name": self.channel(c).name,
                    "type": self.channel(c).type.value,
                    "permissions": str(ALL),
                    "guild_id": str(self.GUILD),
                }
                for c in channels
            }
        data: dict[str, Any] = {
            "id": str(self.next_id()),
            "name": names[0],
            "type": 1,
            "options": opts,
            "resolved": resolved,
        }
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(APP_ID),
            "type": 2,
            "token": f"tok-{iid}",
            "version": 1,
            "data": data,
            "locale": "en-US",
            "app_permissions": str(ALL),
            "entitlements": [],
            "attachment_size_limit": 10_000_000,
        }
        if in_dm:
            payload.update(
                user=person.user(),
                channel_id="999",
                channel={"id": "999", "type": 1},
                context=1,
                authorizing_integration_owners={"1": str(person.id)},
            )
        else:
            member = self.guild.get_member(person.id)
            perms = (
                permissions
                if permissions is not None
                else (member.guild_permissions.value if member is not None else EVERYONE)
            )
            cid = channel_id or self.general
            data["guild_id"] = str(self.GUILD)
            payload.update(
                guild_id=str(self.GUILD),
                channel_id=str(cid),
                guild_locale="en-US",
                context=0,
                channel={
                    "id": str(cid),
                    "type": self.channel(cid).type.value,
                    "guild_id": str(self.GUILD),
                    "name": self.channel(cid).name,
                    "permissions": str(ALL),
                },
                member=self.member_payload(person, permissions=perms),
                authorizing_integration_owners={"0": str(self.GUILD)},
            )
        return discord.Interaction(data=payload, state=self.state)  # type: ignore[arg-type]

    def click(self, person: Person, custom_id: str) -> discord.Interaction:
        """An INTERACTION_CREATE for a button press by ``person`` on a message of the bot in #general."""
        base = self.interaction(person, "levels")
        payload = {
            "id": str(base.id),
            "application_id": str(APP_ID),
            "type": 3,
            "token": f"tok-{base.id}",
            "version": 1,
            "data": {"custom_id": custom_id, "component_type": 2},
            "guild_id": str(self.GUILD),
            "channel_id": str(self.general),
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(ALL),
            "entitlements": [],
            "attachment_size_limit": 10_000_000,
            "member": self.member_payload(person, permissions=EVERYONE),
            "message": message_payload(self.next_id(), self.general, BOT_USER, "", T0),
        }
        return discord.Interaction(data=payload, state=self.state)  # type: ignore[arg-type]

    def _role_payload(self, role_id: int) -> dict[str, Any]:
        role = self.guild.get_role(role_id)
        assert role is not None
        return self._role(role.id, role.name, role.position, role.permissions.value)

    async def run(self, interaction: discord.Interaction) -> discord.Interaction:
        """Dispatch the interaction through the command tree and wait for the command to finish."""
        await self.bot.tree._call(interaction)  # type: ignore[attr-defined]
        return interaction


def message_payload(
    message_id: int, channel_id: int, author: dict[str, Any], content: str, at: dt.datetime, kind: int = 0
) -> dict[str, Any]:
    """A MESSAGE_CREATE's fields for a plain text message by ``author`` (a user object) at ``at``
    (no guild, no member)."""
    return {
        "id": str(message_id),
        "channel_id": str(channel_id),
        "author": author,
        "content": content,
        "timestamp": at.isoformat(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": kind,
        "flags": 0,
    }


def user_option(name: str, person: Person) -> dict[str, Any]:
    return {"name": name, "type": 6, "value": str(person.id)}


def option(name: str, value: Any) -> dict[str, Any]:
    kind = {bool: 5, int: 4, float: 10, str: 3}[type(value)]
    return {"name": name, "type": kind, "value": value}


def role_option(name: str, role_id: int) -> dict[str, Any]:
    return {"name": name, "type": 8, "value": str(role_id)}


def channel_option(name: str, channel_id: int) -> dict[str, Any]:
    return {"name": name, "type": 7, "value": str(channel_id)}


__all__ = ["BOT_USER", "T0", "Person", "World", "channel_option", "option", "role_option", "user_option"]
