"""A synthetic Stack Exchange dump: a real dump's distribution scaled K times, for replay benchmarks.

:class:`DumpModel` reads a real dump (``Users.xml``, ``Posts.xml``, ``Votes.xml``,
streamed by ``iter_rows``) into column arrays: the empirical distribution that
the synthetic dump resamples. Its size is the source dump's, whatever the scale.

:class:`SyntheticDump` is a ``DumpSource`` for
``xpbase.replay.stackexchange.replay``: the same rows in the same shape, made
on the fly (generators, nothing of the synthetic dump is kept in memory), and
the same for the same model, scale and seed. With scale ``K``:

* users: ``round(K * U)``: ``floor(K)`` copies of every source user, then the
  first ``round(frac(K) * U)`` users once more (a copy is a *replica*;
  replica ``r`` of user ``s`` has id ``r * stride + (s - min_id) + 1``, the
  stride spanning every user id of the dump, referenced ones included, so a
  deleted account stays absent in every replica; posts likewise).
  Creation date and reputation are the source user's.
* posts: ``round(K * P)`` the same way (so questions, answers and other post
  types scale by K each); an answer's parent is the question's copy in the
  same replica; a post's owner is the owner's copy in a replica drawn
  uniformly, so each synthetic user owns about as many posts as the source
  user it copies (a Poisson draw around it: the heavy tail is kept).
* votes: ``round(K * V)``, each a bootstrap draw of a source vote (type,
  date, post, bounty and voter together: the empirical joint distribution)
  landing on a replica drawn uniformly: votes per type, vote dates, and votes
  per post and per credited user keep the source's distribution (each copy
  of a post with ``n`` votes gets about Poisson(``n``) votes). Votes on posts
  absent from ``Posts.xml`` (deleted) stay on absent posts. Ids run
  ``1..round(K * V)`` in draw order, so the order within a day (the replay
  orders by date, then id) is random.

A vote drawn into the partial last replica (fractional K) whose post is not
copied there is moved to a full replica; with K < 1 there is none, and such a
vote lands on an absent post (counted as deleted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xpbase.replay.stackexchange import (
    FILES,
    DumpError,
    DumpFile,
    XmlDump,
    check_site,
    iter_rows,
    site_from_dir,
)

#: Rows drawn per numpy call when making votes (memory per chunk: a few MiB whatever the scale).
CHUNK = 65536
PROGRESS_EVERY = 20000
#: "No value" in the integer columns (user ids can be negative: the Community user is -1).
NONE = -(2**62)
USERS, POSTS, VOTES = FILES


def _column(rows: list[tuple[Any, ...]], index: int, dtype: str) -> np.ndarray:
    if dtype == "object":
        out = np.empty(len(rows), dtype=object)
        out[:] = [r[index] for r in rows]
        return out
    return np.array([NONE if r[index] is None else r[index] for r in rows], dtype=dtype)


@dataclass(frozen=True)
class DumpModel:
    """A real dump's rows as column arrays (the empirical distribution a SyntheticDump resamples).

    Users: ``user_id``, ``user_reputation``, ``user_created`` (datetimes). Posts:
    ``post_id``, ``post_type``, ``post_owner``, ``post_parent``, ``post_wiki``
    (datetime or None), ``post_score`` (None: absent). Votes: ``vote_post``,
    ``vote_type``, ``vote_user``, ``vote_created`` (datetimes),
    ``vote_bounty``. :data:`NONE` in an integer column: no value.
    """

    site: str
    user_id: np.ndarray
    user_reputation: np.ndarray
    user_created: np.ndarray
    post_id: np.ndarray
    post_type: np.ndarray
    post_owner: np.ndarray
    post_parent: np.ndarray
    post_wiki: np.ndarray
    post_score: np.ndarray
    vote_post: np.ndarray
    vote_type: np.ndarray
    vote_user: np.ndarray
    vote_created: np.ndarray
    vote_bounty: np.ndarray

    @classmethod
    def fit(cls, dump_dir: Path) -> DumpModel:
        """Read the dump folder (streamed with ``iter_rows``). Raises DumpError for a missing file, a
        malformed row, or a dump without users, posts or votes."""
        XmlDump(dump_dir).check()
        users = list(iter_rows(dump_dir / USERS.name, USERS.convert))
        posts = list(iter_rows(dump_dir / POSTS.name, POSTS.convert))
        votes = list(iter_rows(dump_dir / VOTES.name, VOTES.convert))
        if not users or not posts or not votes:
            raise DumpError(f"{dump_dir}: a synthetic dump needs users, posts and votes to resample")
        # Column order: USER_COLUMNS, POST_COLUMNS, VOTE_COLUMNS of the replay.
        return cls(
            site=site_from_dir(dump_dir),
            user_id=_column(users, 0, "int64"),
            user_reputation=_column(users, 1, "int64"),
            user_created=_column(users, 2, "object"),
            post_id=_column(posts, 0, "int64"),
            post_type=_column(posts, 1, "int16"),
            post_owner=_column(posts, 2, "int64"),
            post_parent=_column(posts, 3, "int64"),
            post_wiki=_column(posts, 4, "object"),
            post_score=_column(posts, 5, "object"),
            vote_post=_column(votes, 1, "int64"),
            vote_type=_column(votes, 2, "int16"),
            vote_user=_column(votes, 3, "int64"),
            vote_created=_column(votes, 4, "object"),
            vote_bounty=_column(votes, 5, "int64"),
        )

    @property
    def users(self) -> int:
        """Users in the source dump."""
        return len(self.user_id)

    @property
    def posts(self) -> int:
        """Posts in the source dump."""
        return len(self.post_id)

    @property
    def votes(self) -> int:
        """Votes in the source dump."""
        return len(self.vote_type)


class _Ids:
    """Replica ids of one entity (users or posts): ``r * stride + (source_id - low) + 1``.

    ``full`` whole replicas and ``partial`` source rows (the first ones, in
    dump order) in replica ``full``.
    """

    def __init__(self, source_ids: np.ndarray, scale: float, *references: np.ndarray) -> None:
        # The id range covers every id referenced too (a deleted post or account is absent from its file):
        # an absent id then maps into a gap of its replica, never onto another replica's row.
        every = np.concatenate([source_ids, *(r[r != NONE] for r in references)])
        self.low = int(every.min())
        self.stride = int(every.max()) - self.low + 1
        self.full = math.floor(scale)
        self.partial = round(scale * len(source_ids)) - self.full * len(source_ids)
        if self.partial < 0:  # rounding: K = 2.9999... with few rows
            self.full, self.partial = self.full - 1, self.partial + len(source_ids)
        self.count = self.full * len(source_ids) + self.partial
        # Position of a source id in dump order (who is in the partial replica); -1: not in the dump.
        self.position = np.full(self.stride, -1, dtype=np.int64)
        self.position[source_ids - self.low] = np.arange(len(source_ids))

    def index(self, source_ids: np.ndarray) -> np.ndarray:
        """Position in dump order of each source id (-1: absent from the dump, or NONE)."""
        inside = source_ids != NONE
        out = np.full(len(source_ids), -1, dtype=np.int64)
        out[inside] = self.position[source_ids[inside] - self.low]
        return out

    def exists(self, replica: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Whether the copy of the source row at ``position`` is made in ``replica``."""
        in_partial = (replica == self.full) & (position < self.partial)
        return (position >= 0) & ((replica < self.full) | in_partial)

    def ids(self, replica: np.ndarray, source_ids: np.ndarray) -> np.ndarray:
        """The synthetic ids of ``source_ids``'s copies in ``replica`` (whether or not they exist)."""
        return replica * self.stride + (source_ids - self.low) + 1

    def replicas_of(self, position: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A replica drawn uniformly among those holding a copy of each row at ``position`` (>= 0)."""
        span = np.where(position < self.partial, self.full + 1, self.full)
        return np.floor(rng.random(len(position)) * np.maximum(span, 1)).astype(np.int64)


class SyntheticDump:
    """A DumpSource of ``scale`` times ``model``'s dump (see the module's docstring), deterministic for
    ``seed``. Each file's rows come from their own random stream, so the order files are read in does not
    matter. Raises ValueError for a scale that is not a positive finite number or that makes no votes."""

    def __init__(self, model: DumpModel, scale: float, seed: int = 0, site: str | None = None) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, not {scale!r}")
        if round(scale * model.votes) < 1:
            raise ValueError(f"scale {scale} makes no votes from {model.votes}")
        self.model = model
        self.scale = scale
        self.seed = seed
        self._site = check_site(site or f"synthetic-{model.site}")
        self.users = _Ids(model.user_id, scale, model.post_owner, model.vote_user)
        self.posts = _Ids(model.post_id, scale, model.post_parent, model.vote_post)
        self.vote_count = round(scale * model.votes)
        self._post_index = self.posts.index(model.post_id)
        self._vote_post_index = self.posts.index(model.vote_post)

    @property
    def site(self) -> str:
        """``synthetic-<source site>`` unless given."""
        return self._site

    def check(self) -> None:
        """Nothing to check: the model was read from a complete dump."""

    def size(self, file: DumpFile) -> int | None:
        """Rows of ``file`` (None for Badges.xml, which a synthetic dump has not)."""
        return {USERS.name: self.users.count, POSTS.name: self.posts.count, VOTES.name: self.vote_count}.get(
            file.name
        )

    def rows(self, file: DumpFile, on_progress: Callable[[int], None] | None) -> Iterator[tuple[Any, ...]]:
        """The rows of ``file`` in the replay's column order; progress in rows."""
        make = {USERS.name: self._users, POSTS.name: self._posts, VOTES.name: self._votes}.get(file.name)
        if make is None:
            return iter(())
        return _counted(make(), on_progress)

    def _rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, stream])

    def _users(self) -> Iterator[tuple[Any, ...]]:
        m, ids = self.model, self.users
        for replica in range(ids.full + 1):
            n = ids.partial if replica == ids.full else m.users
            synthetic = ids.ids(np.full(n, replica), m.user_id[:n])
            for i in range(n):
                uid = int(synthetic[i])
                yield (uid, int(m.user_reputation[i]), m.user_created[i], f"user {uid}")

    def _owners(self, source_owner: np.ndarray, rng: np.random.Generator) -> list[int | None]:
        """Synthetic user ids for source user ids (NONE: none): a copy in a uniformly drawn replica; a user
        absent from the dump stays absent (its id in replica 0)."""
        position = self.users.index(source_owner)
        replica = self.users.replicas_of(position, rng)
        replica[position < 0] = 0
        out = self.users.ids(replica, source_owner)
        return [None if s == NONE else int(o) for s, o in zip(source_owner, out, strict=True)]

    def _posts(self) -> Iterator[tuple[Any, ...]]:
        m, ids, rng = self.model, self.posts, self._rng(1)
        for replica in range(ids.full + 1):
            n = ids.partial if replica == ids.full else m.posts
            if n == 0:
                continue
            r = np.full(n, replica)
            synthetic = ids.ids(r, m.post_id[:n])
            parents = ids.ids(r, m.post_parent[:n])
            owners = self._owners(m.post_owner[:n], rng)
            for i in range(n):
                yield (
                    int(synthetic[i]),
                    int(m.post_type[i]),
                    owners[i],
                    None if m.post_parent[i] == NONE else int(parents[i]),
                    m.post_wiki[i],
                    m.post_score[i],
                )

    def _votes(self) -> Iterator[tuple[Any, ...]]:
        m, ids, rng = self.model, self.posts, self._rng(2)
        made = 0
        while made < self.vote_count:
            n = min(CHUNK, self.vote_count - made)
            pick = rng.integers(0, m.votes, size=n)
            position = self._vote_post_index[pick]
            replica = np.floor(rng.random(n) * self.scale).astype(np.int64)
            # Into the partial replica on a post not copied there: move it to a full replica.
            missing = (position >= 0) & ~ids.exists(replica, position)
            if ids.full > 0:
                replica[missing] = rng.integers(0, ids.full, size=int(missing.sum()))
            source_post = m.vote_post[pick]
            posts = ids.ids(replica, source_post)
            voters = self._owners(m.vote_user[pick], rng)
            types, created, bounty = m.vote_type[pick], m.vote_created[pick], m.vote_bounty[pick]
            for i in range(n):
                made += 1
                yield (
                    made,
                    None if source_post[i] == NONE else int(posts[i]),
                    int(types[i]),
                    voters[i],
                    created[i],
                    None if bounty[i] == NONE else int(bounty[i]),
                )


def _counted(rows: Iterator[tuple[Any, ...]], on_progress: Callable[[int], None] | None) -> Iterator[Any]:
    done = 0
    for row in rows:
        yield row
        done += 1
        if on_progress is not None and done % PROGRESS_EVERY == 0:
            on_progress(done)
    if on_progress is not None:
        on_progress(done)
