"""Resume reviews in Discord: members ask for a review and follow it; admins add reviewers and match.

Every rule is the database's (supabase/sql/95_reviews.sql, 96_review_matching.sql); the bot calls the
review RPCs as ``service_role`` naming the member it acts for (``profile_id``) or, for the admin
commands, the acting admin (``actor_id``), whose profile must be an xpbase admin (``xpbase admin
grant``): Discord's Manage Server only shows the commands. Answers are read through
``xpbase.models.reviews``.

- ``/resume``: ``request_review``; preferred times are free text read by ``xpbase.availability_text``
  ("Tue/Thu 7-9pm", "Weekdays after 6pm PT") in the member's IANA time zone, never guessed;
  specialties are suggested from ``review_specialty_list`` as the member types.
- ``/reviews``: ``my_reviews``, with buttons for ``review_action`` (confirm, cancel) and a form for
  ``review_feedback`` (rating 1-5) once a session is completed.
- ``/add_professional``: ``admin_upsert_professional`` (and ``set_review_availability`` when weekly
  times are given, read first so unreadable text changes nothing).
- ``/match_review``: the optimal matcher (``xpbase.matching.run_matching``) as the acting admin, or
  with ``dry_run`` only its proposals.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import available_timezones

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.replies import Refusal, defer, reply
from xpbase.availability_text import Unreadable, parse_text
from xpbase.errors import DomainError
from xpbase.matching import Report, run_matching
from xpbase.models.reviews import (
    Feedback,
    MatchInput,
    MyReviews,
    Professional,
    Request,
    Session,
    Specialty,
)

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

#: Request statuses the member can still act on (the SQL's open statuses).
OPEN = ("requested", "matched", "scheduled")
#: At most this many reviewing sessions get buttons (one row each; a message has five rows).
MAX_REVIEWING_ROWS = 4
#: At most this many matches are listed in /match_review's answer.
MAX_LISTED_MATCHES = 10
#: How long (seconds) the specialty list is kept for autocomplete, which asks on every keystroke.
SPECIALTIES_TTL_SECONDS = 300.0

Seniority = Literal["junior", "mid", "senior", "lead", "executive"]


@lru_cache(maxsize=1)
def _time_zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


async def time_zone_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """IANA zone names containing what was typed (Discord shows at most 25)."""
    typed = current.strip().lower().replace(" ", "_")
    return [app_commands.Choice(name=z, value=z) for z in _time_zones() if typed in z.lower()][:25]


DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class _Weekly(Protocol):
    weekday: int
    start_minute: int
    end_minute: int


def weekly_text(intervals: Sequence[_Weekly]) -> str:
    """Weekly local intervals as ``Tue 19:00-21:00, Thu 19:00-21:00`` (24:00 is the day's end)."""

    def hhmm(minute: int) -> str:
        return f"{minute // 60:02d}:{minute % 60:02d}"

    return ", ".join(
        f"{DAY_NAMES[i.weekday - 1]} {hhmm(i.start_minute)}-{hhmm(i.end_minute)}" for i in intervals
    )


def _words(text: str | None) -> list[str]:
    """``"software, data"`` -> ``["software", "data"]`` (commas or spaces, lower case, no blanks)."""
    return [w for w in (text or "").replace(",", " ").lower().split() if w]


def _when(text: str, style: str = "F") -> str:
    """A UTC ISO time as Discord's timestamp markup (each reader sees their own time zone)."""
    return discord.utils.format_dt(dt.datetime.fromisoformat(text.replace("Z", "+00:00")), style)  # type: ignore[arg-type]


def _session_line(session: Session, *, reviewer_view: bool) -> str:
    other = session.member.display_name if reviewer_view else session.professional.name
    confirmed = session.professional_confirmed if reviewer_view else session.member_confirmed
    name = discord.utils.escape_markdown(other)
    parts = [
        f"{_when(session.starts_at)} ({_when(session.starts_at, 'R')}) with **{name}**",
        session.status + (", you confirmed" if confirmed and session.status == "scheduled" else ""),
    ]
    if session.meeting_url:
        parts.append(session.meeting_url)
    return " · ".join(parts)


def reviewing_first(sessions: list[Session]) -> list[Session]:
    """Sessions one reviews, what needs doing first: scheduled ones soonest first, then completed ones
    latest first (my_reviews lists them oldest first)."""
    scheduled = sorted((s for s in sessions if s.status == "scheduled"), key=lambda s: s.starts_at)
    completed = sorted((s for s in sessions if s.status == "completed"), key=lambda s: s.starts_at)
    return scheduled + completed[::-1]


def reviews_embed(mine: MyReviews) -> discord.Embed:
    """/reviews: the member's requests (newest first, with their latest session) and the sessions they
    review."""
    embed = discord.Embed(title="Your resume reviews", colour=discord.Colour.blurple())
    if not mine.requests and not mine.reviewing:
        embed.description = "Nothing yet. Ask for a review with /resume."
        return embed
    for request in mine.requests[:5]:
        lines = [f"Status: **{request.status}** · asked {_when(request.created_at, 'R')}"]
        if request.specialties:
            lines.append("Specialties: " + ", ".join(request.specialties))
        if request.session is not None:
            lines.append("Session: " + _session_line(request.session, reviewer_view=False))
        embed.add_field(
            name=f"#{request.id} · {request.target_role}"[:256], value="\n".join(lines)[:1024], inline=False
        )
    if mine.reviewing:
        embed.add_field(
            name="Sessions you review",
            value="\n".join(
                f"#{s.request_id} · {_session_line(s, reviewer_view=True)}"
                for s in reviewing_first(mine.reviewing)[:10]
            )[:1024],
            inline=False,
        )
    return embed


class RatingModal(discord.ui.Modal, title="Rate this review"):
    """Feedback on a completed session: a rating 1-5 and an optional comment (``review_feedback``)."""

    rating: discord.ui.TextInput[RatingModal] = discord.ui.TextInput(
        label="Rating, 1 (poor) to 5 (excellent)", min_length=1, max_length=1, placeholder="5"
    )
    comment: discord.ui.TextInput[RatingModal] = discord.ui.TextInput(
        label="Comment (optional)", style=discord.TextStyle.paragraph, required=False, max_length=2000
    )

    def __init__(self, parent: ReviewsView, request_id: int) -> None:
        super().__init__()
        self.parent = parent
        self.request_id = request_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        text = self.rating.value.strip()
        if not text.isdigit():
            raise Refusal("A rating is a number from 1 to 5.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        feedback: Feedback = await self.parent.cog.bot.rpc.call(
            "review_feedback",
            request_id=self.request_id,
            rating=int(text),
            body=self.comment.value or "",
            profile_id=self.parent.profile_id,
        )
        await interaction.followup.send(
            f"Thank you: you rated review #{self.request_id} {feedback.rating}/5.", ephemeral=True
        )

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        _log_failure("rating", error)
        await replies.reply_error(interaction, error)


class ActionButton(discord.ui.Button["ReviewsView"]):
    """One workflow step on one review (``review_action``): confirm or cancel."""

    def __init__(self, request_id: int, action: Literal["confirm", "cancel"], label: str, row: int) -> None:
        style = discord.ButtonStyle.success if action == "confirm" else discord.ButtonStyle.danger
        super().__init__(label=label, style=style, custom_id=f"review:{action}:{request_id}", row=row)
        self.request_id = request_id
        self.action = action

    async def callback(self, interaction: discord.Interaction) -> None:
        assert self.view is not None
        await self.view.act(interaction, self.request_id, self.action)


class RateButton(discord.ui.Button["ReviewsView"]):
    """Opens the rating form for a completed review."""

    def __init__(self, request_id: int, label: str, row: int) -> None:
        super().__init__(
            label=label, style=discord.ButtonStyle.primary, custom_id=f"review:rate:{request_id}", row=row
        )
        self.request_id = request_id

    async def callback(self, interaction: discord.Interaction) -> None:
        assert self.view is not None
        await interaction.response.send_modal(RatingModal(self.view, self.request_id))


class ReviewsView(discord.ui.View):
    """The buttons under /reviews, for the member who ran it: on their newest request (confirm the
    session, cancel, rate once completed) and on up to four sessions they review (confirm, cancel, rate
    the member). After a step the message shows the new state."""

    def __init__(self, cog: Reviews, *, owner_id: int, profile_id: str, mine: MyReviews) -> None:
        super().__init__(timeout=600)
        self.cog = cog
        self.owner_id = owner_id
        self.profile_id = profile_id
        self.message: discord.Message | discord.WebhookMessage | None = None
        self.fill(mine)

    def fill(self, mine: MyReviews) -> None:
        """Buttons for what can be done now (the database still decides when one is pressed)."""
        self.clear_items()
        if mine.requests:
            self._request_buttons(mine.requests[0])
        row = 1
        for session in reviewing_first(mine.reviewing):
            if row > MAX_REVIEWING_ROWS:
                break
            rid = session.request_id
            if session.status == "scheduled":
                if not session.professional_confirmed:
                    self.add_item(ActionButton(rid, "confirm", f"Confirm #{rid} (reviewer)", row))
                self.add_item(ActionButton(rid, "cancel", f"Cancel #{rid} (reviewer)", row))
            elif session.status == "completed":
                self.add_item(RateButton(rid, f"Rate member of #{rid}", row))
            else:
                continue
            row += 1

    def _request_buttons(self, request: Request) -> None:
        session = request.session
        if request.status == "scheduled" and session is not None and not session.member_confirmed:
            self.add_item(ActionButton(request.id, "confirm", f"Confirm #{request.id}", 0))
        if request.status in OPEN:
            self.add_item(ActionButton(request.id, "cancel", f"Cancel #{request.id}", 0))
        if request.status == "completed":
            self.add_item(RateButton(request.id, f"Rate review #{request.id}", 0))

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message("Run /reviews to see your own reviews.", ephemeral=True)
            return False
        return True

    async def act(self, interaction: discord.Interaction, request_id: int, action: str) -> None:
        """``review_action`` as the member, then the message redrawn from ``my_reviews``."""
        await interaction.response.defer()
        done: Request = await self.cog.bot.rpc.call(
            "review_action", request_id=request_id, action=action, profile_id=self.profile_id
        )
        mine: MyReviews = await self.cog.bot.rpc.call("my_reviews", profile_id=self.profile_id)
        self.fill(mine)
        await interaction.edit_original_response(embed=reviews_embed(mine), view=self)
        word = {"confirm": "Confirmed", "cancel": "Cancelled"}.get(action, action)
        await interaction.followup.send(f"{word}: review #{done.id} is now {done.status}.", ephemeral=True)

    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        _log_failure("review button", error)
        await replies.reply_error(interaction, error)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException:
                pass


def _log_failure(what: str, error: BaseException) -> None:
    if replies.is_expected(error):
        log.info("%s refused: %s", what, error)
    else:
        log.error("%s failed", what, exc_info=error)


def _admin_refusal(error: DomainError) -> Refusal | DomainError:
    """The database's 42501 for a Discord admin whose profile is not an xpbase admin, said plainly."""
    if error.error.sqlstate == "42501":
        return Refusal(
            "Only xpbase admins manage resume reviews: an operator makes you one with `xpbase admin grant`."
        )
    return error


def match_embed(report: Report, *, open_before: int) -> discord.Embed:
    """/match_review's answer: booked (or proposed) matches, what was left, conflicts, phase times."""
    verb = "Proposed" if report.dry_run else "Booked"
    embed = discord.Embed(
        title=f"{verb} {len(report.matches)} of {open_before} open review requests",
        colour=discord.Colour.blurple(),
    )
    lines = []
    for match in sorted(report.matches, key=lambda m: m.starts_at or 0)[:MAX_LISTED_MATCHES]:
        when = discord.utils.format_dt(dt.datetime.fromtimestamp(match.starts_at or 0, dt.UTC), "f")
        session = f" · session {match.session_id}" if match.session_id is not None else ""
        lines.append(
            f"#{match.request_id} → reviewer `{match.professional_id[:8]}` · {when}"
            f" · score {match.score:.2f}{session}"
        )
    if len(report.matches) > MAX_LISTED_MATCHES:
        lines.append(f"... and {len(report.matches) - MAX_LISTED_MATCHES} more")
    embed.description = "\n".join(lines) or "No request could be matched with a free reviewer."
    embed.add_field(name="Unmatched", value=f"{len(report.unmatched)}")
    embed.add_field(name="Slot conflicts", value=f"{report.conflicts}")
    embed.add_field(name="Rounds", value=f"{report.rounds}")
    embed.set_footer(
        text=f"run {report.run_id} · "
        + " · ".join(f"{phase} {seconds * 1000:.0f} ms" for phase, seconds in report.phases.items())
    )
    return embed


class Reviews(commands.Cog):
    """Resume reviews: members ask for one and follow it; admins add professional reviewers and match."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot
        self._specialties: tuple[float, list[Specialty]] | None = None

    async def specialties(self) -> list[Specialty]:
        """``review_specialty_list()``, kept for SPECIALTIES_TTL_SECONDS."""
        if self._specialties is None or time.monotonic() - self._specialties[0] > SPECIALTIES_TTL_SECONDS:
            listed: list[Specialty] = await self.bot.rpc.call("review_specialty_list")
            self._specialties = (time.monotonic(), listed)
        return self._specialties[1]

    async def specialty_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """Completes the last of the comma separated specialties typed so far with the active ones."""
        *done, last = current.split(",") if current else [""]
        chosen = [w.strip().lower() for w in done if w.strip()]
        typed = last.strip().lower()
        prefix = ", ".join([*chosen, ""]) if chosen else ""
        return [
            app_commands.Choice(name=f"{prefix}{s.name} ({s.slug})"[:100], value=f"{prefix}{s.slug}"[:100])
            for s in await self.specialties()
            if s.slug not in chosen and (typed in s.slug or typed in s.name.lower())
        ][:25]

    # /resume ---------------------------------------------------------------------------

    @app_commands.command(name="resume", description="Ask a professional to review your resume.")
    @app_commands.describe(
        target_role="The role you are applying for, e.g. Backend engineer",
        times='When you are free each week, e.g. "Tue/Thu 7-9pm" or "Weekdays after 6pm"',
        time_zone="Your time zone (IANA name, e.g. Asia/Kolkata); optional when the times name one",
        specialties="What to review, comma separated (suggested as you type); resume when left out",
        industry="Your industry, e.g. fintech",
        resume_link="A link to your resume (https://...)",
        notes="Anything the reviewer should know",
    )
    @app_commands.autocomplete(time_zone=time_zone_choices)
    async def resume(
        self,
        interaction: discord.Interaction,
        target_role: app_commands.Range[str, 2, 100],
        times: app_commands.Range[str, 3, 200],
        time_zone: app_commands.Range[str, 1, 64] | None = None,
        specialties: app_commands.Range[str, 1, 200] = "resume",
        industry: app_commands.Range[str, 1, 60] | None = None,
        resume_link: app_commands.Range[str, 9, 500] | None = None,
        notes: app_commands.Range[str, 1, 1000] | None = None,
    ) -> None:
        if interaction.user.bot:
            raise Refusal("Bots do not ask for reviews.")
        try:
            parsed = parse_text(times, time_zone or "")
        except Unreadable as exc:
            raise Refusal(
                f'I could not read those times ({exc}). Try something like "Tue/Thu 7-9pm" or '
                '"Sat 10am-1pm", with your time zone.'
            ) from exc
        if resume_link is not None and not resume_link.startswith("https://"):
            raise Refusal("The resume link must start with https://.")
        await defer(interaction, ephemeral=True)
        profile_id = await self.bot.ensure_profile(interaction.user)
        request: Request = await self.bot.rpc.call(
            "request_review",
            profile_id=profile_id,
            request={
                "target_role": target_role,
                "industry": industry,
                "specialties": _words(specialties),
                "resume_url": resume_link,
                "notes": notes or "",
                "time_zone": parsed.time_zone,
                "preferred_times": [i.as_dict() for i in parsed.weekly],
            },
        )
        await reply(
            interaction,
            f"Review request #{request.id} for **{discord.utils.escape_markdown(request.target_role)}** "
            f"is in ({', '.join(request.specialties) or 'general'}). Your times, in {request.time_zone}: "
            f"{weekly_text(parsed.weekly)}. You will be told when a reviewer "
            "is booked; follow it with /reviews.",
        )

    @resume.autocomplete("specialties")
    async def _resume_specialties(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.specialty_choices(interaction, current)

    # /reviews --------------------------------------------------------------------------

    @app_commands.command(name="reviews", description="Your resume reviews: confirm, cancel or rate them.")
    async def reviews(self, interaction: discord.Interaction) -> None:
        if interaction.user.bot:
            raise Refusal("Bots have no reviews.")
        await defer(interaction, ephemeral=True)
        profile_id = await self.bot.ensure_profile(interaction.user)
        mine: MyReviews = await self.bot.rpc.call("my_reviews", profile_id=profile_id)
        view = ReviewsView(self, owner_id=interaction.user.id, profile_id=profile_id, mine=mine)
        if view.children:
            await reply(interaction, embed=reviews_embed(mine), view=view)
            view.message = await interaction.original_response()
        else:
            view.stop()
            await reply(interaction, embed=reviews_embed(mine))

    # /add_professional -----------------------------------------------------------------

    @app_commands.command(
        name="add_professional", description="Add or update a professional resume reviewer (admins)."
    )
    @app_commands.describe(
        name="The reviewer's name",
        time_zone="Their time zone (IANA name, e.g. Europe/Berlin)",
        specialties="What they review, comma separated (suggested as you type)",
        availability='Their weekly free time in their zone, e.g. "Tue/Thu 7-9pm"; replaces what was there',
        email="Their email (updates the reviewer with this email when there is one)",
        member="Their Discord account, when they are a member here",
        industries="Industries they know, comma separated",
        seniority="How senior they are",
        weekly_capacity="Sessions per 7 days (0 pauses them)",
        active="False takes them out of matching",
    )
    @app_commands.autocomplete(time_zone=time_zone_choices)
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def add_professional(
        self,
        interaction: discord.Interaction,
        name: app_commands.Range[str, 1, 100],
        time_zone: app_commands.Range[str, 1, 64],
        specialties: app_commands.Range[str, 1, 200] | None = None,
        availability: app_commands.Range[str, 3, 300] | None = None,
        email: app_commands.Range[str, 3, 254] | None = None,
        member: discord.Member | None = None,
        industries: app_commands.Range[str, 1, 300] | None = None,
        seniority: Seniority | None = None,
        weekly_capacity: app_commands.Range[int, 0, 40] | None = None,
        active: bool | None = None,
    ) -> None:
        weekly = None
        if availability is not None:
            try:
                parsed = parse_text(availability, time_zone)
            except Unreadable as exc:
                raise Refusal(f"I could not read that availability ({exc}); nothing was changed.") from exc
            weekly = [i.as_dict() for i in parsed.weekly]
        await defer(interaction, ephemeral=True)
        actor_id = await self.bot.ensure_profile(interaction.user)
        professional: dict[str, Any] = {"name": name, "time_zone": time_zone}
        optional: dict[str, Any] = {
            "email": email,
            "profile_id": await self.bot.ensure_profile(member) if member is not None else None,
            "specialties": _words(specialties) if specialties is not None else None,
            "industries": [w.strip() for w in industries.split(",") if w.strip()] if industries else None,
            "seniority": seniority,
            "weekly_capacity": weekly_capacity,
            "active": active,
        }
        professional.update({k: v for k, v in optional.items() if v is not None})
        try:
            saved: Professional = await self.bot.rpc.call(
                "admin_upsert_professional", professional=professional, actor_id=actor_id
            )
            if weekly is not None:
                saved = await self.bot.rpc.call(
                    "set_review_availability", professional_id=saved.id, weekly=weekly, actor_id=actor_id
                )
        except DomainError as exc:
            raise _admin_refusal(exc) from exc
        free = weekly_text(saved.availability) or "none yet"
        await reply(
            interaction,
            f"Reviewer **{discord.utils.escape_markdown(saved.name)}** saved "
            f"({'active' if saved.active else 'inactive'}, {saved.weekly_capacity} sessions a week, "
            f"{saved.seniority}).\n"
            f"Specialties: {', '.join(saved.specialties) or 'none'} · time zone {saved.time_zone}\n"
            f"Weekly availability (local): {free}",
        )

    @add_professional.autocomplete("specialties")
    async def _professional_specialties(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.specialty_choices(interaction, current)

    # /match_review ---------------------------------------------------------------------

    @app_commands.command(
        name="match_review", description="Match open review requests with reviewers and book them (admins)."
    )
    @app_commands.describe(
        dry_run="True: only show the proposed matches, book nothing",
        horizon_days="How far ahead to look for slots (days)",
        session_minutes="Length of each session (minutes)",
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def match_review(
        self,
        interaction: discord.Interaction,
        dry_run: bool = False,
        horizon_days: app_commands.Range[int, 1, 60] | None = None,
        session_minutes: app_commands.Range[int, 15, 240] | None = None,
    ) -> None:
        await defer(interaction, ephemeral=True)  # matching reads and books for seconds
        actor_id = await self.bot.ensure_profile(interaction.user)
        settings = self.bot.settings
        open_before: int | None = None

        async def call(function: str, /, **params: Any) -> Any:
            # JSON answers: run_matching reads them through xpbase.models.reviews itself.
            nonlocal open_before
            answer = await self.bot.rpc.call_json(function, **params)
            if function == "admin_review_match_input" and open_before is None:
                open_before = len(MatchInput.model_validate(answer).requests)
            return answer

        try:
            report = await run_matching(
                call,
                horizon_days=horizon_days or settings.review_horizon_days,
                session_minutes=session_minutes or settings.review_session_minutes,
                dry_run=dry_run,
                actor_id=actor_id,
            )
        except DomainError as exc:
            raise _admin_refusal(exc) from exc
        await reply(interaction, embed=match_embed(report, open_before=open_before or 0))


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Reviews(bot))
