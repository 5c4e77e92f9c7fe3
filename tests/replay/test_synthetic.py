"""xpbase.replay.synthetic: a real dump's distribution scaled K times, replayed by the one replay path."""

from __future__ import annotations

import collections
import hashlib
import tracemalloc
from functools import cache
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from scipy import stats

from tests.replay.test_stackexchange import SUPABASE, Votes, answer, question, real_dump, user, write_dump
from xpbase.replay.stackexchange import FILES, DumpError, ProgressSink, replay
from xpbase.replay.synthetic import DumpModel, SyntheticDump

USERS, POSTS, VOTES = FILES


@cache
def model() -> DumpModel:
    return DumpModel.fit(real_dump("quantumcomputing"))


def digest(dump: SyntheticDump) -> str:
    """A hash of every row of the three files."""
    h = hashlib.sha256()
    for file in FILES:
        for row in dump.rows(file, None):
            h.update(repr(row).encode())
    return h.hexdigest()


def test_the_model_holds_the_source_dump() -> None:
    m = model()
    assert (m.users, m.posts, m.votes) == (3461, 1986, 12560)
    assert m.site == "quantumcomputing"


def test_same_seed_same_rows_other_seed_other_votes() -> None:
    m = model()
    assert digest(SyntheticDump(m, 1.5, seed=7)) == digest(SyntheticDump(m, 1.5, seed=7))
    assert digest(SyntheticDump(m, 1.5, seed=7)) != digest(SyntheticDump(m, 1.5, seed=8))
    # Reading one file first does not change another's rows (a random stream per file).
    dump = SyntheticDump(m, 1.5, seed=7)
    votes_first = list(dump.rows(VOTES, None))
    list(dump.rows(POSTS, None))
    assert list(dump.rows(VOTES, None)) == votes_first


@pytest.mark.parametrize("k", [1, 2, 5])
def test_counts_scale_by_k(k: int) -> None:
    m = model()
    dump = SyntheticDump(m, k, seed=1)
    users = list(dump.rows(USERS, None))
    posts = list(dump.rows(POSTS, None))
    votes = list(dump.rows(VOTES, None))
    assert len(users) == dump.size(USERS) == k * m.users
    assert len(votes) == dump.size(VOTES) == k * m.votes
    assert len({u[0] for u in users}) == len(users) and len({p[0] for p in posts}) == len(posts)
    assert collections.Counter(p[1] for p in posts) == {
        t: k * n for t, n in collections.Counter(m.post_type.tolist()).items()
    }
    # Votes are drawn: each type within 3 standard deviations of K times the source's count.
    source = collections.Counter(m.vote_type.tolist())
    drawn = collections.Counter(v[2] for v in votes)
    for vote_type, n in source.items():
        p = n / m.votes
        assert abs(drawn[vote_type] - k * n) <= 3 * (k * m.votes * p * (1 - p)) ** 0.5 + 1, vote_type
    assert dump.size(FILES[0]) is not None and SyntheticDump(m, 2.5).size(USERS) == round(2.5 * m.users)


def test_distributions_match_the_source() -> None:
    """Vote dates (KS test), the share of votes on absent posts, and the heavy tails of votes per post and
    posts per owner (quantiles) are the source's."""
    m = model()
    k = 10
    dump = SyntheticDump(m, k, seed=3)
    posts = list(dump.rows(POSTS, None))
    votes = list(dump.rows(VOTES, None))

    source_days = np.array([d.timestamp() for d in m.vote_created])
    days = np.array([v[4].timestamp() for v in votes])
    assert stats.ks_2samp(source_days, days).pvalue > 0.01
    # A sample from another distribution is told apart by the same test.
    assert stats.ks_2samp(source_days, days + 86400 * 3).pvalue < 0.01

    source_ids = set(m.post_id.tolist())
    absent = sum(1 for p in m.vote_post.tolist() if p not in source_ids) / m.votes
    ids = {p[0] for p in posts}
    drawn_absent = sum(1 for v in votes if v[1] not in ids) / len(votes)
    assert abs(drawn_absent - absent) < 0.01

    def per_key(keys: list[int], population: int) -> np.ndarray:
        counts = collections.Counter(keys)
        return np.array([*counts.values(), *[0] * (population - len(counts))])

    upvoted = [p for p, t in zip(m.vote_post.tolist(), m.vote_type.tolist(), strict=True) if t == 2]
    source_votes = per_key([p for p in upvoted if p in source_ids], m.posts)
    drawn_votes = per_key([v[1] for v in votes if v[2] == 2 and v[1] in ids], len(posts))
    # Posts per user in Users.xml (a post's owner may be a deleted account, absent from the file).
    source_users = set(m.user_id.tolist())
    source_posts = per_key([o for o in m.post_owner.tolist() if o in source_users], m.users)
    users = {u[0] for u in dump.rows(USERS, None)}
    drawn_posts = per_key([p[2] for p in posts if p[2] in users], len(users))
    for source, drawn in ((source_votes, drawn_votes), (source_posts, drawn_posts)):
        assert abs(drawn.mean() - source.mean()) <= 0.05 * source.mean()
        for q in (0.5, 0.9, 0.99):
            expected = np.quantile(source, q)
            assert abs(np.quantile(drawn, q) - expected) <= max(2, 0.25 * expected), q
        assert drawn.max() >= 0.5 * source.max()  # the tail is there


