"""Rule changes: the document `xpbase rules diff|apply FILE` reads and `POST /v1/admin/rules/...` takes.

A change names only what it changes (at most 64 KiB as JSON); every section is optional and ``{}``
replays the rules as they are (after the rule tables were edited some other way). The SQL
(supabase/sql/47_rule_changes.sql) is the authority: it checks the document again, writes it into the rule
tables and decides every award of the ledger again under it. These models give the file and the HTTP body a
schema, so a typo is refused with the path of the bad field before anything reaches the database.

Example (YAML, or the same as JSON)::

    activities:
      message: {base_xp: 20, cooldown_seconds: 30}
    cap_groups:
      discord: {daily_cap: 2500}
    activity_rates:
      question_upvote:
        - {effective_from: 2019-11-13T00:00:00Z, base_xp: 10}
    multipliers:
      - {kind: event, factor: 2, starts_at: 2026-12-24T00:00:00Z, ends_at: 2026-12-27T00:00:00Z}
      - {id: 3, delete: true}
    level_curve:
      - {level: 1, xp_required: 0}
      - {level: 2, xp_required: 100}

Units: XP for amounts, seconds for cooldowns, UTC instants for dates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import asyncpg
import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from xpbase.models.rules import RuleChangeOutcome, RuleChangeProgress

if TYPE_CHECKING:
    from xpbase.db import Database

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
XP = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActivityRule(_Section):
    """Fields of public.activity_types to set. ``cap_group`` null makes the activity exempt from daily caps;
    ``min_xp``/``max_xp`` (both, or both null) let callers name an amount in that range."""

    base_xp: XP | None = None
    min_xp: XP | None = None
    max_xp: XP | None = None
    cooldown_seconds: int | None = Field(default=None, ge=0, le=31_536_000)
    cap_group: Slug | None = None
    xp_floor: int | None = Field(default=None, ge=0, le=1_000_000)


class ActivityRate(_Section):
    """The base XP of an activity from ``effective_from`` (compared with each award's occurred_at) on."""

    effective_from: AwareDatetime
    base_xp: XP
    description: str = Field(default="", max_length=500)


class CapGroupRule(_Section):
    """A daily cap group: the XP one member may earn per local day (``time_zone``, an IANA name) from all of
    its activities together. A new group needs ``daily_cap``."""

    daily_cap: int | None = Field(default=None, ge=1, le=100_000_000)
    time_zone: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=500)


class MultiplierRule(_Section):
    """Add a multiplier (no ``id``), change the named fields of one (``id``), or remove one (``id`` and
    ``delete: true``). ``factor`` is 0 < factor <= 100; the window [starts_at, ends_at) is optional."""

    id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    delete: bool | None = None
    kind: Literal["role", "channel", "event", "layer_status"] | None = None
    match_value: str | None = Field(default=None, min_length=1, max_length=100)
    activity_slug: Slug | None = None
    factor: float | None = Field(default=None, gt=0, le=100)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    description: str | None = Field(default=None, max_length=500)


class CurveLevel(_Section):
    """The total XP needed to reach ``level``."""

    level: int = Field(ge=1, le=1000)
    xp_required: int = Field(ge=0, le=10**15)


class RuleChange(_Section):
    """A rule change: activities by slug, dated rates by activity slug (replacing that activity's rates), cap
    groups by slug, multipliers to add/change/remove, and a whole new level curve (level 1 at 0 XP)."""

    activities: dict[Slug, ActivityRule] | None = Field(default=None, max_length=500)
    activity_rates: dict[Slug, list[ActivityRate]] | None = Field(default=None, max_length=500)
    cap_groups: dict[Slug, CapGroupRule] | None = Field(default=None, max_length=100)
    multipliers: list[MultiplierRule] | None = Field(default=None, max_length=500)
    level_curve: list[CurveLevel] | None = Field(default=None, min_length=1, max_length=1000)

    def document(self) -> dict[str, Any]:
        """The change as the SQL takes it: JSON values, only the fields the author wrote (a field written as
        null stays, as it means "set to null")."""
        return self.model_dump(mode="json", exclude_unset=True)


class RuleFileError(ValueError):
    """A rule change file that cannot be read or does not hold a valid change (the message says where)."""


