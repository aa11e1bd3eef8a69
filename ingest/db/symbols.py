"""The symbols rows of a build being stored, with their attach facts (docs/concepts.md#attachability)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from ingest.db.sql import Lookups, addr
from ingest.model import AttachFacts, Build


class AttachColumns:
    """The (ftrace, kprobe_blocked) columns of a symbol or function name, from
    vmlinux's attach facts or its module's; (None, None) when not recorded."""

    def __init__(self, build: Build):
        self.vmlinux = build.attach
        self.modules = {m.name: m.attach for m in build.modules or ()}

    def __call__(self, name: str, module: str | None) -> tuple[int | None, str | None]:
        facts: AttachFacts | None = (self.vmlinux if module is None else self.modules[module]).get(name)
        return (None, None) if facts is None else (int(facts.ftrace), facts.kprobe_blocked)


def symbol_rows(
    build: Build, build_pk: int, lookups: Lookups, module_ids: dict[str | None, int]
) -> Iterator[tuple]:
    """The rows, made as they are inserted (millions with modules); their names numbered before."""
    name_id = lookups.names.ids
    attach = AttachColumns(build)
    for s in build.symbols:
        yield (
            build_pk,
            name_id[s.name],
            name_id[s.stem],
            " ".join(s.suffixes) or None,
            addr(s.address),
            s.size,
            s.binding,
            s.section,
            *attach(s.name, s.module),
            module_ids.get(s.module),
        )


def insert_symbols(conn: sqlite3.Connection, rows: Iterator[tuple]) -> None:
    conn.executemany(
        "INSERT INTO symbols (build_id, name_id, stem_id, suffixes, address, size, binding, section,"
        " ftrace, kprobe_blocked, module_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
