"""Typedef differences (docs/concepts.md#differences): added, removed, and
`typedef target changed` when the type a typedef names differs, or, for a
typedef of an anonymous struct/union/enum (`typedef struct {...} atomic64_t`),
when that anonymous type's layout does. Only between builds that both
recorded their typedefs."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable

from ingest.db import ChangeRow
from ingest.queries import typedefs as reads
from ingest.queries.typedefs import TypedefRow

_ANONYMOUS = "{...}"


def typedef_changes(
    conn: sqlite3.Connection, a: int, b: int, match: Callable[[str], bool]
) -> list[ChangeRow]:
    """The typedef changes from build `a` to build `b`, for names `match` accepts."""
    if not (reads.recorded(conn, a) and reads.recorded(conn, b)):
        return []
    ra, rb = (_by_name(reads.of_build(conn, build), match) for build in (a, b))
    out: list[ChangeRow] = []
    for name in sorted(ra.keys() | rb.keys()):
        old, new = ra.get(name), rb.get(name)
        if old is None or new is None:
            kind, value = ("added", new) if old is None else ("removed", old)
            assert value is not None
            text = _targets(value)
            out.append(_row(name, kind, old=None if old is None else text, new=text if old is None else None))
        elif _targets(old) != _targets(new):
            out.append(_row(name, "typedef target changed", old=_targets(old), new=_targets(new)))
        elif _ANONYMOUS in _targets(old) and {r.layout_id for r in old} != {r.layout_id for r in new}:
            out.append(
                _row(name, "typedef target changed", detail="layout", old=_targets(old), new=_targets(new))
            )
    return out


def _by_name(rows: list[TypedefRow], match: Callable[[str], bool]) -> dict[str, list[TypedefRow]]:
    out: dict[str, list[TypedefRow]] = defaultdict(list)
    for r in rows:
        if match(r.name):
            out[r.name].append(r)
    return out


def _targets(rows: list[TypedefRow]) -> str:
    return " | ".join(sorted({r.target for r in rows}))


def _row(
    name: str, kind: str, detail: str | None = None, old: str | None = None, new: str | None = None
) -> ChangeRow:
    return ChangeRow(item_kind="typedef", name=name, change_kind=kind, detail=detail, old=old, new=new)