def _json_ready(value: Any) -> Any:
    """YAML reads unquoted dates as date/datetime; the models take them as ISO text, UTC when YAML gave no
    offset (a bare date is its midnight UTC)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat() + "T00:00:00Z"
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def read_change(path: Path) -> RuleChange:
    """The rule change in ``path`` (YAML or JSON; an empty file is ``{}``).

    Raises RuleFileError naming the file and, for a bad field, its path in the document.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise RuleFileError(f"{path} is not valid {kind}: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RuleFileError(f"{path} must hold a mapping of rule sections, not {type(raw).__name__}")
    try:
        return RuleChange.model_validate(_json_ready(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}" for error in exc.errors()
        )
        raise RuleFileError(f"{path}: {problems}") from None


def render(outcome: RuleChangeOutcome, console: Console) -> None:
    """Print an outcome: the counts, then a table of the members listed (largest change first)."""
    verb = "would move" if outcome.dry_run else "moved"
    console.print(
        f"{outcome.awards_changed:,} award(s) decided differently; "
        f"{outcome.members_changed:,} member(s) {verb}: "
        f"{outcome.members_gaining:,} gain XP, {outcome.members_losing:,} lose XP ({outcome.xp_delta:+,} XP "
        f"in all), {outcome.levels_changed:,} change level, {outcome.tiers_changed:,} change tier, "
        f"{outcome.reward_roles_changed:,} gain or lose a reward role"
    )
    if not outcome.members:
        return
    table = Table(show_edge=False)
    for column in ("member", "XP", "level", "tier", "awards", "reward roles"):
        table.add_column(column, justify="right" if column in ("XP", "awards") else "left")
    for m in outcome.members:
        roles = [f"+{r.guild_id}/{r.role_id}" for r in m.reward_roles_gained]
        roles += [f"-{r.guild_id}/{r.role_id}" for r in m.reward_roles_lost]
        table.add_row(
            f"{m.display_name} ({m.profile_id})",
            f"{m.xp_before:,} → {m.xp:,} ({m.xp_delta:+,})",
            f"{m.level_before} → {m.level}" if m.level != m.level_before else str(m.level),
            f"{m.tier_before} → {m.tier}" if m.tier != m.tier_before else str(m.tier),
            str(m.awards_changed),
            " ".join(roles),
        )
    console.print(table)
    if outcome.members_changed > len(outcome.members):
        shown = len(outcome.members)
        console.print(f"(the {shown} largest changes of {outcome.members_changed:,} are listed)")


async def run(
    db: Database,
    change: RuleChange,
    *,
    reason: str | None,
    max_members: int,
    confirm: Callable[[RuleChangeOutcome], bool] | None = None,
    console: Console,
    progress: Callable[[RuleChangeProgress], None] | None = None,
) -> RuleChangeOutcome | None:
    """``xpbase rules diff`` (reason None) or ``apply``, as service_role.

    With ``confirm`` given, apply previews first and applies only when confirm(preview) is true (None when it
    was declined); without it, apply writes at once (the ledger is walked once). While the database works,
    a progress bar per step (ledger rows decided again, members corrected) shows on ``console`` and
    ``progress`` gets each report. Raises DomainError when the database refuses the change (nothing of it is
    kept).
    """
    if reason is None or confirm is not None:
        with _progress_bars(console, "played", progress) as on_notice:
            preview = RuleChangeOutcome.model_validate(
                await db.rpc(
                    "admin_rules_diff",
                    change=change.document(),
                    max_members=max_members,
                    on_notice=on_notice,
                )
            )
        if reason is None:
            return preview
        if confirm is not None and not confirm(preview):
            return None
    console.print("applying the change and writing its corrections (awards wait meanwhile)…")
    with _progress_bars(console, "written", progress) as on_notice:
        return RuleChangeOutcome.model_validate(
            await db.rpc(
                "admin_rules_apply",
                change=change.document(),
                reason=reason,
                max_members=max_members,
                on_notice=on_notice,
            )
        )


@contextmanager
def _progress_bars(
    console: Console, corrections: str, progress: Callable[[RuleChangeProgress], None] | None
) -> Iterator[Callable[[asyncpg.PostgresLogMessage], None]]:
    """A NOTICE listener for a rule change's progress (RuleChangeProgress in each NOTICE's detail): a bar per
    step on the console (erased when done), and ``progress`` called with each report."""
    labels = {"walk": "ledger rows decided again", "corrections": f"members' corrections {corrections}"}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def on_notice(message: asyncpg.PostgresLogMessage) -> None:
            if not message.message.startswith("rule change:") or not message.detail:
                return
            report = RuleChangeProgress.model_validate_json(message.detail)
            if report.step not in tasks:
                tasks[report.step] = bars.add_task(labels[report.step], total=report.total)
            bars.update(tasks[report.step], completed=report.done, total=report.total)
            if progress is not None:
                progress(report)

        yield on_notice
