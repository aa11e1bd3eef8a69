"""The instances, callers and functions rows of a build being stored, and the
prototypes they share across builds (docs/concepts.md#instances, #callers,
#function-status, #prototypes)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from operator import attrgetter

from ingest.db.facts import numbered, store_facts
from ingest.db.families import CALLS, FUNCTIONS, INSTANCES
from ingest.db.sql import ContentStore, Lookup, Lookups, addr
from ingest.db.symbols import AttachColumns
from ingest.model import Build, FunctionStatus, Prototype


def number_names(build: Build, lookups: Lookups) -> None:
    """Number the names and paths of instances, symbols and functions, in this
    order (new ids follow it), before their rows are made."""
    instances = build.instances
    lookups.names.add(map(attrgetter("name"), instances))
    lookups.paths.add(chain.from_iterable(map(attrgetter("decl_file", "cu"), instances)))
    lookups.names.add(chain.from_iterable(map(attrgetter("name", "stem"), build.symbols)))
    lookups.names.add(map(attrgetter("name"), build.functions))


class CodeRows:
    """The instances, caller edges and per-name function statuses of one build,
    stored as interned facts (ingest.db.facts) while their rows are made."""

    def __init__(self, conn: sqlite3.Connection, build: Build, build_pk: int, lookups: Lookups):
        self.build, self.build_pk, self.lookups = build, build_pk, lookups
        self.prototypes = PrototypeStore(conn, lookups.texts)
        self.instance_ids: list[int] = []

    def insert_instances(self, conn: sqlite3.Connection) -> None:
        self.instance_ids = store_facts(conn, INSTANCES, self.build_pk, self._instance_rows(), want_ids=True)

    def _instance_rows(self) -> Iterator[tuple]:
        name_id, path_id = self.lookups.names.ids, self.lookups.paths.ids
        return numbered(
            (
                (name_id[i.name], i.external, path_id[i.decl_file], path_id[i.cu], i.inline, i.defined)
                + (name_id[i.module],),
                (i.decl_line, addr(i.address)),
            )
            for i in self.build.instances
        )

    def insert_callers(self, conn: sqlite3.Connection) -> None:
        fact = self.instance_ids
        store_facts(
            conn,
            CALLS,
            self.build_pk,
            ((fact[c.callee], fact[c.caller], c.kind == "inline", c.sites) for c in self.build.calls),
        )

    def insert_functions(self, conn: sqlite3.Connection) -> None:
        """The rows, made as they are stored (not kept: peak memory), then the
        prototypes and texts they numbered (a store checks no foreign key row by row)."""
        store_facts(conn, FUNCTIONS, self.build_pk, map(self._function_row_maker(), self.build.functions))
        self.lookups.texts.flush()
        self.prototypes.flush()

    def _function_row_maker(self) -> Callable[[FunctionStatus], tuple]:
        build = self.build
        name_id, protos, attach = self.lookups.names.ids, self.prototypes, AttachColumns(build)
        btf_funcs = build.btf_funcs if build.info.has_btf else None
        module_btf = {m.name: m.btf_funcs for m in build.modules or ()}

        def function_row(f: FunctionStatus) -> tuple:
            has_btf_func = (
                None
                if btf_funcs is None
                else f.name in (btf_funcs if f.module is None else module_btf[f.module])
            )
            return (
                (name_id[f.name], f.collision, f.inline, " ".join(f.suffixes) or None)
                + (f.n_instances, f.n_symbols, protos(f.prototype))
                + (f.prototype.source if f.prototype else None, *attach(f.name, f.module))
                + (has_btf_func, name_id[f.module])
            )

        return function_row


class PrototypeStore(ContentStore):
    """Prototypes deduplicated by their printed text."""

    def __init__(self, conn: sqlite3.Connection, texts: Lookup):
        super().__init__(conn, texts, "prototypes")
        self.params: list[tuple] = []

    def __call__(self, proto: Prototype | None) -> int | None:
        if proto is None:
            return None
        canon_params: Sequence[str | None] = proto.canon_params or [None] * len(proto.params)
        key = proto.text
        if proto.canon_return not in (None, proto.return_type) or any(
            c is not None and c != t for c, (_, t) in zip(canon_params, proto.params)
        ):
            key += "~" + "|".join(map(str, [proto.canon_return, *canon_params]))  # same text, other meaning
        digest = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big", signed=True)
        i = self.known(digest)
        if i is None:
            i = self.ids[digest] = self.next_id
            self.next_id += 1
            texts, stored = self.texts, self.texts.ids.get  # stored(): the common case, without a call
            self.rows.append(
                (
                    i,
                    digest,
                    proto.text,
                    stored(proto.return_type) or texts(proto.return_type),
                    proto.variadic,
                    stored(proto.canon_return) or texts(proto.canon_return),
                )
            )
            self.params.extend(
                (i, k, name, stored(t) or texts(t), stored(c) or texts(c))
                for k, ((name, t), c) in enumerate(zip(proto.params, canon_params))
            )
        return i

    def flush(self) -> None:
        """Insert the prototypes numbered since the last flush."""
        self.conn.executemany(
            "INSERT INTO prototypes (id, digest, text, return_type_id, variadic, canon_return_id)"
            " VALUES (?,?,?,?,?,?)",
            self.rows,
        )
        self.conn.executemany(
            "INSERT INTO prototype_params (prototype_id, position, name, type_id, canon_id)"
            " VALUES (?,?,?,?,?)",
            self.params,
        )
        self.rows, self.params = [], []
