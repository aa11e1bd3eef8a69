"""The rows of the other dependency surfaces of a build being stored
(docs/concepts.md#surfaces): trace events, syscalls, LSM hooks, kfuncs, config, variables."""

from __future__ import annotations

import sqlite3

from ingest.db.facts import numbered, store_facts
from ingest.db.families import SURFACES, VARIABLES
from ingest.db.sql import Lookups, addr
from ingest.db.types import LayoutStore
from ingest.model import Build


def surface_rows(build: Build, lookups: Lookups, layouts: LayoutStore) -> dict[str, list[tuple]]:
    """Fact rows of the surface tables, in their facts' key order (ingest.db.families.SURFACES)."""
    names, texts, long_texts = lookups.names, lookups.texts, lookups.long_texts
    structs = {x.name: x for x in build.layouts if x.kind == "struct"}
    for m in build.modules or ():
        for x in m.layouts:
            if x.kind == "struct":
                structs.setdefault(x.name, x)
    return {
        "tracepoints": [
            (
                names(t.name),
                t.system,
                names(t.event_class),
                layouts(structs[t.struct]) if t.struct in structs else None,
                names(t.func),
                long_texts(t.print_fmt),
                texts(t.raw_prototype),
                names(t.syscall),
                long_texts(t.fields),
                names(t.module),
            )
            for t in build.tracepoints
        ],
        "syscalls": [
            (s.abi, s.number, names(s.name), names(s.symbol), names(s.table)) for s in build.syscalls
        ],
        "lsm_hooks": [(names(h.name), texts(h.prototype), int(h.bpf_lsm)) for h in build.lsm_hooks],
        "kfuncs": [
            (names(k.name), k.source, " ".join(k.sets) or None, k.flags, names(k.module))
            for k in build.kfuncs
        ],
        "config_options": [(names(name), value) for name, value in sorted(build.config.items())],
    }


def insert_surfaces(conn: sqlite3.Connection, build_pk: int, rows: dict[str, list[tuple]]) -> None:
    for table, family in SURFACES.items():
        store_facts(conn, family, build_pk, rows[table])


def insert_variables(conn: sqlite3.Connection, build: Build, build_pk: int, lookups: Lookups) -> None:
    """The build's variables as interned facts (ingest.db.facts), their names numbered here."""
    names = lookups.names
    rows = [
        ((names(v.name), v.size, v.binding, v.section, int(v.per_cpu), int(v.btf_var)), (addr(v.address),))
        for v in build.variables or ()
    ]
    lookups.names.flush()
    store_facts(conn, VARIABLES, build_pk, numbered(rows))
