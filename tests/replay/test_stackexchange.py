"""xpbase replay stackexchange: rules on hand-made dumps, and a real site replayed end to end."""

from __future__ import annotations

import asyncio
import csv
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from xpbase import cli
from xpbase.db import url_with_database
from xpbase.replay.stackexchange import DumpError, ReplayReport, replay, site_from_dir
from xpbase.settings import REPO_ROOT, get_settings

SUPABASE = REPO_ROOT / "supabase"
# ../shared beside the clone (CI), or two levels up for a git worktree in a folder of worktrees.
DUMPS = [root / "shared" / "data" / "stackexchange" for root in (REPO_ROOT.parent, REPO_ROOT.parent.parent)]


def real_dump(site: str) -> Path:
    """A dump folder from ../shared/data/stackexchange; fails (never skips) when it is missing."""
    for folder in DUMPS:
        if (folder / site / "Votes.xml").is_file():
            return folder / site
    pytest.fail(
        f"Stack Exchange dump {site!r} not found in {', '.join(map(str, DUMPS))}: the data lives in "
        "shared/data/stackexchange beside the repository"
    )


def write_dump(
    root: Path,
    users: list[dict[str, Any]],
    posts: list[dict[str, Any]],
    votes: list[dict[str, Any]],
    site: str = "tiny",
) -> Path:
    """A dump folder with Users.xml, Posts.xml and Votes.xml in the data dump's format."""
    folder = root / site
    folder.mkdir()
    for name, tag, rows in (
        ("Users.xml", "users", users),
        ("Posts.xml", "posts", posts),
        ("Votes.xml", "votes", votes),
    ):
        element = ET.Element(tag)
        for row in rows:
            ET.SubElement(element, "row", {k: str(v) for k, v in row.items()})
        ET.ElementTree(element).write(folder / name, encoding="utf-8", xml_declaration=True)
    return folder


def user(uid: int, rep: int = 1) -> dict[str, Any]:
    return {
        "Id": uid,
        "Reputation": rep,
        "CreationDate": "2018-01-01T10:00:00.000",
        "DisplayName": f"user{uid}",
    }


def question(pid: int, owner: int, **extra: Any) -> dict[str, Any]:
    return {
        "Id": pid,
        "PostTypeId": 1,
        "OwnerUserId": owner,
        "Score": 0,
        "CreationDate": "2018-01-02T00:00:00.000",
        **extra,
    }


def answer(pid: int, parent: int, owner: int, **extra: Any) -> dict[str, Any]:
    return {
        "Id": pid,
        "PostTypeId": 2,
        "ParentId": parent,
        "OwnerUserId": owner,
        "Score": 0,
        "CreationDate": "2018-01-02T00:00:00.000",
        **extra,
    }


class Votes:
    """Hand-made votes with increasing ids."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, post: int, vote_type: int, day: str = "2018-02-01", **extra: Any) -> None:
        self.rows.append(
            {
                "Id": len(self.rows) + 1,
                "PostId": post,
                "VoteTypeId": vote_type,
                "CreationDate": f"{day}T00:00:00.000",
                **extra,
            }
        )


async def run(database_url: str, folder: Path) -> tuple[ReplayReport, dict[int, int]]:
    """Replay a folder; returns the report and each Stack Exchange user's XP."""
    report = await replay(database_url, folder, SUPABASE)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "select split_part(i.subject, ':', 2)::integer as uid, p.xp from public.identities i"
            " join public.profiles p on p.id = i.profile_id where i.provider = 'stackexchange'"
        )
    finally:
        await conn.close()
    return report, {r["uid"]: r["xp"] for r in rows}


async def test_upvotes_stop_at_200_per_utc_day_and_accepts_are_exempt(
    database_url: str, tmp_path: Path
) -> None:
    """25 answer upvotes in one UTC day earn 200; an accept that day still earns 15; the next day is new."""
    votes = Votes()
    for _ in range(25):
        votes.add(2, 2, "2018-02-01")
    votes.add(2, 1, "2018-02-01")
    votes.add(2, 2, "2018-02-02")
    folder = write_dump(tmp_path, [user(1), user(2)], [question(1, 1), answer(2, 1, 2)], votes.rows)
    report, xp = await run(database_url, folder)
    assert xp[2] == 1 + 200 + 15 + 10
    assert xp[1] == 1 + 2
    assert report.capped == 5  # the 20th fits exactly; the 21st to 25th earn nothing
    assert report.outcomes == {"applied": 27}


