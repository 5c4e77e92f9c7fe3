"""The replay's progress bar and final report, with rich."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.console import Console, Group
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from xpbase.replay.stackexchange import (
    ASSOCIATION_BONUS,
    SKIP_REASONS,
    VOTE_TYPES,
    ProgressSink,
    ReplayReport,
)


class RichProgress(ProgressSink):
    """A ProgressSink drawing one bar per phase (dump files in bytes, then profiles, then awards)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, name: str, total: int | None) -> None:
        unit = "bytes" if name.endswith(".xml") else name
        self.tasks[name] = self.progress.add_task(name, total=total, unit=unit)

    def update(self, name: str, completed: int) -> None:
        self.progress.update(self.tasks[name], completed=completed)


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.2%}" if whole else "-"


def _user(report: ReplayReport, user_id: int, name: str | None) -> Text:
    # CC BY-SA attribution: every user shown links to their profile on the site.
    return Text(
        f"{name or 'user' + str(user_id)} ({user_id})", style=f"link {report.site_url}/users/{user_id}"
    )


def _rates(row: dict[str, Any]) -> str:
    text = (
        str(row["base_xp"])
        if row["min_xp"] is None
        else f"{row['min_xp']}..{row['max_xp']} (caller's amount)"
    )
    for rate in row["rates"]:
        text += f"; {rate['xp']} from {str(rate['from'])[:10]}"
    return text