def test_deleted_posts_and_accounts_stay_absent_in_every_replica(tmp_path: Path) -> None:
    """A vote on a post id just above every post in Posts.xml, and a post whose owner's id is just above
    every user in Users.xml: in every copy they point at nothing (never at another replica's post or
    user, which ids packed replica after replica would make them)."""
    votes = Votes()
    for _ in range(20):
        votes.add(2, 2)  # the answer, upvoted
        votes.add(3, 2)  # a deleted post (above every id in Posts.xml)
    folder = write_dump(tmp_path, [user(1), user(2)], [question(1, 1), answer(2, 1, 3)], votes.rows)
    dump = SyntheticDump(DumpModel.fit(folder), 3, seed=5)
    users = {u[0] for u in dump.rows(USERS, None)}
    posts = {p[0]: p for p in dump.rows(POSTS, None)}
    assert len(users) == 6 and len(posts) == 6
    answers = [p for p in posts.values() if p[1] == 2]
    assert len(answers) == 3 and all(a[2] not in users for a in answers)  # owner 3 is no one's copy
    drawn = list(dump.rows(VOTES, None))
    on_posts = [v for v in drawn if v[1] in posts]
    assert len(drawn) == 120 and 0 < len(on_posts) < 120
    assert all(posts[v[1]][1] == 2 for v in on_posts)  # no vote reaches a question


def test_votes_are_streamed() -> None:
    """500,000 votes are made with a few MiB of Python memory (a list of them would take over 60 MiB)."""
    dump = SyntheticDump(model(), 40, seed=0)
    tracemalloc.start()
    try:
        n = sum(1 for _ in dump.rows(VOTES, None))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 40 * 12560
    assert peak < 16 * 2**20, peak


def test_bad_scale_and_incomplete_dump(tmp_path: Path) -> None:
    for k in (0, -1, float("nan"), float("inf"), 1e-9):
        with pytest.raises(ValueError):
            SyntheticDump(model(), k)
    with pytest.raises(DumpError, match=r"missing Votes\.xml"):
        (tmp_path / "x").mkdir()
        (tmp_path / "x" / "Users.xml").write_text("<users/>")
        (tmp_path / "x" / "Posts.xml").write_text("<posts/>")
        DumpModel.fit(tmp_path / "x")
    with pytest.raises(DumpError, match="needs users, posts and votes"):
        DumpModel.fit(write_dump(tmp_path, [user(1)], [], []))


class Batches(ProgressSink):
    def __init__(self) -> None:
        self.done: list[int] = []
        self.server: list[float] = []

    def batch(self, done: int, server_seconds: float) -> None:
        self.done.append(done)
        self.server.append(server_seconds)


async def test_a_small_synthetic_dump_replays_end_to_end(database_url: str) -> None:
    """A tenth of quantumcomputing: staged, planned and sent by the replay; a rerun credits nothing; the
    cap replays the first N awards of the plan."""
    dump = SyntheticDump(model(), 0.1, seed=2)
    sink = Batches()
    report = await replay(database_url, dump, SUPABASE, batch_size=500, progress=sink)
    assert report.site == "synthetic-quantumcomputing"
    assert (report.users_read, report.posts_read, report.votes_read) == (346, 199, 1256)
    assert report.awards == report.awards_planned > 346  # every user's start, and votes
    assert report.awards_replayed == 0 and report.xp_granted > 0
    assert report.agreement is not None and report.agreement.users > 0
    assert sink.done == [*range(500, report.awards, 500), report.awards]
    assert all(s > 0 for s in sink.server) and report.server_seconds == pytest.approx(sum(sink.server))
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("select count(*) from public.xp_ledger") == report.awards
        assert (
            await conn.fetchval(
                "select count(*) from public.identities where provider = 'stackexchange'"
                " and subject like 'synthetic-quantumcomputing:%'"
            )
            == 346
        )
        again = await replay(database_url, dump, SUPABASE, figures=False)
        assert again.awards_replayed == again.awards == report.awards and again.xp_granted == 0
        assert again.agreement is None
        assert await conn.fetchval("select count(*) from public.xp_ledger") == report.awards
    finally:
        await conn.close()


async def test_max_awards_replays_the_first_awards_of_the_plan(database_url: str) -> None:
    dump = SyntheticDump(model(), 0.05, seed=4)
    report = await replay(database_url, dump, SUPABASE, max_awards=120, batch_size=50, figures=False)
    assert report.awards == 120 < report.awards_planned
    conn = await asyncpg.connect(database_url)
    try:
        # The plan starts with every account's starting point, in creation order.
        assert await conn.fetchval("select count(*) from public.xp_ledger") == 120
        assert (
            await conn.fetchval(
                "select count(*) from public.xp_ledger where activity_slug = 'se_account_created'"
            )
            == 120
        )
    finally:
        await conn.close()
    with pytest.raises(ValueError, match="max_awards"):
        await replay(database_url, dump, SUPABASE, max_awards=-1)