async def test_downvotes_count_against_the_cap(database_url: str, tmp_path: Path) -> None:
    """At the cap, a downvote takes 2 and frees 2 of the day's cap for the next upvote (net, as SE)."""
    votes = Votes()
    for _ in range(20):
        votes.add(2, 2)
    votes.add(2, 3)
    votes.add(2, 2)
    votes.add(2, 2)
    folder = write_dump(tmp_path, [user(1), user(2)], [question(1, 1), answer(2, 1, 2)], votes.rows)
    _, xp = await run(database_url, folder)
    assert xp[2] == 1 + 200 - 2 + 2


async def test_question_upvotes_double_from_2019_11_13(database_url: str, tmp_path: Path) -> None:
    """A question upvote earns 5 on 2019-11-12 and 10 from 2019-11-13 (the rate in force that day)."""
    votes = Votes()
    votes.add(1, 2, "2019-11-12")
    votes.add(1, 2, "2019-11-13")
    votes.add(1, 2, "2020-06-01")
    folder = write_dump(tmp_path, [user(1)], [question(1, 1)], votes.rows)
    _, xp = await run(database_url, folder)
    assert xp[1] == 1 + 5 + 10 + 10


async def test_reputation_starts_at_one_and_never_goes_below(database_url: str, tmp_path: Path) -> None:
    """Every account starts at 1; downvotes and a bounty cannot take it under 1."""
    votes = Votes()
    votes.add(1, 2)  # 6
    for _ in range(4):
        votes.add(1, 3)  # 4, 2, 1, 1
    votes.add(3, 3)  # user 2: stays 1
    votes.add(1, 8, UserId=1, BountyAmount=50)  # user 1 cannot pay: stays 1
    folder = write_dump(tmp_path, [user(1), user(2), user(3)], [question(1, 1), question(3, 2)], votes.rows)
    report, xp = await run(database_url, folder)
    assert xp == {1: 1, 2: 1, 3: 1}
    assert report.floored == 4  # the third and fourth downvote of user 1, user 2's downvote, the bounty


async def test_community_wiki_and_deleted_posts_give_nothing_and_are_counted(
    database_url: str, tmp_path: Path
) -> None:
    """Votes on a community-wiki post or on a post absent from Posts.xml are skipped with their reason."""
    votes = Votes()
    votes.add(1, 2)
    votes.add(99, 2)
    votes.add(99, 3)
    votes.add(1, 5)  # a favourite: no reputation
    folder = write_dump(
        tmp_path, [user(1)], [question(1, 1, CommunityOwnedDate="2018-01-03T00:00:00.000")], votes.rows
    )
    report, xp = await run(database_url, folder)
    assert xp[1] == 1
    assert report.votes_read == 4
    assert report.outcomes == {"deleted_post": 2, "community_wiki": 1, "no_reputation": 1}
    assert report.votes_skipped == 4


async def test_accepting_your_own_answer_gives_nothing(database_url: str, tmp_path: Path) -> None:
    """A self-accept gives neither +15 nor +2; accepting someone else's answer gives +15 and +2."""
    votes = Votes()
    votes.add(2, 1)  # user 1 accepts own answer on question 1
    votes.add(4, 1)  # user 1 accepts user 2's answer on question 3
    folder = write_dump(
        tmp_path,
        [user(1), user(2)],
        [question(1, 1), answer(2, 1, 1), question(3, 1), answer(4, 3, 2)],
        votes.rows,
    )
    report, xp = await run(database_url, folder)
    assert xp == {1: 1 + 2, 2: 1 + 15}
    assert report.outcomes == {"applied": 1, "self_accept": 1}


async def test_bounties_debit_the_starter_and_credit_the_awarded_answer(
    database_url: str, tmp_path: Path
) -> None:
    """A bounty start takes BountyAmount from the vote's UserId; its close gives it to the answer's owner."""
    votes = Votes()
    for _ in range(20):
        votes.add(1, 2, "2018-02-01")  # user 1: 1 + 100
    for _ in range(20):
        votes.add(2, 2, "2018-02-05")  # user 2: 1 + 200, capped that day
    votes.add(1, 8, "2018-02-02", UserId=1, BountyAmount=50)
    votes.add(2, 9, "2018-02-05", BountyAmount=50)
    votes.add(1, 9, "2018-02-09")  # a bounty closed without an award
    folder = write_dump(tmp_path, [user(1), user(2)], [question(1, 1), answer(2, 1, 2)], votes.rows)
    report, xp = await run(database_url, folder)
    assert xp == {1: 1 + 100 - 50, 2: 1 + 200 + 50}
    assert report.outcomes["bounty_not_awarded"] == 1


