"""``xpbase load challenges FILE.yaml``: read a challenges file, check it, and save it in batches.

The file (supabase/rulepacks/challenges.yaml is an example)::

    challenges:
      - slug: hello-world          # ^[a-z][a-z0-9_-]{0,63}$, the key saves are matched on
        title: Hello, world        # 1-200 characters
        description: Print it.     # optional, <= 4000 characters
        difficulty: easy           # easy | medium | hard | expert
        layer: cyber               # a layer slug (the award's layer)
        xp: 50                     # whole XP, within the layer's challenge activity range (10-1000)
        prerequisites: [intro]     # optional: slugs in this file or already in the database
        starts_at: 2026-12-01T00:00:00Z   # optional active window, times with a UTC offset
        ends_at: 2027-01-01T00:00:00Z
        active: true               # optional, default true
        position: 1                # optional catalogue order, default the place in the file

Every problem is reported with its line (``FILE:LINE: challenge 'slug': field: message``) before anything is
written; then the challenges are saved through ``admin_save_challenges`` (supabase/sql/39_challenges.sql)
in batches of at most 500, prerequisites first, so loading the same file twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from xpbase.db import Database
from xpbase.models.challenges import SaveSummary

BATCH = 500


class ChallengeIn(BaseModel):
    """One challenge of the file, as admin_save_challenges takes it."""

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    difficulty: Literal["easy", "medium", "hard", "expert"]
    layer: str = Field(min_length=1, max_length=32)
    xp: int = Field(ge=1, le=100_000, strict=True)
    prerequisites: list[str] = Field(default_factory=list, max_length=100)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    active: bool = True
    position: int | None = Field(default=None, ge=-1_000_000, le=1_000_000, strict=True)

    @model_validator(mode="after")
    def _window(self) -> ChallengeIn:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.slug in self.prerequisites:
            raise ValueError("a challenge cannot be its own prerequisite")
        return self


class ChallengeFileError(ValueError):
    """The file cannot be loaded: ``problems`` lists each as ``FILE:LINE: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class LoadReport:
    """What a load did, summed over its batches."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    total: int = 0
    batches: list[SaveSummary] = field(default_factory=list)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def read_challenges(path: Path) -> list[ChallengeIn]:
    """The challenges of ``path`` in an order that puts prerequisites first.

    Raises ChallengeFileError listing every problem with its line: YAML syntax, the shape (a ``challenges``
    list of mappings), each field (pydantic), duplicate slugs, and prerequisite cycles within the file.
    Unknown prerequisites are left to the database (they may be catalogued already). OSError if unreadable.
    """
    text = path.read_text(encoding="utf-8")
    name = str(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ChallengeFileError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("challenges"), list) or root is None:
        raise ChallengeFileError([f"{name}:1: the file is a mapping with a list under 'challenges'"])
    items_node = next(v for k, v in root.value if k.value == "challenges")
    problems: list[str] = []
    challenges: list[ChallengeIn] = []
    lines: dict[str, int] = {}
    for item, node in zip(data["challenges"], items_node.value, strict=True):
        line = _line(node)
        keys = {k.value: _line(k) for k, _ in node.value} if isinstance(node, yaml.MappingNode) else {}
        label = f"challenge {item.get('slug')!r}" if isinstance(item, dict) else "challenge"
        if not isinstance(item, dict):
            problems.append(f"{name}:{line}: each challenge is a mapping of fields")
            continue
        try:
            challenge = ChallengeIn.model_validate(item)
        except ValidationError as exc:
            for error in exc.errors():
                where = str(error["loc"][0]) if error["loc"] else ""
                at = keys.get(where, line)
                problems.append(f"{name}:{at}: {label}: {where + ': ' if where else ''}{error['msg']}")
            continue
        if challenge.slug in lines:
            problems.append(f"{name}:{line}: {label}: slug already used on line {lines[challenge.slug]}")
            continue
        lines[challenge.slug] = line
        if challenge.position is None:  # the file's order is the catalogue's
            challenge = challenge.model_copy(update={"position": len(challenges) + 1})
        challenges.append(challenge)
    if not problems:
        ordered, cycle = _prerequisites_first(challenges)
        if cycle:
            problems.append(
                f"{name}:{lines[cycle[0]]}: challenge {cycle[0]!r}: prerequisites lead back to it "
                f"({' -> '.join(cycle)})"
            )
        challenges = ordered
    if problems:
        raise ChallengeFileError(problems)
    return challenges


def _prerequisites_first(challenges: list[ChallengeIn]) -> tuple[list[ChallengeIn], list[str]]:
    """(challenges with each after its prerequisites from the file, a cycle as slugs or [])."""
    by_slug = {c.slug: c for c in challenges}
    ordered: list[ChallengeIn] = []
    state: dict[str, str] = {}

    def visit(slug: str, path: list[str]) -> list[str]:
        if state.get(slug) == "done":
            return []
        if state.get(slug) == "open":
            return [*path[path.index(slug) :], slug]
        state[slug] = "open"
        for pre in by_slug[slug].prerequisites:
            if pre in by_slug:
                cycle = visit(pre, [*path, slug])
                if cycle:
                    return cycle
        state[slug] = "done"
        ordered.append(by_slug[slug])
        return []

    for challenge in challenges:
        cycle = visit(challenge.slug, [])
        if cycle:
            return challenges, cycle
    return ordered, []


async def load_challenges(
    db: Database, path: Path, progress: Callable[[int, int], None] | None = None
) -> LoadReport:
    """Read ``path`` (read_challenges), save it as service_role in batches, calling ``progress(saved, read)``.

    Raises ChallengeFileError (nothing written) or DomainError when the database refuses a batch (that
    batch is not written; earlier batches are, and loading again resumes idempotently).
    """
    challenges = read_challenges(path)
    report = LoadReport(read=len(challenges))
    for start in range(0, len(challenges), BATCH):
        batch = challenges[start : start + BATCH]
        answer = await db.rpc("admin_save_challenges", challenges=[c.model_dump(mode="json") for c in batch])
        summary = SaveSummary.model_validate(answer)
        report.batches.append(summary)
        report.created += summary.created
        report.updated += summary.updated
        report.unchanged += summary.unchanged
        report.total = summary.total
        if progress is not None:
            progress(start + len(batch), len(challenges))
    return report
