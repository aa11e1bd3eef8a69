"""The types rows of a build being stored (which named struct, union and enum
it has), and the layouts they share across builds (docs/concepts.md#types)."""

from __future__ import annotations

import sqlite3

from ingest.db.facts import store_facts
from ingest.db.families import TYPEDEFS, TYPES
from ingest.db.sql import ContentStore, Lookup, Lookups
from ingest.model import Build, Layout
from ingest.types.layouts import digest_of


class TypeRows:
    """vmlinux's named types, then the modules' that vmlinux lacks (a layout two
    modules share: the first module's), their layouts numbered as they come."""

    def __init__(self, conn: sqlite3.Connection, build: Build, lookups: Lookups):
        names = lookups.names
        self.layouts = LayoutStore(conn, lookups.texts)
        layouts = self.layouts
        #: (name_id, layout_id, kind, module_name_id): the type_facts columns.
        self.rows: list[tuple[int | None, int, str, int | None]] = sorted(
            {(names(x.name), layouts(x), x.kind, None) for x in build.layouts}
        )
        in_vmlinux = {x.name for x in build.layouts}
        module_types: dict[tuple[int | None, int, str], int | None] = {}
        for m in build.modules or ():
            for x in m.layouts:
                if x.name not in in_vmlinux:
                    module_types.setdefault((names(x.name), layouts(x), x.kind), names(m.name))
        self.rows += sorted((*key, module) for key, module in module_types.items())

    @property
    def n_structs(self) -> int:
        """Structs and unions as stored."""
        return sum(1 for _, _, kind, _ in self.rows if kind != "enum")

    def insert(self, conn: sqlite3.Connection, build_pk: int) -> None:
        store_facts(conn, TYPES, build_pk, self.rows)


class LayoutStore(ContentStore):
    """Layouts deduplicated by a digest of their content."""

    def __init__(self, conn: sqlite3.Connection, texts: Lookup):
        super().__init__(conn, texts, "layouts")
        self.fields: list[tuple] = []
        self.values: list[tuple] = []
        self.seen: dict[int, tuple[int, str]] = {}  # id(layout) -> (layout id, digest)

    def __call__(self, layout: Layout) -> int:
        return self.store(layout)[0]

    def store(self, layout: Layout) -> tuple[int, str]:
        """(layout id, digest) of `layout`, storing it and the layouts its
        members hold (first: a digest covers theirs) when new."""
        known = self.seen.get(id(layout))
        if known is not None:
            return known
        held = [self.store(f.type_layout) if f.type_layout is not None else None for f in layout.fields]
        digest = digest_of(layout)
        i = self.known(digest)
        self.seen[id(layout)] = (i or self.next_id, digest)
        if i is None:
            i = self.ids[digest] = self.next_id
            self.next_id += 1
            self.rows.append((i, layout.kind, layout.size, digest))
            texts, stored = self.texts, self.texts.ids.get  # stored(): the common case, without a call
            self.fields.extend(
                (
                    i,
                    f.position,
                    f.name,
                    stored(f.type_text) or texts(f.type_text),
                    stored(f.decl) or texts(f.decl),
                    f.bit_offset,
                    f.bit_size,
                    f.byte_size,
                    f.parent,
                    stored(f.canon_type) or texts(f.canon_type),
                    f.type_kind,
                    h[0] if h else None,
                )
                for f, h in zip(layout.fields, held)
            )
            self.values.extend(
                (i, k, name, value - (1 << 64) if value >= 1 << 63 else value)
                for k, (name, value) in enumerate(layout.values)
            )
        return i, digest

    def flush(self) -> None:
        self.conn.executemany("INSERT INTO layouts (id, kind, size, digest) VALUES (?,?,?,?)", self.rows)
        self.conn.executemany(
            "INSERT INTO struct_fields (layout_id, position, name, type_id, decl_id, bit_offset, bit_size,"
            " byte_size, parent, canon_id, type_kind, type_layout_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            self.fields,
        )
        self.conn.executemany(
            "INSERT INTO enum_values (layout_id, position, name, value) VALUES (?,?,?,?)", self.values
        )


class TypedefRows:
    """vmlinux's named typedefs (docs/concepts.md#typedefs), one row per
    distinct (name, target, resolved text); the layouts they resolve to join
    the build's layouts. builds.n_typedefs: how many, NULL when not recorded."""

    def __init__(self, build: Build, build_pk: int, lookups: Lookups, layouts: LayoutStore):
        names, texts = lookups.names, lookups.texts
        self.build_pk = build_pk
        self.recorded = build.typedefs is not None
        rows = {
            (names(t.name), texts(t.target), texts(t.canon)): (
                t.kind,
                t.size,
                layouts(t.layout) if t.layout is not None else None,
            )
            for t in build.typedefs or ()
        }
        #: (name_id, target_id, resolved_id, kind, size, layout_id): the typedef_facts columns.
        self.rows = sorted((*key, *rest) for key, rest in rows.items())

    def insert(self, conn: sqlite3.Connection) -> None:
        store_facts(conn, TYPEDEFS, self.build_pk, self.rows)
        conn.execute(
            "UPDATE builds SET n_typedefs = ? WHERE id = ?",
            (len(self.rows) if self.recorded else None, self.build_pk),
        )