async def test_unknown_owner_is_skipped(database_url: str, tmp_path: Path) -> None:
    """A vote on a post whose owner is not in Users.xml (deleted account) is skipped, not an error."""
    votes = Votes()
    votes.add(1, 2)
    folder = write_dump(tmp_path, [user(1)], [question(1, 77)], votes.rows)
    report, _ = await run(database_url, folder)
    assert report.outcomes == {"owner_unknown": 1}


async def test_score_badges_once_per_post_and_compared_with_badges_xml(
    database_url: str, tmp_path: Path
) -> None:
    """A question reaching score 10 earns Nice Question once (a dip and a new upvote add nothing; a capped
    upvote still counts); an answer at 8 earns nothing; the report sets the counts beside Badges.xml's."""
    votes = Votes()
    for _ in range(9):
        votes.add(1, 2, "2018-02-01")
    votes.add(1, 3, "2018-02-01")  # 8
    votes.add(2, 2, "2018-02-02")
    for _ in range(21):
        votes.add(3, 2, "2018-02-03")  # user 2's cap: 200 from 20 upvotes; the 21st is capped
    for day in ("2018-02-04", "2018-02-05", "2018-02-06"):
        votes.add(1, 2, day)  # 9, 10 (the badge), 11
    votes.add(1, 3, "2018-02-07")
    votes.add(1, 2, "2018-02-07")  # down to 10 and back to 11: no second badge
    for _ in range(9):
        votes.add(2, 2, "2018-02-08")  # the answer: 9 + 1 earlier = 10, to user 2 (cap reset per day)
    for _ in range(8):
        votes.add(4, 2, "2018-02-09")  # user 2's second answer stops at 8
    folder = write_dump(
        tmp_path,
        [user(1), user(2)],
        [question(1, 1), answer(2, 1, 2), answer(3, 1, 2), answer(4, 1, 2)],
        votes.rows,
    )
    badges = ET.Element("badges")
    for i, (uid, name) in enumerate(
        [(1, "Nice Question"), (2, "Nice Answer"), (2, "Nice Answer"), (2, "Student")]
    ):
        ET.SubElement(
            badges,
            "row",
            {
                "Id": str(i + 1),
                "UserId": str(uid),
                "Name": name,
                "Date": "2018-02-05T10:00:00.000",
                "Class": "3",
                "TagBased": "False",
            },
        )
    ET.ElementTree(badges).write(folder / "Badges.xml", encoding="utf-8", xml_declaration=True)
    report, _ = await run(database_url, folder)
    got = {b.name: (b.engine, b.dump) for b in report.badges}
    assert got == {
        "Nice Question": (1, 1),
        "Good Question": (0, 0),
        "Great Question": (0, 0),
        "Nice Answer": (2, 2),  # answers 2 and 3 (the capped 21st upvote still raised answer 3's score)
        "Good Answer": (0, 0),
        "Great Answer": (0, 0),
    }
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "select a.badge_slug, a.subject, a.awarded_at from public.badge_awards a"
            " where a.badge_slug like 'se%' order by a.badge_slug, a.subject"
        )
    finally:
        await conn.close()
    assert [(r["badge_slug"], r["subject"], r["awarded_at"].date().isoformat()) for r in rows] == [
        ("se_nice_answer", "answer:2", "2018-02-08"),
        ("se_nice_answer", "answer:3", "2018-02-03"),
        ("se_nice_question", "question:1", "2018-02-05"),
    ]


async def test_missing_file_and_malformed_row_are_dump_errors(database_url: str, tmp_path: Path) -> None:
    """A folder without Votes.xml, or a row without an Id, is a DumpError naming the file."""
    folder = write_dump(tmp_path, [user(1)], [], [])
    (folder / "Votes.xml").unlink()
    with pytest.raises(DumpError, match=r"Votes\.xml"):
        await replay(database_url, folder, SUPABASE)
    bad = write_dump(tmp_path, [{"Reputation": 1}], [], [], site="bad")
    with pytest.raises(DumpError, match=r"Users\.xml: row 1"):
        await replay(database_url, bad, SUPABASE)


def test_site_name_comes_from_the_folder(tmp_path: Path) -> None:
    """beer.stackexchange.com and beer both name the site beer; other names are refused."""
    assert site_from_dir(tmp_path / "beer.stackexchange.com") == "beer"
    assert site_from_dir(tmp_path / "quantumcomputing") == "quantumcomputing"
    with pytest.raises(DumpError):
        site_from_dir(tmp_path / "Not A Site!")


def test_cli_reset_needs_a_database_name(tmp_path: Path) -> None:
    """--reset without --database is refused before anything is touched (exit 2)."""
    assert cli.main(["replay", "stackexchange", str(tmp_path), "--reset"]) == 2


