"""Rule packs: data-only SQL files in ``supabase/rulepacks/`` that add a community's activity types (and their
categories, rules and badges) to a running database.

``xpbase load rulepack NAME`` runs ``supabase/rulepacks/NAME.sql`` as service_role in one transaction: the
pack either loads whole or, when the database refuses a row, not at all. Packs insert with
``on conflict do nothing``, so loading one again adds what is missing and keeps a community's own edits.
They are not migrations: ``xpbase migrate`` never loads them, a community chooses the packs it wants.

Packs shipped: ``career`` (the career system's seven claimable activity types, issue 15) and
``stackexchange`` (the Stack Exchange reputation rules, which ``xpbase replay stackexchange`` also loads).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xpbase.db import Database

#: What a pack may add; counted before and after, for the report.
COUNTED_TABLES = ("activity_categories", "activity_types", "activity_rates", "cap_groups", "badges")


class RulePackError(Exception):
    """A pack name that names no file in the rule pack folder; the message lists the packs there."""


@dataclass(frozen=True)
class RulePackReport:
    """What one load changed: rows per table before and after (``counts[table] = (before, after)``)."""

    name: str
    path: Path
    counts: dict[str, tuple[int, int]]

    @property
    def added(self) -> int:
        """Rows the load added over every counted table (0 on a reload of an unchanged pack)."""
        return sum(after - before for before, after in self.counts.values())


def available(supabase_dir: Path) -> list[str]:
    """The names of the packs in ``supabase_dir/rulepacks`` (file names without ``.sql``), sorted."""
    return sorted(p.stem for p in (supabase_dir / "rulepacks").glob("*.sql"))


def pack_path(supabase_dir: Path, name: str) -> Path:
    """The file of pack ``name``. RulePackError when there is none (a name is a file stem, no paths)."""
    names = available(supabase_dir)
    if name not in names:
        raise RulePackError(f"no rule pack {name!r}: the packs are {', '.join(names) or 'none'}")
    return supabase_dir / "rulepacks" / f"{name}.sql"


async def load_rule_pack(db: Database, supabase_dir: Path, name: str) -> RulePackReport:
    """Load pack ``name`` as service_role in one transaction and count what it added.

    RulePackError for an unknown name; asyncpg's errors (a DomainError through xpbase.db for the engine's own
    SQLSTATEs) when the database refuses a row, and then nothing of the pack is kept."""
    path = pack_path(supabase_dir, name)
    sql = path.read_text(encoding="utf-8")
    count_sql = " union all ".join(
        f"select '{table}', count(*) from public.{table}" for table in COUNTED_TABLES
    )
    async with db.as_service() as conn:
        before = {r[0]: r[1] for r in await conn.fetch(count_sql)}
        await conn.execute(sql)
        after = {r[0]: r[1] for r in await conn.fetch(count_sql)}
    return RulePackReport(name, path, {t: (before[t], after[t]) for t in COUNTED_TABLES})
