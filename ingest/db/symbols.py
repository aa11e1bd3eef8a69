"""The symbols rows of a build being stored, with their attach facts (docs/concepts.md#attachability)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from ingest.db.facts import numbered, store_facts
from ingest.db.families import SYMBOLS
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


def insert_symbols(conn: sqlite3.Connection, build: Build, build_pk: int, lookups: Lookups) -> None:
    """The build's symbols as interned facts; their names numbered before."""
    store_facts(conn, SYMBOLS, build_pk, _symbol_rows(build, lookups))


def _symbol_rows(build: Build, lookups: Lookups) -> Iterator[tuple]:
    name_id = lookups.names.ids
    attach = AttachColumns(build)
    return numbered(
        (
            (name_id[s.name], name_id[s.stem], " ".join(s.suffixes) or None, s.binding, s.section)
            + (*attach(s.name, s.module), name_id[s.module]),
            (s.size, addr(s.address)),
        )
        for s in build.symbols
    )
