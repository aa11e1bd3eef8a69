"""`kernsurf check`: BPF programs compiled with clang against fixture builds
whose statuses are known (tests/test_ingest.py, tests/test_diff.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_diff import compile_pair

from ingest import db, diff, pipeline
from ingest.bpf import check, objects, spec
from ingest.cli import cli
from ingest.errors import BadBpfObject, BadDependency, KernsurfError, NoDatabase, UnknownGroup

SOURCES = Path(__file__).parent / "fixtures" / "check"


def compile_bpf(source: Path, out: Path) -> Path:
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed (make test installs it)")
    proc = subprocess.run(
        ["clang", "-target", "bpf", "-g", "-O2", "-c", str(source), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        if "bpf/bpf_helpers.h" in proc.stderr:
            pytest.skip("libbpf-dev headers are missing (make test installs them)")
        raise RuntimeError(proc.stderr)
    return out


@pytest.fixture(scope="module")
def hooks(tmp_path_factory) -> Path:
    return compile_bpf(SOURCES / "hooks.bpf.c", tmp_path_factory.mktemp("bpf") / "hooks.o")


@pytest.fixture(scope="module")
def pair_check_db(tmp_path_factory) -> Path:
    """The diff fixture's builds a and b as the series "Regular", diffs stored."""
    tmp = tmp_path_factory.mktemp("checkpair")
    path = tmp / "pair.db"
    for elf in compile_pair(tmp):
        pipeline.ingest(elf, path, pipeline.Identity(label=elf.name), jobs=1)
    conn = db.connect(path)
    db.store_groups(conn, [("Regular", "series", [(1, "A"), (2, "B")])])
    diff.compute_group_diffs(conn)
    conn.close()
    return path


def cells(report: check.Report) -> dict[str, list[tuple[str, str]]]:
    return {
        check.spec(d): [(c.level, c.text) for c in row] for d, row in zip(report.dependencies, report.cells)
    }


# Every dependency of hooks.bpf.c against the fixture program (tests/fixtures/program):
# the statuses come from tests/test_ingest.py's EXPECTED_STATUS.
EXPECTED_HOOKS = {
    "kprobe:entry_a": [("ok", "ok")],  # Unique Global
    "fentry:entry_b": [("fail", "not attachable: build has no BTF")],  # gcc wrote no .BTF
    "kprobe:fully_inlined": [("fail", "inlined (Full): no symbol")],
    "kprobe:not_in_the_fixture": [("fail", "absent")],
    "kprobe:same_static": [("warn", "ambiguous: Static-Static Collision")],
    "kprobe:scalar_repl": [("fail", "transformed: only isra copies")],
    "kprobe:scalar_repl.isra.0": [("ok", "ok")],  # the clone, by its symbol
    "kprobe:selectively_inlined": [("warn", "inlined (Selective): some calls bypass the probe")],
    "struct:packet": [("ok", "ok")],
    "field:packet.length": [("ok", "ok")],
    "field:packet.hi": [("ok", "ok")],  # inside an anonymous struct
    "field?:packet.len": [("warn", "no field len in packet (the program checks for it)")],  # packet___old
    "enum:colour": [("ok", "ok")],
    "enum_value:colour::GREEN": [("ok", "= 5")],
    "helper:bpf_probe_read_kernel": [("unknown", "enum bpf_func_id not recorded")],  # BPF_CORE_READ's helper
}


def test_every_dependency_of_a_program_on_the_fixture(hooks, program_db):
    deps = check.merge(objects.read_bpf_object(hooks).dependencies)
    conn = db.open_readonly(program_db)
    report = check.evaluate(conn, deps)
    assert [c.build for c in report.columns] == ["fixture"]
    assert cells(report) == EXPECTED_HOOKS
    assert report.worst(0) == "fail"


EXPECTED_PAIR = {  # columns A, B of the series: B is compared with A
    "kprobe:param_retyped": [("ok", "ok"), ("warn", "changed: param type changed a (int → long int)")],
    "kprobe:becomes_inline": [("ok", "ok"), ("fail", "inlined (Full): no symbol")],
    "kretprobe:only_in_b": [("fail", "absent"), ("ok", "ok")],
    "struct:field_retyped": [("ok", "ok"), ("ok", "ok")],
    "field:field_retyped.x": [("ok", "ok"), ("warn", "changed: field type changed x (int → long int)")],
    "field:field_retyped.y": [("ok", "ok"), ("ok", "ok")],  # moved, same type: CO-RE copes
    "struct:field_removed": [("ok", "ok"), ("ok", "ok")],
    "field:field_removed.removed": [("ok", "ok"), ("fail", "no field removed in field_removed")],
    "struct:field_added": [("ok", "ok"), ("ok", "ok")],
    "field:field_added.a": [("ok", "ok"), ("ok", "ok")],
}


