"""A database made by an earlier kernsurf (tests/fixtures/upgrade/schema7.db,
schema 7, and schema10.db, schema 10, made by the script beside them) is
upgraded in place when opened for writing, and then answers every canned query
and every view it had exactly as before; what the new schema adds reads "not
recorded" for its builds. Schema 10 kept a symbol's size in its identity: three
of the fixture's symbols differ between v1 and v2 in size alone (fe_map 11 and
13 bytes, fe_entry_a 91 and 93, fe_entry_b 54 and 56), two facts each before,
one after; the two static fe_twin (12 and 10 bytes, in both builds) stay two."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from ingest import db
from ingest.join import classify
from tests.support import ROOT

#: Schema version -> the fixture database an earlier kernsurf made.
FIXTURES = {version: ROOT / "tests" / "fixtures" / "upgrade" / f"schema{version}.db" for version in (7, 10)}
#: Values for the canned queries' parameters: the fixture's two builds and names it holds.
PARAMETERS = [
    {"name": name, "build": "v1", "build_a": "v1", "build_b": "v2"}
    for name in ("fe_map", "fe_removed", "fe_ops", "fe_helper", "fe_inline_always")
]


def _status(collision, inline, suffixes, present, has_dwarf) -> str:
    return classify.build_status(collision, inline, (suffixes or "").split(), bool(present), has_dwarf != 0)


#: Id columns whose meaning changed (docs/storage.md#ids): an instance id names an
#: instance fact, the same in every build that has it, no longer one row of one build.
CHANGED_IDS = {"instance_id", "id", "callee_id", "caller_id"}
#: The views and canned queries whose `id`-named columns are instance ids.
INSTANCE_ID_SOURCES = {"instance_list", "caller_list", "function_instances"}
#: Tables schema 9 made views over interned facts: their rows, ids left out
#: (callers: through the caller_list view, compared with the views).
INTERNED = {
    "instances": "SELECT build_id, name_id, external, decl_path_id, decl_line, cu_path_id, inline, address,"
    " defined, module_id FROM instances",
    "symbols": "SELECT build_id, name_id, stem_id, suffixes, address, size, binding, section, ftrace,"
    " kprobe_blocked, module_id FROM symbols",
    "functions": "SELECT name_id, build_id, collision, inline, suffixes, n_instances, n_symbols, prototype_id,"
    " prototype_source, ftrace, kprobe_blocked, btf_func, module_id FROM functions",
}


def _without_changed_ids(name: str, cursor: sqlite3.Cursor) -> list[tuple]:
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    if name.split("[")[0] not in INSTANCE_ID_SOURCES:
        return rows
    keep = [k for k, c in enumerate(columns) if c not in CHANGED_IDS]
    return [tuple(r[k] for k in keep) for r in rows]


def _answers(path: Path, views: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """Every canned query for every PARAMETERS entry, the given columns of every
    view in `views` and the rows of the INTERNED tables, changed ids left out."""
    queries = yaml.safe_load((ROOT / "metadata.yml").read_text())["databases"]["kernels"]["queries"]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.create_function("ks_status", 5, _status, deterministic=True)
    try:
        out = {}
        for name, query in queries.items():
            sql = query["sql"] if isinstance(query, dict) else query
            for k, values in enumerate(PARAMETERS):
                out[f"{name}[{k}]"] = _without_changed_ids(name, conn.execute(sql, values))
        for view, columns in views.items():
            select = ", ".join(f'"{c}"' for c in columns)
            out[view] = sorted(
                _without_changed_ids(view, conn.execute(f"SELECT {select} FROM {view}")), key=repr
            )
        for table, sql in INTERNED.items():
            out[table] = sorted(conn.execute(sql).fetchall(), key=repr)
        return out
    finally:
        conn.close()


def _views(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            v for (v,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")
        ]
        return {v: [d[0] for d in conn.execute(f"SELECT * FROM {v} LIMIT 0").description] for v in names}
    finally:
        conn.close()


@pytest.fixture(params=sorted(FIXTURES), ids=lambda v: f"schema{v}")
def old(request, tmp_path) -> Path:
    path = tmp_path / "kernels.db"
    shutil.copy(FIXTURES[request.param], path)
    return path


@pytest.mark.parametrize("version", sorted(FIXTURES))
def test_the_fixtures_are_of_their_schema(version):
    conn = sqlite3.connect(FIXTURES[version])
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(version,)]
    assert conn.execute("SELECT name FROM builds ORDER BY id").fetchall() == [("v1",), ("v2",)]
    conn.close()


def test_an_upgraded_database_answers_as_before(old):
    views_before = _views(old)
    before = _answers(old, views_before)

    db.connect(old).close()  # opened for writing: upgraded in place

    views_after = _views(old)
    for view, columns in views_before.items():  # public views keep their columns
        assert views_after[view][: len(columns)] == columns, view
    after = _answers(old, views_before)
    assert after == before
    assert sum(len(rows) for rows in before.values()) > 100  # the queries found rows to compare


def test_what_the_new_schema_adds_is_not_recorded_for_old_builds(old):
    was = sqlite3.connect(old).execute("SELECT version FROM schema_version").fetchone()[0]
    db.connect(old).close()
    conn = sqlite3.connect(old)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(db.SCHEMA_VERSION,)]
    if was < 8:  # typedefs came with schema 8
        assert conn.execute("SELECT count(*) FROM typedefs").fetchone() == (0,)
        assert conn.execute("SELECT n_typedefs FROM builds").fetchall() == [(None,), (None,)]
    assert conn.execute("SELECT count(*) FROM value_bases").fetchone() == (0,)  # no release: no line
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_a_symbol_that_changed_size_alone_is_one_fact_after_the_upgrade(tmp_path):
    path = tmp_path / "kernels.db"
    shutil.copy(FIXTURES[10], path)
    sizes = (
        "SELECT b.name, s.size FROM symbols s JOIN builds b ON b.id = s.build_id"
        " JOIN names n ON n.id = s.name_id WHERE n.name = 'fe_map' ORDER BY b.name"
    )
    facts = "SELECT count(*) FROM symbol_facts f JOIN names n ON n.id = f.name_id WHERE n.name = 'fe_map'"
    conn = sqlite3.connect(path)
    assert conn.execute(sizes).fetchall() == [("v1", 11), ("v2", 13)]  # readelf -s: 11 and 13 bytes
    assert conn.execute(facts).fetchone() == (2,)
    total = conn.execute("SELECT count(*) FROM symbol_facts").fetchone()[0]
    conn.close()
    db.connect(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute(sizes).fetchall() == [("v1", 11), ("v2", 13)]
    assert conn.execute(facts).fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM symbol_facts").fetchone() == (
        total - 3,
    )  # fe_entry_a and _b too
    conn.close()
