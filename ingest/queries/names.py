"""Names: the ids of the `names` lookup table, and name search (the /search
page): the names matching a query, best first, and what each name is in how
many builds (the name_kinds view, which the search_names canned query reads too)."""

from __future__ import annotations

import difflib
import json
import re
import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from ingest.queries._sql import in_chunks


def name_id(conn: sqlite3.Connection, name: str) -> int | None:
    """The names row of `name`, if any."""
    row = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def name_ids(conn: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
    """{name: id} of the names already in the `names` lookup table."""
    return dict(in_chunks(conn, "SELECT name, id FROM names WHERE name IN ({})", names))


#: Surface tables whose names search finds, in the order a result lists them.
SURFACE_TABLES = ("tracepoints", "syscalls", "lsm_hooks", "kfuncs", "config_options", "modules")


_ORDER = "ORDER BY (n.name = :q) DESC, (substr(n.name, 1, length(:q)) = :q) DESC, length(n.name), n.name"


class Match(NamedTuple):
    name_id: int
    name: str


def indexed(conn: sqlite3.Connection, tables: set[str] | frozenset[str]) -> bool:
    """Whether the name_search trigram index exists and is filled."""
    return "name_search" in tables and bool(
        conn.execute("SELECT EXISTS (SELECT 1 FROM name_search_docsize)").fetchone()[0]
    )


def _known(tables: set[str] | frozenset[str]) -> str:
    """SQL: the names row `n` is a function, a type or another surface item
    or a module somewhere (not only a symbol name)."""
    wanted = ["functions", "types"] + [t for t in SURFACE_TABLES if t in tables]
    return "(" + " OR ".join(f"EXISTS (SELECT 1 FROM {t} WHERE name_id = n.id)" for t in wanted) + ")"


def matches(
    conn: sqlite3.Connection, text: str, limit: int, tables: set[str] | frozenset[str], use_index: bool
) -> list[Match]:
    """Up to `limit` names containing `text`, exact match first, then prefixes,
    then shorter names: the trigram index for 3+ characters, a prefix range on
    the names index when shorter, a scan when there is no index."""
    args: dict[str, str | int] = {"q": text, "limit": limit}
    if use_index and len(text) >= 3:
        args["match"] = '"' + text.replace('"', '""') + '"'
        sql = (
            "SELECT n.id, n.name FROM name_search s JOIN names n ON n.id = s.rowid"
            f" WHERE name_search MATCH :match {_ORDER} LIMIT :limit"
        )
    elif use_index:  # too short for trigrams: prefix only, on the names index
        args["end"] = text + "\U0010ffff"
        sql = (
            f"SELECT n.id, n.name FROM names n WHERE n.name >= :q AND n.name < :end AND {_known(tables)}"
            f" {_ORDER} LIMIT :limit"
        )
    else:  # no index built: a scan, still parameterized
        sql = f"SELECT n.id, n.name FROM names n WHERE instr(n.name, :q) > 0 AND {_known(tables)} {_ORDER} LIMIT :limit"
    return [Match(*r) for r in conn.execute(sql, args)]


class NameKinds(NamedTuple):
    """A row of the name_kinds view: in how many builds a name is each kind of item."""

    name_id: int
    name: str
    function_builds: int
    type_kinds: tuple[str, ...]  # struct, union, enum
    tracepoint_builds: int
    syscall_builds: int
    lsm_hook_builds: int
    kfunc_builds: int
    config_builds: int
    variable_builds: int
    module_builds: int  # builds shipping a module of this name


def name_kinds(conn: sqlite3.Connection, nids: Iterable[int]) -> dict[int, NameKinds]:
    """name id -> its NameKinds."""
    out = {}
    for r in conn.execute(
        f"SELECT {', '.join(NameKinds._fields)} FROM name_kinds WHERE name_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(nids)),),
    ):
        kinds = NameKinds(*r)
        out[kinds.name_id] = kinds._replace(type_kinds=tuple(r[3].split(",")) if r[3] else ())
    return out


#: How many names each piece of a mistyped name may bring as candidates.
_CANDIDATES_PER_PIECE = 300


def close_names(
    conn: sqlite3.Connection, text: str, table: str, limit: int, use_index: bool, cutoff: float = 0.6
) -> list[str]:
    """Names of `table` (functions, types, tracepoints, ...; not user input)
    close to `text`, best first: the candidates share a piece of it (its
    identifier parts of 3+ characters, and its first and last 4 characters;
    through the trigram index when there is one), ranked by difflib's ratio."""
    pieces = {p for p in re.split(r"[^A-Za-z0-9]+|_", text) if len(p) >= 3}
    pieces |= {text[:4], text[-4:]} if len(text) >= 4 else {text}
    known = f"EXISTS (SELECT 1 FROM {table} WHERE name_id = n.id)"
    if use_index:
        sql = (
            "SELECT n.name FROM name_search s JOIN names n ON n.id = s.rowid"
            f" WHERE name_search MATCH :match AND {known} LIMIT :limit"
        )
    else:
        sql = f"SELECT n.name FROM names n WHERE instr(n.name, :piece) > 0 AND {known} LIMIT :limit"
    candidates: set[str] = set()
    for piece in sorted(p for p in pieces if len(p) >= 3):
        args = {"match": '"' + piece.replace('"', '""') + '"', "piece": piece, "limit": _CANDIDATES_PER_PIECE}
        candidates.update(name for (name,) in conn.execute(sql, args))
    candidates.discard(text)
    return difflib.get_close_matches(text, sorted(candidates), n=limit, cutoff=cutoff)