def test_changes_along_a_series(tmp_path, pair_check_db):
    obj = compile_bpf(SOURCES / "pair.bpf.c", tmp_path / "pair.o")
    result = CliRunner().invoke(cli, ["check", str(obj), "--db", str(pair_check_db), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(b["build"], b["label"], b["worst"]) for b in data["builds"]] == [
        ("a", "A", "fail"),
        ("b", "B", "fail"),
    ]
    got = {
        d["spec"]: [(d["results"][b]["level"], d["results"][b]["text"]) for b in ("a", "b")]
        for d in data["dependencies"]
        if d["kind"] != "helper"
    }
    assert got == EXPECTED_PAIR
    assert "unknown program section 'xdp_legacy'" in result.stderr


def test_table_strict_and_group(tmp_path, pair_check_db):
    obj = compile_bpf(SOURCES / "pair.bpf.c", tmp_path / "pair.o")
    result = CliRunner().invoke(
        cli, ["check", str(obj), "--db", str(pair_check_db), "--group", "Regular", "--strict"]
    )
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["A", "B"]
    retyped = next(line for line in lines if line.startswith("kprobe:param_retyped")).split()
    assert retyped[1] == "✓" and retyped[2].startswith("⚠")
    assert "✗" in next(line for line in lines if line.startswith("kprobe:becomes_inline"))
    bad = CliRunner().invoke(cli, ["check", str(obj), "--db", str(pair_check_db), "--group", "Nope"])
    assert bad.exit_code == 1 and "no group 'Nope' in the database (groups: Regular)" in bad.output


def test_dependencies_given_by_hand(pair_check_db):
    result = CliRunner().invoke(
        cli,
        [
            "check",
            "--db",
            str(pair_check_db),
            "--dep",
            "kprobe:becomes_declared",
            "--dep",
            "field?:field_added.b",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    deps = json.loads(result.stdout)["dependencies"]
    assert [(d["spec"], [r["text"] for r in d["results"].values()]) for d in deps] == [
        ("kprobe:becomes_declared", ["ok", "no symbol"]),
        ("field?:field_added.b", ["ok", "ok"]),
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dep", "bogus"], "expected kind:name"),
        (["--dep", "wat:x"], "unknown kind 'wat'"),
        ([], "nothing to check"),
    ],
)
def test_bad_dependencies(pair_check_db, args, message):
    result = CliRunner().invoke(cli, ["check", "--db", str(pair_check_db), *args])
    assert result.exit_code == 1 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_bad_objects(tmp_path, program, pair_check_db):
    empty = tmp_path / "empty.o"
    empty.write_bytes(b"")
    for path, message in ((program, "not a BPF object"), (empty, "empty")):
        result = CliRunner().invoke(cli, ["check", str(path), "--db", str(pair_check_db)])
        assert result.exit_code == 1 and message in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_missing_database(hooks, tmp_path):
    result = CliRunner().invoke(cli, ["check", str(hooks), "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "no such database" in result.output


def test_spec_round_trip():
    for text in (
        "kprobe:vmap",
        "fentry:vfs_read",
        "tracepoint:sched/sched_switch",
        "tp_btf:sched_wakeup",
        "lsm:file_open",
        "ksyscall:openat",
        "kprobe.multi:tcp_*",
        "field:dma_buf_ops.vmap",
        "field?:task_struct.x",
        "enum_value:pid_type::PIDTYPE_TGID",
        "kfunc:bpf_task_acquire",
    ):
        assert check.spec(check.parse_spec(text)) == text


def test_database_from_before_surfaces_is_upgraded(tmp_path, program):
    """A schema-1 database (no attachability columns, no surface tables) gets
    them on the next write-connect; its builds read "not recorded"."""
    import sqlite3

    path = tmp_path / "old.db"
    pipeline.ingest(program, path, pipeline.Identity(label="old"), jobs=1)
    raw = sqlite3.connect(path)
    # Every view goes (schema 1 had none of the later ones; schema.sql recreates them all).
    for (view,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'view'").fetchall():
        raw.execute(f"DROP VIEW {view}")
    raw.executescript(
        "DROP TABLE tracepoints; DROP TABLE syscalls;"
        " DROP TABLE lsm_hooks; DROP TABLE kfuncs; DROP TABLE config_options;"
        " UPDATE schema_version SET version = 1;"
    )
    for table, column, _ in db._ADDED_COLUMNS[3:]:
        raw.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    raw.commit()
    raw.close()
    before = CliRunner().invoke(cli, ["check", "--db", str(path), "--dep", "kprobe:entry_a"])
    assert before.exit_code == 1 and "predates `kernsurf check`" in before.output
    db.connect(path).close()
    conn = db.open_readonly(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    report = check.evaluate(
        conn, [check.parse_spec("kprobe:entry_a"), check.parse_spec("field:packet.length")]
    )
    assert cells(report) == {
        "kprobe:entry_a": [("unknown", "build ingested before attachability and surfaces were recorded")],
        "field:packet.length": [("ok", "ok")],
    }


@pytest.mark.parametrize(
    "text, kind, name, attach, detail",
    [
        ("helper:bpf_loop", "helper", "bpf_loop", None, "BPF_FUNC_loop"),
        ("map_type:ringbuf", "map_type", "BPF_MAP_TYPE_RINGBUF", None, None),
        ("map_type:BPF_MAP_TYPE_HASH", "map_type", "BPF_MAP_TYPE_HASH", None, None),
        ("kfunc?:bpf_task_acquire", "kfunc", "bpf_task_acquire", None, "weak"),
        ("kconfig?:CONFIG_HZ", "kconfig", "CONFIG_HZ", None, "weak"),
        ("raw_tp:sched_switch", "raw_tracepoint", "sched_switch", "raw_tracepoint", None),
        ("tp:sched/sched_switch", "tracepoint", "sched_switch", "tracepoint", "sched"),
    ],
)
def test_text_forms_match_what_objects_produce(text, kind, name, attach, detail):
    # the Dependency bpf_object makes for the same use (e.g. a weak __ksym, a
    # bpf_loop() call), so a check link reproduces an uploaded object's check
    dep = check.parse_spec(text)
    assert (dep.kind, dep.name, dep.attach, dep.detail) == (kind, name, attach, detail)
    assert check.parse_spec(check.spec(dep)) == dep


def test_helper_text_form_finds_the_enumerator(hooks, program_db, tmp_path):
    # the object's own helper dependency and its text form give the same verdict
    deps = [d for d in objects.read_bpf_object(hooks).dependencies if d.kind == "helper"]
    conn = db.open_readonly(program_db)
    for dep in deps:
        assert check.verdict(conn, check.parse_spec(check.spec(dep)), 1) == check.verdict(conn, dep, 1)


def test_long_changed_values_are_cut_where_they_differ():
    old = '"pid=%d", REC->pid, ' + "x" * 80 + " 0x0001"
    new = '"pid=%d", REC->pid, ' + "x" * 80 + " 0x00000001"
    a, b = check._clip(old, new)
    assert a.startswith("…") and b.startswith("…") and len(a) <= 62 and len(b) <= 62
    assert "0x0001" in a and "0x00000001" in b  # the difference stays visible
    assert check._clip("short", "text") == ("short", "text")


def test_every_text_form_head_parses():
    assert tuple(check._CHECKS) == spec.KINDS  # one check per dependency kind
    for head in (*check.SPEC_KINDS, *check.GUARDED_SPEC_KINDS):
        dep = check.parse_spec(f"{head}:x")
        assert dep.kind in spec.KINDS, head
    assert {"kprobe", "tp", "raw_tp", "field", "kfunc"} <= set(check.SPEC_KINDS)


def test_check_objects_is_the_whole_command(hooks, program_db, tmp_path):
    report = check.check_objects(program_db, [hooks], ["kprobe:not_in_the_fixture"])
    assert cells(report) == EXPECTED_HOOKS and report.warnings == []
    conn = db.open_readonly(program_db)
    assert cells(check.check_objects(conn, (), ["kprobe:entry_a"])) == {"kprobe:entry_a": [("ok", "ok")]}
    with pytest.raises(UnknownGroup, match="no group 'Nope' in the database") as err:
        check.check_objects(conn, (), ["kprobe:entry_a"], "Nope")
    assert isinstance(err.value, LookupError)
    with pytest.raises(BadDependency, match="nothing to check"):
        check.check_objects(conn, (), ())
    with pytest.raises(BadDependency, match="unknown kind 'nope'"):
        check.check_objects(conn, (), ["nope:x"])
    with pytest.raises(BadBpfObject, match="cannot read"):
        check.check_objects(conn, [tmp_path / "missing.o"])
    with pytest.raises(NoDatabase, match="no such database"):
        check.check_objects(tmp_path / "none.db", (), ["kprobe:x"])
    (tmp_path / "junk.db").write_bytes(b"not sqlite" * 100)
    with pytest.raises(NoDatabase, match="not a kernsurf database"):
        check.check_objects(tmp_path / "junk.db", (), ["kprobe:x"])
    assert issubclass(NoDatabase, KernsurfError)