def events_table(report: ReplayReport) -> Table:
    """Votes read, applied and skipped (with reasons); awards made; time and rates."""
    table = Table(title="Events", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("", style="dim")
    table.add_row("users read (Users.xml)", f"{report.users_read:,}", "one profile each, starting at 1")
    table.add_row("posts read (Posts.xml)", f"{report.posts_read:,}", "")
    table.add_row("votes read (Votes.xml)", f"{report.votes_read:,}", "")
    for type_id, count in sorted(report.votes_by_type.items()):
        table.add_row(f"  type {type_id}: {VOTE_TYPES.get(type_id, 'other')}", f"{count:,}", "")
    table.add_row("votes applied", f"{report.votes_applied:,}", _pct(report.votes_applied, report.votes_read))
    table.add_row("votes skipped", f"{report.votes_skipped:,}", _pct(report.votes_skipped, report.votes_read))
    for reason, count in report.outcomes.items():
        if reason != "applied":
            table.add_row(f"  {reason}", f"{count:,}", SKIP_REASONS.get(reason, ""))
    new = report.awards - report.awards_replayed
    table.add_row(
        "awards sent to award_xp", f"{report.awards:,}", "starting points + 1 or 2 per applied vote"
    )
    table.add_row("  new ledger rows", f"{new:,}", f"{report.xp_granted:,} XP granted")
    table.add_row(
        "  already in the ledger", f"{report.awards_replayed:,}", "same idempotency key: nothing credited"
    )
    table.add_row("  capped (200 per UTC day)", f"{report.capped:,}", "granted less than asked")
    table.add_row("  floored (never below 1)", f"{report.floored:,}", "")
    table.add_row(
        "wall time",
        f"{report.wall_seconds:.1f} s",
        f"read and stage {report.read_seconds:.1f} s, replay {report.replay_seconds:.1f} s",
    )
    table.add_row("events/s", f"{report.events_per_second:,.0f}", "votes read per second of wall time")
    table.add_row("awards/s", f"{report.awards_per_second:,.0f}", "award_xp decisions per second of replay")
    return table


def rule_pack_table(report: ReplayReport) -> Table:
    """The se_* activities as the engine holds them."""
    table = Table(title="Rule pack in force (activity_types se_*)", header_style="bold")
    for name in ("activity", "XP", "cap group", "floor"):
        table.add_column(name)
    for row in report.rule_pack:
        cap = (
            f"{row['cap_group']} ({row['daily_cap']}/day {row['time_zone']})"
            if row["cap_group"]
            else "exempt"
        )
        table.add_row(row["slug"], _rates(row), cap, str(row["xp_floor"]))
    return table


def activities_table(report: ReplayReport) -> Table:
    """Ledger rows and XP per activity for this site's members."""
    table = Table(title="Ledger by activity (this site's members)", header_style="bold")
    for name in ("activity", "rows", "XP", "capped", "floored"):
        table.add_column(name, justify="left" if name == "activity" else "right")
    for row in report.activities:
        table.add_row(
            row["activity"],
            f"{row['awards']:,}",
            f"{row['xp']:,}",
            f"{row['capped']:,}",
            f"{row['floored']:,}",
        )
    return table


def levels_table(report: ReplayReport) -> Table:
    """Members per level and per tier."""
    tiers: dict[str, int] = defaultdict(int)
    table = Table(title="Members per level", header_style="bold")
    table.add_column("level", justify="right")
    table.add_column("tier")
    table.add_column("members", justify="right")
    for row in report.levels:
        tiers[row["tier_name"] or row["tier"] or "-"] += row["members"]
        table.add_row(str(row["level"]), row["tier_name"] or row["tier"] or "-", f"{row['members']:,}")
    by_tier = Table(title="Members per tier", header_style="bold")
    by_tier.add_column("tier")
    by_tier.add_column("members", justify="right")
    for tier, members in tiers.items():
        by_tier.add_row(tier, f"{members:,}")
    outer = Table.grid(padding=(0, 4))
    outer.add_row(table, by_tier)
    return outer


def seasons_table(report: ReplayReport) -> Table:
    """The top 5 of every monthly season (XP earned that UTC month; ties: who got there first)."""
    table = Table(title="Top 5 of every monthly season", header_style="bold")
    table.add_column("season")
    for rank in range(1, 6):
        table.add_column(f"#{rank}")
    rows: dict[str, list[Text]] = {}
    for row in report.seasons:
        cell = _user(report, row["user_id"], row["display_name"])
        cell.append(f" {row['xp']:,}", style="bold")
        rows.setdefault(row["season"], []).append(cell)
    for season, cells in rows.items():
        table.add_row(season, *cells)
    return table


def streaks_table(report: ReplayReport) -> Table:
    """The longest runs of consecutive UTC days on which a member earned XP."""
    table = Table(title="Longest activity streaks (consecutive UTC days with XP earned)", header_style="bold")
    for name in ("member", "days", "from", "to"):
        table.add_column(name, justify="right" if name == "days" else "left")
    for row in report.streaks:
        table.add_row(
            _user(report, row["user_id"], row["display_name"]),
            str(row["days"]),
            str(row["first_day"]),
            str(row["last_day"]),
        )
    return table


def agreement_table(report: ReplayReport) -> Table:
    """Replayed XP against the published Reputation (Reputation > 1), with and without the bonus allowance."""
    a = report.agreement
    assert a is not None
    table = Table(
        title=f"Agreement with published Reputation ({a.users:,} users with Reputation > 1)",
        caption=(
            f"'bonus allowed': each user may also have had Stack Exchange's one-off +{ASSOCIATION_BONUS} "
            "association bonus (200+ on another site), which the dump does not record. Within 5%: "
            "|published - replayed| <= 5% of published."
        ),
        header_style="bold",
    )
    for name in ("", "bonus allowed (0 or +100)", "no bonus"):
        table.add_column(name, justify="left" if not name else "right")
    table.add_row(
        "exact",
        f"{a.exact:,} ({_pct(a.exact, a.users)})",
        f"{a.exact_no_bonus:,} ({_pct(a.exact_no_bonus, a.users)})",
    )
    table.add_row(
        "within 5%",
        f"{a.within_5:,} ({_pct(a.within_5, a.users)})",
        f"{a.within_5_no_bonus:,} ({_pct(a.within_5_no_bonus, a.users)})",
    )
    return table


def differences_table(report: ReplayReport) -> Table:
    """The users furthest from their published Reputation (after the best bonus choice)."""
    table = Table(
        title="Largest differences",
        header_style="bold",
        caption="Suggested edits (+2), downvotes cast on answers (-1), reversals and deleted posts "
        "are not in the dump.",
    )
    for name in ("user", "published", "replayed", "bonus", "difference"):
        table.add_column(name, justify="left" if name == "user" else "right")
    for row in report.differences:
        diff = row["published"] - row["xp"] - row["bonus"]
        table.add_row(
            _user(report, row["user_id"], row["display_name"]),
            f"{row['published']:,}",
            f"{row['xp']:,}",
            f"+{row['bonus']}" if row["bonus"] else "0",
            f"{diff:+,}",
        )
    return table


def scores_table(report: ReplayReport) -> Table:
    """Per-post check: Score equals upvotes minus downvotes in Votes.xml."""
    s = report.scores
    assert s is not None
    table = Table(title="Per-post check: Score = upvotes - downvotes", header_style="bold")
    table.add_column("questions and answers", justify="right")
    table.add_column("matching", justify="right")
    table.add_column("result")
    table.add_row(
        f"{s.posts:,}",
        f"{s.matching:,} ({_pct(s.matching, s.posts)})",
        "[green]all posts match[/]" if s.ok else "[red]mismatches[/]",
    )
    for m in s.mismatches:
        table.add_row(f"post {m['post_id']}", f"Score {m['score']}", f"{m['up']} up, {m['down']} down")
    return table


def badges_table(report: ReplayReport) -> Table:
    """Per badge of the rule pack: awarded by the engine against Badges.xml."""
    table = Table(title="Badges: engine against Badges.xml", header_style="bold")
    for name, justify in (
        ("badge", "left"),
        ("level", "left"),
        ("engine", "right"),
        ("Badges.xml", "right"),
        ("difference", "right"),
        ("deleted posts at threshold", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for b in report.badges:
        diff = b.difference
        shown = "" if diff is None else f"{diff:+.1%}"
        colour = "green" if diff is not None and abs(diff) <= 0.02 else "yellow"
        table.add_row(
            b.name,
            b.level,
            f"{b.engine:,}",
            "" if b.dump is None else f"{b.dump:,}",
            f"[{colour}]{shown}[/]" if shown else "",
            "" if b.deleted_posts is None else f"{b.deleted_posts:,}",
        )
    return table


def render(report: ReplayReport, console: Console) -> None:
    """Print the whole report."""
    console.rule(f"[bold]Stack Exchange replay: {report.site}[/] ({report.site_url})")
    console.print(rule_pack_table(report))
    console.print(events_table(report))
    console.print(activities_table(report))
    console.print(levels_table(report))
    console.print(seasons_table(report))
    console.print(streaks_table(report))
    console.print(Group(agreement_table(report), differences_table(report)))
    console.print(scores_table(report))
    if report.badges:
        console.print(badges_table(report))
    if report.csv_rows is not None:
        console.print(f"CSV: {report.csv_rows:,} rows (se_user_id,published_reputation,xp,level,tier)")
    console.print(
        f"[dim]Data: {report.site_url}, from the Stack Exchange Data Dump, by Stack Exchange and its "
        "contributors, under CC BY-SA (4.0 for contributions from 2018-05-02, 3.0 before, 2.5 before "
        f"2011-04-08). Users link to {report.site_url}/users/<id>. These figures are derived data under the "
        "same licence.[/]"
    )
