"""Which function and trigger definitions in the feature files are not in a migration yet.

The feature files (``supabase/sql/NN_feature.sql``, listed in order by
``supabase/functions.sql`` as ``\\ir sql/NN_feature.sql`` lines) are where a
developer reads and edits every function and trigger. A database only ever
gets them through migrations (``xpbase migrate`` and ``supabase db push`` apply
the same files), so an edit reaches it as a new migration holding the
definitions that changed: ``xpbase migration new NAME`` writes it, and
``xpbase migration check`` (run by the test suite) fails while an edit has no
migration.

How "changed" is decided, with pglast (libpg_query, Postgres' own parser), no
database needed:

- Every statement gets the object it belongs to: a function
  (``schema.name(input types)``, types as the parser normalises them) for
  ``create function``, ``comment on function``, ``grant``/``revoke ... on
  function``, ``alter function`` and ``drop function``; a trigger
  (``schema.table.name``) for ``create trigger`` and ``drop trigger``; any
  other statement is its own object, keyed by its text.
- An object's *unit* is its statements in file order. In the migrations, a
  unit starts afresh at each ``create function`` / ``create trigger`` of the
  object, so the baseline is the definition the newest migration gave it.
- A unit of the feature files whose statements (compared as the parser
  deparses them, so whitespace and case outside literals do not count; ``drop
  ... if exists`` lines are preparation and not compared) differ from its
  baseline is *changed*, and the new migration repeats the whole unit. A
  function or trigger that the migrations create and the feature files no
  longer do gets ``drop ... if exists``.

What this cannot see (the database comparison in tests/sql/test_feature_files.py
can): a grant deleted from a feature file without a revoke in its place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pglast import ast, enums, parse_sql, split
from pglast.stream import RawStream

from xpbase.migrate import Migration, MigrationError, list_migrations

INCLUDE = re.compile(r"^\\ir\s+(\S+)\s*$")
MIGRATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")


class FunctionsDiffError(RuntimeError):
    """A feature file is missing, cannot be parsed, or a migration name is not usable (message names it)."""


@dataclass(frozen=True)
class Statement:
    """One top-level statement: the object it belongs to, its source text (with the comments before it)."""

    key: tuple[str, ...]
    source: str
    normalized: str
    preparatory: bool
    origin: str
    seq: int = 0
    defines: bool = False


@dataclass
class Unit:
    """The statements of one object (a function, a trigger, or a statement of its own), in file order."""

    key: tuple[str, ...]
    statements: list[Statement] = field(default_factory=list)

    def compared(self) -> list[str]:
        """The deparsed statements that decide whether the unit changed (drops excluded)."""
        return [s.normalized for s in self.statements if not s.preparatory]

    @property
    def label(self) -> str:
        """``function private.award_xp(uuid, text)``, ``trigger public.profiles._100_validate`` ..."""
        kind, *rest = self.key
        return f"{kind} {rest[0]}" if kind in ("function", "trigger") else f"statement {rest[0][:60]}"


@dataclass
class Diff:
    """What a new migration needs: units to (re)apply, in feature-file order, and objects to drop."""

    changed: list[Unit]
    dropped: list[tuple[str, ...]]

    @property
    def empty(self) -> bool:
        """True when the migrations already hold every definition of the feature files."""
        return not self.changed and not self.dropped

    def summary(self) -> list[str]:
        """One line per changed unit and per drop."""
        return [u.label for u in self.changed] + [f"drop {k[0]} {k[1]}" for k in self.dropped]


def feature_files(supabase_dir: Path) -> list[Path]:
    """The feature files in apply order, from the ``\\ir`` lines of ``functions.sql``.

    Raises FunctionsDiffError when ``functions.sql`` holds anything but comments
    and ``\\ir`` lines, or names a file that does not exist.
    """
    index = supabase_dir / "functions.sql"
    files = []
    for number, line in enumerate(index.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("--"):
            continue
        match = INCLUDE.match(text)
        if not match:
            raise FunctionsDiffError(f"functions.sql:{number}: only comments and `\\ir sql/FILE.sql` lines")
        path = (supabase_dir / match.group(1)).resolve()
        if not path.is_file():
            raise FunctionsDiffError(f"functions.sql:{number}: {match.group(1)} does not exist")
        files.append(path)
    return files


def _migrations(supabase_dir: Path) -> list[Migration]:
    """The migrations as ``xpbase migrate`` reads them, in file-name order; a misnamed file is an error."""
    try:
        return list_migrations(supabase_dir)
    except MigrationError as exc:
        raise FunctionsDiffError(str(exc)) from exc


def _names(nodes: Iterable[ast.Node] | None) -> list[str]:
    return [n.sval for n in nodes or () if isinstance(n, ast.String)]


def _type(node: ast.TypeName) -> str:
    names = [n for n in _names(node.names) if n != "pg_catalog"]
    text = ".".join(names)
    if node.pct_type:
        text += "%type"
    return text + "[]" * len(node.arrayBounds or ())


def _function(names: Iterable[ast.Node], types: Iterable[ast.TypeName]) -> tuple[str, ...]:
    qualified = _names(names)
    if len(qualified) == 1:
        qualified = ["public", *qualified]
    return ("function", f"{'.'.join(qualified)}({', '.join(_type(t) for t in types)})")


def _object_with_args(node: ast.ObjectWithArgs) -> tuple[str, ...]:
    return _function(node.objname, node.objargs or ())


_INPUT_MODES = {
    enums.FunctionParameterMode.FUNC_PARAM_IN,
    enums.FunctionParameterMode.FUNC_PARAM_INOUT,
    enums.FunctionParameterMode.FUNC_PARAM_VARIADIC,
    enums.FunctionParameterMode.FUNC_PARAM_DEFAULT,
}


def _key(stmt: ast.Node, normalized: str) -> tuple[tuple[str, ...], bool]:
    """The object a statement belongs to, and whether it is a preparatory drop."""
    function_kinds = (enums.ObjectType.OBJECT_FUNCTION, enums.ObjectType.OBJECT_PROCEDURE)
    if isinstance(stmt, ast.CreateFunctionStmt):
        params = [p.argType for p in stmt.parameters or () if p.mode in _INPUT_MODES]
        return _function(stmt.funcname, params), False
    if isinstance(stmt, ast.CommentStmt) and stmt.objtype in function_kinds:
        return _object_with_args(stmt.object), False
    if (
        isinstance(stmt, ast.GrantStmt)
        and stmt.objtype in function_kinds
        and stmt.objects
        and stmt.targtype == enums.GrantTargetType.ACL_TARGET_OBJECT
    ):
        return _object_with_args(stmt.objects[0]), False
    if isinstance(stmt, ast.AlterFunctionStmt):
        return _object_with_args(stmt.func), False
    if isinstance(stmt, ast.DropStmt) and stmt.removeType in function_kinds and len(stmt.objects) == 1:
        return _object_with_args(stmt.objects[0]), True
    if isinstance(stmt, ast.CreateTrigStmt):
        rel = stmt.relation
        return ("trigger", f"{rel.schemaname or 'public'}.{rel.relname}.{stmt.trigname}"), False
    if isinstance(stmt, ast.DropStmt) and stmt.removeType == enums.ObjectType.OBJECT_TRIGGER:
        names = _names(stmt.objects[0])
        if len(names) == 2:
            names = ["public", *names]
        return ("trigger", ".".join(names)), True
    return ("statement", normalized), False


def parse(sql: str, origin: str, first_seq: int = 0) -> list[Statement]:
    """The statements of one SQL file, each with the comments and blank lines before it.

    ``seq`` numbers them from ``first_seq`` on, so statements of several files keep their order.

    Raises FunctionsDiffError (naming ``origin``) when the parser refuses the text.
    """
    try:
        slices = list(split(sql, with_parser=True, only_slices=True))
        trees = parse_sql(sql)
    except Exception as exc:  # pglast.parser.ParseError and friends
        raise FunctionsDiffError(f"{origin}: {exc}") from exc
    statements = []
    previous_end = 0
    for piece, raw in zip(slices, trees, strict=True):
        # The gap before a statement holds the comments that introduce it (and the previous ';').
        gap = sql[previous_end : piece.start].lstrip(";").strip("\n")
        body = sql[piece.start : piece.stop].strip()
        previous_end = piece.stop
        try:
            normalized = RawStream()(raw.stmt)
        except Exception:  # a node pglast cannot print: compare the text with whitespace collapsed
            normalized = " ".join(body.split())
        key, preparatory = _key(raw.stmt, normalized)
        source = (gap.rstrip() + "\n" if gap.strip() else "") + body.rstrip(";") + ";"
        defines = isinstance(raw.stmt, ast.CreateFunctionStmt | ast.CreateTrigStmt)
        seq = first_seq + len(statements)
        statements.append(Statement(key, source, normalized, preparatory, origin, seq, defines))
    return statements


def units(statements: Iterable[Statement]) -> dict[tuple[str, ...], Unit]:
    """Group the statements of the feature files by object, keeping first-appearance order."""
    grouped: dict[tuple[str, ...], Unit] = {}
    for statement in statements:
        grouped.setdefault(statement.key, Unit(statement.key)).statements.append(statement)
    return grouped


def baseline(migrations: Iterable[Path]) -> tuple[dict[tuple[str, ...], list[str]], set[tuple[str, ...]]]:
    """Per object, the statements the newest migration that (re)defined it gave it, and what exists.

    Returns ``(definitions, existing)``: ``existing`` holds the functions and
    triggers that the migrations leave created (a later ``drop`` removes them).
    """
    definitions: dict[tuple[str, ...], list[str]] = {}
    existing: set[tuple[str, ...]] = set()
    for path in migrations:
        for statement in parse(path.read_text(encoding="utf-8"), path.name):
            key = statement.key
            if statement.preparatory:
                existing.discard(key)
                continue
            if statement.defines:
                definitions[key] = []
                existing.add(key)
            definitions.setdefault(key, []).append(statement.normalized)
    return definitions, existing


def diff(supabase_dir: Path, only: Iterable[Path] | None = None) -> Diff:
    """Compare the feature files (or ``only`` these of them) with what the migrations define."""
    files = feature_files(supabase_dir)
    chosen = [p.resolve() for p in only] if only is not None else files
    every: list[Statement] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        every.extend(parse(text, path.relative_to(supabase_dir.resolve()).as_posix(), len(every)))
    current = units(s for s in every if (supabase_dir.resolve() / s.origin) in chosen)
    definitions, existing = baseline(m.path for m in _migrations(supabase_dir))
    changed = [unit for key, unit in current.items() if definitions.get(key) != unit.compared()]
    # Statements of their own (a grant on a schema, say) count as applied once any migration has them.
    changed = [u for u in changed if u.key[0] != "statement" or u.key not in definitions]
    dropped: list[tuple[str, ...]] = []
    if only is None:
        defined = {s.key for s in every}
        dropped = sorted(
            k for k in existing if k not in defined and k[1].split(".", 1)[0] in ("public", "private")
        )
    return Diff(changed, dropped)


def _drop_sql(key: tuple[str, ...]) -> str:
    kind, name = key
    if kind == "function":
        return f"drop function if exists {name};"
    schema, table, trigger = name.split(".")
    return f"drop trigger if exists {trigger} on {schema}.{table};"


def render(name: str, changes: Diff, *, title: str | None = None) -> str:
    """The text of a migration that applies ``changes``: drops first, then each unit in file order.

    ``title`` is the opening comment (default: the name); the lines after it say where the rest came from.
    """
    lines = [*(f"-- {line}".rstrip() for line in (title or name).splitlines())]
    lines += [
        "--",
        "-- Written by `xpbase migration new` from the feature files in supabase/sql/:",
        "-- the function and trigger definitions that changed since the last migration.",
        "-- Edit the feature files, not this file; landed migrations never change.",
        "-- Changed:",
        *(f"--   {line}" for line in changes.summary()),
        "",
    ]
    if changes.dropped:
        lines.append("-- No longer in the feature files.")
        lines.extend(_drop_sql(k) for k in changes.dropped)
        lines.append("")
    origin = None
    for statement in sorted((s for u in changes.changed for s in u.statements), key=lambda s: s.seq):
        if statement.origin != origin:
            origin = statement.origin
            lines.append(f"-- from supabase/{origin} " + "-" * max(0, 60 - len(origin)))
            lines.append("")
        lines.append(statement.source)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def new_migration(
    supabase_dir: Path,
    name: str,
    *,
    now: datetime | None = None,
    only: Iterable[Path] | None = None,
    title: str | None = None,
) -> tuple[Path | None, Diff]:
    """Write ``supabase/migrations/<UTC timestamp>_<name>.sql`` with what changed; returns (path, diff).

    The path is None when nothing changed (no file is written). The timestamp
    is ``now`` (UTC, default the current time) as YYYYMMDDHHmmss, moved one
    second past the newest existing migration if needed so files stay in order.
    Raises FunctionsDiffError for a name the Supabase CLI would not accept in a
    file name (letters, digits, ``_`` and ``-``, at most 100 characters).
    """
    if not MIGRATION_NAME.match(name):
        raise FunctionsDiffError(
            f"{name!r}: a migration name is letters, digits, '_' and '-' (at most 100 characters)"
        )
    changes = diff(supabase_dir, only)
    if changes.empty:
        return None, changes
    stamp = int((now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S"))
    versions = [int(m.version) for m in _migrations(supabase_dir)]
    if versions and stamp <= max(versions):
        stamp = _next_second(max(versions))
    path = supabase_dir / "migrations" / f"{stamp}_{name}.sql"
    path.write_text(render(name, changes, title=title), encoding="utf-8")
    return path, changes


def _next_second(version: int) -> int:
    """The version one second after ``version`` (YYYYMMDDHHmmss)."""
    if len(str(version)) != 14:
        return version + 1
    moment = datetime.strptime(str(version), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return int(datetime.fromtimestamp(moment.timestamp() + 1, UTC).strftime("%Y%m%d%H%M%S"))
