"""Ingest of the compiled fixture program: exact rows derived from tests/fixtures/program."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import pipeline
from ingest.cli import cli
from tests.support import FIXTURES
from tests.support.programs import compile_program

# name -> (collision, inline, suffixes), from the comments in the C sources.
EXPECTED_STATUS = {
    "asm_defined": ("Unique Global", "No", None),  # symbol from asm, only a declaration in DWARF
    "const_prop": ("Unique Static", "Selective", "constprop"),
    "entry_a": ("Unique Global", "No", None),
    "entry_b": ("Unique Global", "No", None),
    "external_add": ("Unique Global", "No", None),
    "fully_inlined": ("Unique Static", "Full", None),
    "guarded_add": ("Unique Static", "Selective", None),
    "guarded_user": ("Unique Global", "No", None),
    "header_helper": ("Static Duplication", "Full", None),
    "log_message": ("Unique Global", "No", None),
    "main": ("Unique Global", "No", None),
    "never_defined": ("Unique Global", "Declared only", None),
    "partial": ("Unique Global", "Selective", "part"),
    "probe_ready": ("Unique Global", "No", None),
    "same_static": ("Static-Static Collision", "No", None),
    "scalar_repl": ("Unique Static", "Selective", "isra"),
    "selectively_inlined": ("Unique Static", "Selective", None),
    "shared_global": ("Static-Global Collision", "No", None),
    "with_cold": ("Unique Global", "No", "cold"),
}

# (callee, caller, caller CU, kind, sites)
EXPECTED_CALLERS = {
    ("asm_defined", "entry_a", "kernel/unit_a.c", "direct", 1),
    ("const_prop", "entry_a", "kernel/unit_a.c", "direct", 2),
    ("entry_a", "main", "kernel/main.c", "direct", 1),
    ("entry_b", "main", "kernel/main.c", "direct", 1),
    ("external_add", "entry_a", "kernel/unit_a.c", "direct", 2),
    ("external_add", "entry_b", "kernel/unit_b.c", "direct", 1),
    ("external_add", "partial", "kernel/unit_a.c", "direct", 2),
    # the call inside the out-of-line copy of an inline function
    ("external_add", "selectively_inlined", "kernel/unit_a.c", "direct", 1),
    ("log_message", "entry_b", "kernel/unit_b.c", "direct", 1),
    ("fully_inlined", "entry_a", "kernel/unit_a.c", "inline", 1),
    ("fully_inlined", "selectively_inlined", "kernel/unit_a.c", "inline", 1),
    ("header_helper", "entry_a", "kernel/unit_a.c", "inline", 1),
    ("header_helper", "entry_b", "kernel/unit_b.c", "inline", 1),
    ("never_defined", "entry_a", "kernel/unit_a.c", "direct", 1),
    ("partial", "entry_a", "kernel/unit_a.c", "direct", 2),
    ("partial", "entry_a", "kernel/unit_a.c", "inline", 2),
    ("partial", "partial", "kernel/unit_a.c", "direct", 1),  # partial's header calls partial.part.0
    ("same_static", "entry_a", "kernel/unit_a.c", "direct", 1),
    ("same_static", "entry_b", "kernel/unit_b.c", "direct", 1),
    ("scalar_repl", "entry_a", "kernel/unit_a.c", "direct", 1),
    ("selectively_inlined", "entry_a", "kernel/unit_a.c", "inline", 1),
    ("shared_global", "entry_b", "kernel/unit_b.c", "direct", 1),
    ("with_cold", "entry_a", "kernel/unit_a.c", "direct", 1),
    # guarded_add (llvm-dwarfdump of prog, GCC 12.2 -O2): the call_site of
    # probe_ready in WARN_ONCE_LIKE sits in the lexical block of the abstract
    # instance (DW_AT_inline), none in its out-of-line copy: one site for
    # guarded_add; the copy inlined into guarded_user has its own.
    ("probe_ready", "guarded_add", "kernel/unit_a.c", "direct", 1),
    ("probe_ready", "guarded_user", "kernel/unit_a.c", "direct", 1),
    ("external_add", "guarded_add", "kernel/unit_a.c", "direct", 2),
    ("external_add", "guarded_user", "kernel/unit_a.c", "direct", 2),
    # GCC splits guarded_add: each copy holds one more inlined copy of itself
    ("guarded_add", "guarded_add", "kernel/unit_a.c", "inline", 1),
    ("guarded_add", "guarded_user", "kernel/unit_a.c", "inline", 2),
}

SOURCES = FIXTURES / "program"


def line_of(file: str, text: str) -> int:
    """The line of the fixture source file where `text` first appears."""
    lines = (SOURCES / file).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


# name -> set of (external, decl_file, decl_line, cu, DW_AT_inline, defined)
EXPECTED_INSTANCES = {
    "asm_defined": {(1, "include/common.h", line_of("common.h", "int asm_defined("), None, None, 0)},
    "never_defined": {(1, "include/common.h", line_of("common.h", "int never_defined("), None, None, 0)},
    "header_helper": {
        (0, "include/common.h", line_of("common.h", "int header_helper("), "kernel/unit_a.c", 3, 1),
        (0, "include/common.h", line_of("common.h", "int header_helper("), "kernel/unit_b.c", 3, 1),
    },
    "same_static": {
        (0, "kernel/unit_a.c", line_of("unit_a.c", "int same_static("), "kernel/unit_a.c", None, 1),
        (0, "kernel/unit_b.c", line_of("unit_b.c", "int same_static("), "kernel/unit_b.c", None, 1),
    },
    "shared_global": {
        (
            1,
            "kernel/unit_a.c",
            line_of("unit_a.c", "noinline)) int shared_global("),
            "kernel/unit_a.c",
            None,
            1,
        ),
        (0, "kernel/unit_b.c", line_of("unit_b.c", "int shared_global("), "kernel/unit_b.c", None, 1),
    },
    "fully_inlined": {
        (0, "kernel/unit_a.c", line_of("unit_a.c", "int fully_inlined("), "kernel/unit_a.c", 3, 1)
    },
    "selectively_inlined": {
        (0, "kernel/unit_a.c", line_of("unit_a.c", "int selectively_inlined("), "kernel/unit_a.c", 3, 1)
    },
    "external_add": {
        (1, "kernel/unit_a.c", line_of("unit_a.c", "int external_add("), "kernel/unit_a.c", None, 1)
    },
}

PACKET_FIELDS = [  # (position, name, type, bit_offset, bit_size, parent)
    (0, "version", "unsigned int", 0, 4, None),
    (1, "flags", "unsigned int", 4, 12, None),
    (2, "length", "int", 32, 0, None),
    (3, None, "union {...}", 64, 0, None),
    (4, "raw", "long int", 64, 0, 3),
    (5, None, "struct {...}", 64, 0, 3),
    (6, "lo", "short int", 64, 0, 5),
    (7, "hi", "short int", 80, 0, 5),
    (8, "name", "const char *", 128, 0, None),
    (9, "handler", "int (*)(struct packet *, int)", 192, 0, None),
]


def rows(db: Path, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def status(db: Path) -> dict:
    return {
        name: (c, i, s)
        for name, c, i, s in rows(
            db, "SELECT name, collision, inline, suffixes FROM function_status WHERE n_instances > 0"
        )
    }


def test_status_of_every_function(program_db):
    assert status(program_db) == EXPECTED_STATUS


def test_status_line_names_the_issues():
    from ingest.join.classify import status_line

    assert status_line("Static Duplication", "Full", ()) == "Duplicate, Full Inline ⚠️"
    assert status_line("Unique Global", "No", ()) == "✅"
    assert (
        status_line("Static-Global Collision", "Selective", ("isra",))
        == "Collision, Selective Inline, Transformation ⚠️"
    )
    assert status_line(None, None, (), present=False) == "Absent ⚠️"


def test_instances_with_normalised_paths(program_db):
    got: dict = {}
    for name, *rest in rows(
        program_db, "SELECT name, external, decl_file, decl_line, cu, inline, defined FROM instance_list"
    ):
        got.setdefault(name, set()).add(tuple(rest))
    for name, expected in EXPECTED_INSTANCES.items():
        assert got[name] == expected, name
    # No path keeps the builder's directory.
    assert rows(program_db, "SELECT path FROM paths WHERE path LIKE '%debian/build%' OR path LIKE '/%'") == []


def test_callers_direct_inline_and_inside_out_of_line_copies(program_db):
    got = set(rows(program_db, "SELECT callee, caller, caller_cu, kind, sites FROM caller_list"))
    assert got == EXPECTED_CALLERS


def test_symbols_match_readelf(program, program_db):
    out = subprocess.run(["readelf", "-sW", str(program)], capture_output=True, text=True, check=True).stdout
    expected = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND" and not f[7].startswith("__pfx_"):
            expected.add((f[7], int(f[1], 16), int(f[2], 0), "STB_" + f[4]))
    got = {
        (n, int(a, 16), s, b)
        for n, a, s, b in rows(program_db, "SELECT name, address, size, binding FROM symbol_list")
    }
    assert got == expected
    suffixes = dict(rows(program_db, "SELECT name, suffixes FROM symbol_list WHERE suffixes IS NOT NULL"))
    assert suffixes == {
        "const_prop.constprop.0": "constprop",
        "scalar_repl.isra.0": "isra",
        "partial.part.0": "part",
        "with_cold.cold": "cold",
    }


def test_prototypes_from_dwarf(program_db):
    protos = dict(rows(program_db, "SELECT name, prototype FROM function_status WHERE prototype IS NOT NULL"))
    assert protos["fully_inlined"] == "int fully_inlined(int x);"
    assert protos["scalar_repl"] == "int scalar_repl(struct packet *p);"
    assert protos["main"] == "int main(int argc, char **argv);"
    assert protos["never_defined"] == "int never_defined(int);"
    assert protos["log_message"] == "int log_message(const char *fmt, ...);"
    params = rows(
        program_db,
        "SELECT pp.position, pp.name, t.text FROM functions f JOIN names n ON n.id = f.name_id"
        " JOIN prototype_params pp ON pp.prototype_id = f.prototype_id JOIN type_texts t ON t.id = pp.type_id"
        " WHERE n.name = 'main' ORDER BY pp.position",
    )
    assert params == [(0, "argc", "int"), (1, "argv", "char **")]


def test_struct_with_bitfields_and_anonymous_members(program_db):
    got = rows(
        program_db,
        "SELECT position, field, type, bit_offset, bit_size, parent FROM struct_layouts"
        " WHERE name = 'packet' ORDER BY position",
    )
    assert got == PACKET_FIELDS
    assert rows(program_db, "SELECT size FROM struct_layouts WHERE name = 'packet' LIMIT 1") == [(32,)]
    assert rows(
        program_db,
        "SELECT ev.name, ev.value FROM types t JOIN names n ON n.id = t.name_id"
        " JOIN enum_values ev ON ev.layout_id = t.layout_id WHERE n.name = 'colour' ORDER BY ev.position",
    ) == [("RED", 0), ("GREEN", 5), ("BLUE", 6)]


@pytest.mark.parametrize("variant", ["dwarf4", "zlib", "armhf", "s390x"])
def test_compiler_variants_give_the_same_facts(tmp_path, variant):
    elf = compile_program(tmp_path, variant)
    db = tmp_path / "v.db"
    pipeline.ingest(elf, db, jobs=1)
    got = status(db)
    expected = dict(EXPECTED_STATUS)
    symbols = subprocess.run(["readelf", "-sW", str(elf)], capture_output=True, text=True, check=True).stdout
    if "with_cold.cold" not in symbols:  # some targets (s390x, arm) keep the unlikely branch in line
        expected["with_cold"] = ("Unique Global", "No", None)
    assert got == expected
    assert set(rows(db, "SELECT callee, caller, caller_cu, kind, sites FROM caller_list")) == EXPECTED_CALLERS
    pointer = 4 if variant == "armhf" else 8
    fields = rows(
        db,
        "SELECT field, bit_offset FROM struct_layouts WHERE name = 'packet' AND field IN ('name', 'handler')",
    )
    assert fields == [("name", 128 if pointer == 8 else 96), ("handler", 192 if pointer == 8 else 128)]
    arch, version = rows(db, "SELECT arch, dwarf_version FROM builds")[0]
    assert arch == {"armhf": "armhf", "s390x": "s390x"}.get(variant, "amd64")
    assert version == (4 if variant == "dwarf4" else 5)


def test_reingest_is_a_noop_and_replace_replaces(tmp_path, program):
    db = tmp_path / "k.db"
    runner = CliRunner()
    first = runner.invoke(cli, ["ingest", str(program), "--db", str(db), "-j", "1"])
    assert first.exit_code == 0, first.output
    assert "15 functions" not in first.output and "22 instances" in first.output
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    again = runner.invoke(cli, ["ingest", str(program), "--db", str(db)])
    assert again.exit_code == 0 and "already in" in again.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    replaced = runner.invoke(cli, ["ingest", str(program), "--db", str(db), "--replace", "-j", "1"])
    assert replaced.exit_code == 0, replaced.output
    assert rows(db, "SELECT count(*) FROM builds") == [(1,)]
    assert rows(db, "SELECT count(*) FROM instances") == [(22,)]


def test_two_ingests_store_identical_rows(tmp_path, program):
    dumps = []
    for k in range(2):
        db = tmp_path / f"{k}.db"
        pipeline.ingest(program, db, jobs=1)
        conn = sqlite3.connect(db)
        dumps.append([line for line in conn.iterdump() if "ingest" not in line and "builds" not in line])
        conn.close()
    assert dumps[0] == dumps[1]


def test_parallel_walk_equals_serial(tmp_path, program):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    pipeline.ingest(program, a, jobs=1)
    pipeline.ingest(program, b, jobs=2)
    q = "SELECT callee, caller, kind, sites FROM caller_list ORDER BY 1, 2, 3"
    assert rows(a, q) == rows(b, q)


def test_replace_keeps_the_build_in_its_groups(tmp_path, program):
    from ingest import db as database

    path = tmp_path / "g.db"
    pipeline.ingest(program, path, jobs=1)
    conn = database.connect(path)
    (build_pk,) = conn.execute("SELECT id FROM builds").fetchone()
    database.store_groups(conn, [("Regular", "series", [(build_pk, "v1")])])
    conn.close()
    result = pipeline.ingest(program, path, replace=True, jobs=1)
    assert not result.skipped
    assert rows(
        path, "SELECT g.name, m.build_id, m.label FROM group_members m JOIN groups g ON g.id = m.group_id"
    ) == [("Regular", build_pk, "v1")]
    assert rows(path, "SELECT count(*) FROM instances WHERE build_id = ?", build_pk) == [(22,)]


def test_build_id_is_the_gnu_note(program, program_db):
    notes = subprocess.run(["readelf", "-n", str(program)], capture_output=True, text=True, check=True).stdout
    expected = next(line.split(":", 1)[1].strip() for line in notes.splitlines() if "Build ID" in line)
    assert rows(program_db, "SELECT build_id FROM builds") == [(expected,)]


def test_struct_count_is_what_is_stored(tmp_path, program):
    """Worker processes each report a layout they see (DWARF-only builds): the
    build row counts the distinct stored (name, layout) pairs."""
    from ingest import db as database

    build = pipeline.read_image(program, pipeline.Identity(), jobs=1)
    build.layouts = build.layouts + build.layouts
    conn = database.connect(tmp_path / "n.db")
    database.store_build(conn, build, 0.0)
    assert conn.execute("SELECT n_structs FROM builds").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM types WHERE kind = 'struct'").fetchone() == (1,)


def test_transaction_commits_rolls_back_and_nests(tmp_path):
    from ingest import db as database

    conn = database.connect(tmp_path / "t.db")
    try:
        with database.transaction(conn):
            conn.execute("INSERT INTO names (id, name) VALUES (1, 'kept')")
            with pytest.raises(ValueError), database.transaction(conn):  # a savepoint inside
                conn.execute("INSERT INTO names (id, name) VALUES (2, 'undone')")
                raise ValueError
            assert conn.in_transaction
        with pytest.raises(ValueError), database.transaction(conn):
            conn.execute("INSERT INTO names (id, name) VALUES (3, 'rolled back')")
            raise ValueError
        assert not conn.in_transaction
        assert conn.execute("SELECT name FROM names ORDER BY id").fetchall() == [("kept",)]
    finally:
        conn.close()


# Direct call sites on Debian's 6.1.0-56 amd64 that sit under abstract
# instances (llvm-dwarfdump: 0x2a24e4d, the DW_TAG_call_site of
# slab_is_available in the lexical block of pcpu_mem_zalloc's DW_AT_inline
# DIE, mm/percpu.c); the counts are the reference tool's on the same image.
REAL_DIRECT_SITES = {"slab_is_available": 12, "sysfs_streq": 51}


@pytest.mark.slow
@pytest.mark.real_kernel
def test_call_sites_under_abstract_instances_on_a_real_kernel(tmp_path, real_kernel):
    db = tmp_path / "k.db"
    pipeline.ingest(real_kernel, db, pipeline.Identity(label="6.1"))
    got = dict(
        rows(
            db,
            "SELECT n.name, sum(c.sites) FROM callers c JOIN instances i ON i.id = c.callee_id"
            " JOIN names n ON n.id = i.name_id WHERE c.kind = 'direct' AND n.name IN (?, ?) GROUP BY n.name",
            *REAL_DIRECT_SITES,
        )
    )
    assert got == REAL_DIRECT_SITES
    assert rows(
        db,
        "SELECT 1 FROM caller_list WHERE callee = 'slab_is_available' AND caller = 'pcpu_mem_zalloc'"
        " AND kind = 'direct'",
    ) == [(1,)]