def test_cli_replays_and_writes_the_csv(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command replays a dump into DATABASE_URL, prints the report and writes one CSV row per user."""
    votes = Votes()
    votes.add(1, 2)
    folder = write_dump(tmp_path, [user(1, rep=6), user(2)], [question(1, 1)], votes.rows)
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert (
            cli.main(["replay", "stackexchange", str(folder), "--report-csv", str(tmp_path / "out.csv")]) == 0
        )
    finally:
        get_settings.cache_clear()
    out = " ".join(capsys.readouterr().out.split())  # the report wraps at the terminal's width
    assert "Agreement with published Reputation" in out
    assert "CC BY-SA" in out
    with (tmp_path / "out.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["se_user_id", "published_reputation", "xp", "level", "tier"],
        ["1", "6", "6", "1", "basic"],
        ["2", "1", "1", "1", "basic"],
    ]


def test_cli_reset_replays_into_a_fresh_database(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--database NAME makes and migrates NAME; --reset drops and recreates it before replaying."""
    votes = Votes()
    votes.add(1, 2)
    folder = write_dump(tmp_path, [user(1, rep=6)], [question(1, 1)], votes.rows)
    name = f"replay_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()

    async def state() -> tuple[int, int]:
        conn = await asyncpg.connect(database_url)
        target = await asyncpg.connect(url_with_database(database_url, name))
        try:
            oid = await conn.fetchval("select oid from pg_database where datname = $1", name)
            return int(oid), int(await target.fetchval("select count(*) from public.xp_ledger"))
        finally:
            await conn.close()
            await target.close()

    async def drop() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await conn.close()

    argv = ["replay", "stackexchange", str(folder), "--database", name]
    try:
        assert cli.main(argv) == 0
        first = asyncio.run(state())
        assert cli.main(argv) == 0
        assert asyncio.run(state()) == first
        assert cli.main([*argv, "--reset"]) == 0
        oid, rows = asyncio.run(state())
        assert oid != first[0]  # a new database ...
        assert rows == first[1] == 2  # ... with the same replay in it
    finally:
        get_settings.cache_clear()
        asyncio.run(drop())


@pytest.mark.slow
async def test_quantumcomputing_replay_agrees_with_published_reputation(
    database_url: str, tmp_path: Path
) -> None:
    """Real site: >= 98% within 5%, >= 90% exact (bonus allowed), Scores check, a rerun changes nothing."""
    folder = real_dump("quantumcomputing")
    first = await replay(database_url, folder, SUPABASE, report_csv=tmp_path / "first.csv")
    agreement = first.agreement
    assert agreement is not None and agreement.users > 1500
    assert agreement.share(agreement.within_5) >= 0.98
    assert agreement.share(agreement.exact) >= 0.90
    assert first.scores is not None and first.scores.posts > 1500 and first.scores.ok
    assert first.votes_read == 12560 and first.users_read == 3461
    assert first.awards_replayed == 0

    conn = await asyncpg.connect(database_url)
    ledger = "select count(*), sum(amount), sum(points) from public.xp_ledger"
    totals = "select count(*), sum(xp), sum(points), sum(level) from public.profiles"
    try:
        before = (tuple(await conn.fetchrow(ledger)), tuple(await conn.fetchrow(totals)))
        second = await replay(database_url, folder, SUPABASE, report_csv=tmp_path / "second.csv")
        after = (tuple(await conn.fetchrow(ledger)), tuple(await conn.fetchrow(totals)))
    finally:
        await conn.close()
    assert before == after
    assert before[0][0] == first.awards
    assert second.awards_replayed == second.awards == first.awards
    assert second.xp_granted == 0
    assert (tmp_path / "first.csv").read_text() == (tmp_path / "second.csv").read_text()

    # Score badges against Badges.xml: within 2% per badge, or short by no more than the deleted posts whose
    # votes reach the threshold (Posts.xml lacks them: neither owner nor type is known). Measured: all equal
    # but Nice Answer, 95 of 98, with 3 deleted posts at score 10 or more.
    assert {b.name: (b.engine, b.dump) for b in first.badges} == {
        "Nice Question": (145, 145),
        "Good Question": (8, 8),
        "Great Question": (1, 1),
        "Nice Answer": (95, 98),
        "Good Answer": (8, 8),
        "Great Answer": (0, 0),
    }
    for badge in first.badges:
        assert badge.dump is not None and badge.deleted_posts is not None
        assert abs(badge.engine - badge.dump) <= max(0.02 * badge.dump, badge.deleted_posts), badge
    assert [(b.name, b.engine) for b in second.badges] == [(b.name, b.engine) for b in first.badges]
