"""The instances, callers and functions rows of a build being stored, and the
prototypes they share across builds (docs/concepts.md#instances, #callers,
#function-status, #prototypes)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from itertools import chain
from operator import attrgetter

from ingest.db.sql import ContentStore, Lookup, Lookups, addr, next_id
from ingest.db.symbols import AttachColumns
from ingest.model import Build, FunctionStatus, Prototype

#: Function rows made and inserted at a time: all at once cost ~150 MB of peak memory.
_FUNCTION_SLICE = 50_000


def number_names(build: Build, lookups: Lookups) -> None:
    """Number the names and paths of instances, symbols and functions, in this
    order (new ids follow it), before their rows are made."""
    instances = build.instances
    lookups.names.add(map(attrgetter("name"), instances))
    lookups.paths.add(chain.from_iterable(map(attrgetter("decl_file", "cu"), instances)))
    lookups.names.add(chain.from_iterable(map(attrgetter("name", "stem"), build.symbols)))
    lookups.names.add(map(attrgetter("name"), build.functions))


class CodeRows:
    """Instances (ids assigned here, from `first`), their caller edges and the
    per-name function rows of one build, made while they are inserted."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        build: Build,
        build_pk: int,
        lookups: Lookups,
        module_ids: dict[str | None, int],
    ):
        self.build, self.build_pk, self.lookups, self.module_ids = build, build_pk, lookups, module_ids
        self.first = next_id(conn, "instances")
        self.prototypes = PrototypeStore(conn, lookups.texts)

    def insert_instances(self, conn: sqlite3.Connection) -> None:
        name_id, path_id = self.lookups.names.ids, self.lookups.paths.ids
        first, build_pk, module_ids = self.first, self.build_pk, self.module_ids
        conn.executemany(
            "INSERT INTO instances (id, build_id, name_id, external, decl_path_id, decl_line, cu_path_id,"
            " inline, address, defined, module_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                (first + k, build_pk, name_id[i.name], i.external, path_id[i.decl_file], i.decl_line)
                + (path_id[i.cu], i.inline, addr(i.address), i.defined, module_ids.get(i.module))
                for k, i in enumerate(self.build.instances)
            ),
        )

    def insert_callers(self, conn: sqlite3.Connection) -> None:
        first = self.first
        conn.executemany(
            "INSERT INTO callers (callee_id, caller_id, kind, sites) VALUES (?,?,?,?)",
            ((first + c.callee, first + c.caller, c.kind, c.sites) for c in self.build.calls),
        )

    def insert_functions(self, conn: sqlite3.Connection) -> None:
        """In slices, each after the prototypes (and their texts) it adds."""
        functions = self.build.functions
        row = self._function_row_maker()
        for start in range(0, len(functions), _FUNCTION_SLICE):
            rows = [row(f) for f in functions[start : start + _FUNCTION_SLICE]]
            self.lookups.texts.flush()
            self.prototypes.flush()
            conn.executemany(
                "INSERT INTO functions (name_id, build_id, collision, inline, suffixes, n_instances,"
                " n_symbols, prototype_id, prototype_source, ftrace, kprobe_blocked, btf_func, module_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )

    def _function_row_maker(self) -> Callable[[FunctionStatus], tuple]:
        build, build_pk, module_ids = self.build, self.build_pk, self.module_ids
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
                (name_id[f.name], build_pk, f.collision, f.inline, " ".join(f.suffixes) or None)
                + (f.n_instances, f.n_symbols, protos(f.prototype))
                + (f.prototype.source if f.prototype else None, *attach(f.name, f.module))
                + (has_btf_func, module_ids.get(f.module))
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
        i = self.ids.get(digest)
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
