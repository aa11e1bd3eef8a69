"""`kernsurf check`: BPF programs compiled with clang against fixture builds
whose statuses are known (tests/test_ingest.py, tests/test_diff.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import db, pipeline
from ingest.bpf import check, objects, spec
from ingest.changes import diff
from ingest.cli import cli
from ingest.errors import BadBpfObject, BadDependency, KernsurfError, NoDatabase, UnknownGroup
from tests.support import FIXTURES, ROOT
from tests.support.btf import btf_only
from tests.support.programs import compile_bpf, compile_pair

SOURCES = FIXTURES / "check"


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


def cells(report: check.Report) -> dict[str, list[tuple[str, str, str]]]:
    return {
        check.spec(d): [(c.level, c.text, c.reason) for c in row]
        for d, row in zip(report.dependencies, report.cells)
    }


# Every dependency of hooks.bpf.c against the fixture program (tests/fixtures/program):
# the statuses come from tests/test_ingest.py's EXPECTED_STATUS.
OK = ("ok", "ok", "ok")
PLACEHOLDER = ("unknown", "in no build of the database (a placeholder its loader retargets? see --retarget)")
EXPECTED_HOOKS = {
    "kprobe:entry_a": [OK],  # Unique Global
    "fentry:entry_b": [("fail", "not attachable: build has no BTF", "not_attachable")],  # gcc wrote no .BTF
    "kprobe:fully_inlined": [("fail", "inlined (Full): no symbol", "inlined_full")],
    # No build of the database has it: "?", not "✗" (a placeholder, a typo or a module).
    "kprobe:not_in_the_fixture": [(*PLACEHOLDER, "absent_everywhere")],
    "kprobe:same_static": [("warn", "ambiguous: Static-Static Collision", "ambiguous")],
    "kprobe:scalar_repl": [("fail", "transformed: only isra copies", "transformed")],
    "kprobe:scalar_repl.isra.0": [OK],  # the clone, by its symbol
    "kprobe:selectively_inlined": [
        ("warn", "inlined (Selective): some calls bypass the probe", "inlined_partly")
    ],
    "struct:packet": [OK],
    "field:packet.length": [OK],
    "field:packet.hi": [OK],  # inside an anonymous struct
    "field?:packet.len": [
        ("warn", "no field len in packet (the program checks for it)", "guarded")
    ],  # packet___old
    "enum:colour": [OK],
    "enum_value:colour::GREEN": [("ok", "= 5", "ok")],
    "helper:bpf_probe_read_kernel": [
        ("unknown", "enum bpf_func_id not recorded", "not_recorded")
    ],  # BPF_CORE_READ's helper
}


def test_every_dependency_of_a_program_on_the_fixture(hooks, program_db):
    deps = check.merge(objects.read_bpf_object(hooks).dependencies)
    conn = db.open_readonly(program_db)
    report = check.evaluate(conn, deps)
    assert [c.build for c in report.columns] == ["fixture"]
    assert cells(report) == EXPECTED_HOOKS
    assert report.worst(0) == "fail"


EXPECTED_PAIR = {  # columns A, B of the series: B is compared with A
    "kprobe:param_retyped": [
        OK,
        ("warn", "changed: param type changed a (int → long int)", "prototype_changed"),
    ],
    "kprobe:becomes_inline": [OK, ("fail", "inlined (Full): no symbol", "inlined_full")],
    # B has it, defined in pair.c; A's image has pair.c, so A really lacks it.
    "kretprobe:only_in_b": [("fail", "absent (pair.c is in vmlinux)", "absent"), OK],
    "struct:field_retyped": [OK, OK],
    "field:field_retyped.x": [OK, ("warn", "changed: field type changed x (int → long int)", "changed")],
    "field:field_retyped.y": [OK, OK],  # moved, same type: CO-RE copes
    "struct:field_removed": [OK, OK],
    "field:field_removed.removed": [OK, ("fail", "no field removed in field_removed", "field_missing")],
    "struct:field_added": [OK, OK],
    "field:field_added.a": [OK, OK],
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
        d["spec"]: [tuple(d["results"][b][k] for k in ("level", "text", "reason")) for b in ("a", "b")]
        for d in data["dependencies"]
        if d["kind"] != "helper"
    }
    assert got == EXPECTED_PAIR
    assert "unknown program section 'xdp_legacy'" in result.stderr


# Each program of alternatives.bpf.c probes one spelling and reads the other
# otherwise. pair.c: A has field_added {a, b} and field_removed {a, removed, b};
# B has field_added {a, added, b} and field_removed {a, b}; field_retyped has x, y.
EXPECTED_ALTERNATIVES = {
    "alternatives:field_added.added|field_added.b": [
        ("warn", "only the fallback field_added.b resolves (no field added in field_added)", "fallback"),
        ("ok", "via field_added.added", "ok"),
    ],
    "alternatives:field_removed.removed|field_removed.b": [
        ("ok", "via field_removed.removed", "ok"),
        (
            "warn",
            "only the fallback field_removed.b resolves (no field removed in field_removed)",
            "fallback",
        ),
    ],
    "alternatives:field_retyped.gone|field_retyped.none": [
        (
            "fail",
            "no member resolves: no field gone in field_retyped; no field none in field_retyped",
            "field_missing",
        )
    ]
    * 2,
}


def test_co_re_alternatives(tmp_path, pair_check_db):
    obj = compile_bpf(SOURCES / "alternatives.bpf.c", tmp_path / "alternatives.o")
    deps = objects.read_bpf_object(obj).dependencies
    groups = {d.name: d for d in deps if d.kind == "alternatives"}
    assert groups["field_added.added|field_added.b"].programs == ("new_or_old",)
    # the members' reads and probes are no dependencies of their own
    assert not {d.name for d in deps if d.kind == "field"} & {"field_added.added", "field_removed.b"}
    report = check.check_objects(pair_check_db, [obj])
    got = {k: v for k, v in cells(report).items() if k.startswith("alternatives:")}
    assert got == EXPECTED_ALTERNATIVES
    # the text form round-trips, and checks the same
    by_text = check.check_objects(pair_check_db, dep_texts=list(EXPECTED_ALTERNATIVES))
    assert cells(by_text) == EXPECTED_ALTERNATIVES
    with pytest.raises(BadDependency, match="two members or more"):
        spec.parse_spec("alternatives:task_struct.state")


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


def test_a_build_from_before_surfaces_reads_not_recorded(tmp_path, program):
    """A build stored before attachability and the surfaces were recorded
    (builds.n_tracepoints NULL, as the upgrade from schemas before 3 leaves it:
    tests/test_schema_upgrade.py upgrades a real old database) reads "not recorded"."""
    import sqlite3

    path = tmp_path / "old.db"
    pipeline.ingest(program, path, pipeline.Identity(label="old"), jobs=1)
    raw = sqlite3.connect(path)
    raw.execute("UPDATE builds SET n_tracepoints = NULL")
    raw.commit()
    raw.close()
    conn = db.open_readonly(path)
    report = check.evaluate(
        conn, [check.parse_spec("kprobe:entry_a"), check.parse_spec("field:packet.length")]
    )
    assert cells(report) == {
        "kprobe:entry_a": [
            ("unknown", "build ingested before attachability and surfaces were recorded", "not_recorded")
        ],
        "field:packet.length": [OK],
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
        dep = check.parse_spec(f"{head}:x|y" if head == "alternatives" else f"{head}:x")
        assert dep.kind in spec.KINDS, head
    assert {"kprobe", "tp", "raw_tp", "field", "kfunc"} <= set(check.SPEC_KINDS)


def test_check_objects_is_the_whole_command(hooks, program_db, tmp_path):
    report = check.check_objects(program_db, [hooks], ["kprobe:not_in_the_fixture"])
    assert cells(report) == EXPECTED_HOOKS and report.warnings == []
    conn = db.open_readonly(program_db)
    assert cells(check.check_objects(conn, (), ["kprobe:entry_a"])) == {"kprobe:entry_a": [OK]}
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


# --------------------------------------------------------------------------- reasons, CI contract


def test_every_reason_code_is_documented():
    from ingest.bpf import report

    concepts = (ROOT / "docs" / "concepts.md").read_text()
    assert set(report.REASONS) == set(report.REASON_LEVELS)
    for code in report.REASONS:
        assert f"`{code}`" in concepts, code
    with pytest.raises(ValueError, match="does not explain"):
        check.Cell(level="fail", text="x", reason="weak")


def test_retarget_replaces_a_placeholder(hooks, program_db):
    # on_missing's SEC("kprobe/not_in_the_fixture") is a placeholder; its loader would aim it at entry_a.
    report = check.check_objects(program_db, [hooks], retargets=["on_missing=entry_a"])
    got = cells(report)
    assert "kprobe:not_in_the_fixture" not in got
    assert got["kprobe:entry_a"] == [OK]
    entry = next(d for d in report.dependencies if check.spec(d) == "kprobe:entry_a")
    assert "on_missing" in entry.programs
    with pytest.raises(BadDependency, match="no program nope"):
        check.check_objects(program_db, [hooks], retargets=["nope=entry_a"])
    with pytest.raises(BadDependency, match="expected PROGRAM=FUNCTION"):
        check.check_objects(program_db, [hooks], retargets=["on_missing"])


def test_formats_fail_on_and_summary(hooks, program_db):
    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["check", str(hooks), "--db", str(program_db), *args])
        assert result.exit_code in (0, 2), result.output
        return result.exit_code, result.stdout

    code, out = run("--format", "markdown")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "| dependency | fixture |" and lines[1] == "|---|---|"
    assert "| `kprobe:fully_inlined` | ✗" in out and "(`inlined_full`)" in out
    assert "**Reasons**" in out
    data = json.loads(run("--format", "json")[1])
    assert data == json.loads(run("--json")[1])
    assert data["reasons"]["inlined_full"] == 1 and data["reasons"]["absent_everywhere"] == 1
    assert data["summary"]["objects"] == [{"object": "hooks.o", "results": {"fixture": "fails"}}]
    assert run("--strict")[0] == 2 and run("--fail-on", "fail")[0] == 2
    code, out = run("--summary")
    assert code == 0 and out.splitlines()[1].split() == ["hooks.o", "fails"]
    assert "inlined_full" in out and "absent_everywhere" in out
    # --fail-on: ok < unknown < warn < fail
    for level, status in (("warn", 2), ("unknown", 2)):
        assert (
            CliRunner()
            .invoke(
                cli, ["check", "--db", str(program_db), "--dep", "kprobe:same_static", "--fail-on", level]
            )
            .exit_code
            == status
        )
    ok = ["check", "--db", str(program_db), "--dep", "kprobe:entry_a", "--dep", "kprobe:nowhere"]
    assert CliRunner().invoke(cli, [*ok, "--fail-on", "warn"]).exit_code == 0  # "?" is not a warning
    assert CliRunner().invoke(cli, [*ok, "--fail-on", "unknown"]).exit_code == 2


def test_alternatives_count_once_in_the_summary():
    from ingest.bpf.objects import Dependency
    from ingest.bpf.report import Cell, Column, ObjectDeps, Report

    def dep(attach: str, name: str) -> Dependency:
        kind = "function" if attach in ("kprobe", "fentry", "fexit") else "raw_tracepoint"
        return Dependency(kind=kind, name=name, attach=attach, programs=(), detail=None)

    deps = [
        dep("fentry", "f"),
        dep("kprobe", "f"),
        dep("fexit", "g"),
        dep("tp_btf", "e"),
        dep("raw_tracepoint", "e"),
    ]
    fail, ok = Cell("fail", "not attachable: notrace", "not_attachable"), Cell("ok", "ok", "ok")
    col = Column(build_id=1, build="b", label="b", group=None, previous=None)
    report = Report(dependencies=deps, columns=[col], cells=[[fail], [ok], [ok], [fail], [ok]])
    report.objects = [
        ObjectDeps("alt.o", (0, 1, 2, 3, 4)),
        ObjectDeps("exit.o", (2,)),
        ObjectDeps("bad.o", (0,)),
    ]
    s = report.summary()
    assert [r["results"]["b"] for r in s["objects"]] == ["works", "works", "fails"]
    assert s["affected"] == {"b": 1}
    assert s["causes"] == [{"reason": "not_attachable", "level": "fail", "cells": 2, "objects": 2}]


@pytest.fixture(scope="module")
def gated_db(tmp_path_factory, program) -> Path:
    """The fixture program with a kernel config that lacks kprobes and the BPF LSM."""
    tmp = tmp_path_factory.mktemp("gated")
    config = tmp / "config"
    config.write_text(
        "CONFIG_BPF_SYSCALL=y\n# CONFIG_KPROBES is not set\nCONFIG_DEBUG_INFO_BTF=y\nCONFIG_BPF_JIT=y\n"
        "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y\nCONFIG_FTRACE_SYSCALLS=y\n"
        'CONFIG_BPF_LSM=y\nCONFIG_LSM="landlock,lockdown,yama"\n'
    )
    path = tmp / "gated.db"
    pipeline.ingest(program, path, pipeline.Identity(label="gated", arch="amd64"), jobs=1, config=config)
    return path


def test_config_gates(gated_db, program_db):
    deps = [
        "kprobe:entry_a",
        "kretprobe:entry_a",
        "lsm:file_open",
        "kprobe.multi:entry_*",
        "field:packet.length",
    ]
    got = cells(check.check_objects(gated_db, (), deps))
    assert got["kprobe:entry_a"] == [("fail", "CONFIG_KPROBES is not set: kprobes need it", "config_missing")]
    assert got["kretprobe:entry_a"] == [
        ("fail", "CONFIG_KPROBES is not set: kretprobes need it", "config_missing")
    ]
    assert got["lsm:file_open"] == [
        (
            "fail",
            "CONFIG_LSM lacks 'bpf': lsm programs need it (the LSMs enabled at boot unless lsm= says otherwise)",
            "config_missing",
        )
    ]
    assert got["kprobe.multi:entry_*"] == [
        ("fail", "CONFIG_FPROBE is absent: kprobe.multi programs need it", "config_missing")
    ]
    assert got["field:packet.length"] == [OK]  # types are not gated
    # No config recorded: the gate is not applied.
    assert cells(check.check_objects(program_db, (), ["kprobe:entry_a"]))["kprobe:entry_a"] == [OK]


def test_btf_only_build_gives_no_false_failure(tmp_path, program):
    """A BTF blob with its symbol map (like /sys/kernel/btf/vmlinux with
    /proc/kallsyms): no ftrace records, no kprobe blacklist, no trace events."""
    blob, system_map = btf_only(program, tmp_path)
    path = tmp_path / "btf.db"
    pipeline.ingest(blob, path, pipeline.Identity(release="9.9.9-btf"), kallsyms=system_map)
    deps = [
        "kprobe:external_add",
        "fentry:external_add",
        "kprobe:scalar_repl",
        "tracepoint:sched/sched_switch",
    ]
    got = cells(check.check_objects(path, (), deps))
    assert got == {
        # nm lists `T external_add`: the symbol is there; the blacklist is not known
        "kprobe:external_add": [("warn", "symbol present; kprobe blacklist not recorded", "unverified")],
        "fentry:external_add": [
            ("warn", "BTF FUNC and symbol present; ftrace records not recorded", "unverified")
        ],
        # nm lists only scalar_repl.isra.0: a fact of the symbol table, not of the missing DWARF
        "kprobe:scalar_repl": [("fail", "transformed: only isra copies", "transformed")],
        "tracepoint:sched/sched_switch": [
            ("unknown", "trace events not recorded for this build (BTF-only input)", "not_recorded")
        ],
    }
    conn = db.connect(path)
    rows = dict(((n), (k, f)) for n, k, f in conn.execute("SELECT name, kprobe, fentry FROM function_status"))
    assert rows["external_add"] == (None, None)  # not "✗ (only renamed copies)"


def test_the_documented_ci_step_runs(hooks, program_db, tmp_path):
    """docs/ci.md's GitHub Actions example parses, and each of its kernsurf
    command lines runs on a fixture database with the exit status it promises."""
    import shlex

    import yaml

    text = (ROOT / "docs" / "ci.md").read_text()
    blocks = [yaml.safe_load(block.split("```", 1)[0]) for block in text.split("```yaml\n")[1:]]
    commands = [
        line.strip()
        for workflow in blocks
        for step in workflow["jobs"]["check"]["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip().startswith("kernsurf check ")  # the action's example has none; pull: test_publish.py
    ]
    assert len(commands) == 2
    statuses = []
    for command in commands:
        words = shlex.split(command.split(">>")[0])
        words = [
            str(hooks) if w == "prog.bpf.o" else str(program_db) if w == "kernels.db" else w for w in words
        ]
        result = CliRunner().invoke(cli, words[1:])
        assert result.exit_code in (0, 2), (command, result.output)
        statuses.append(result.exit_code)
    assert statuses == [0, 2]  # the summary step never fails; the gate does on the fixture's ✗


def test_migration_keeps_diffs_and_user_views(tmp_path, pair_check_db):
    """A version bump that leaves the changes table as it was keeps the stored
    diffs; the views schema.sql defines are recreated, a user's own view stays."""
    import sqlite3

    path = tmp_path / "v3.db"
    path.write_bytes(pair_check_db.read_bytes())
    raw = sqlite3.connect(path)
    stored = raw.execute("SELECT count(*) FROM changes").fetchone()[0]
    assert stored > 0
    raw.executescript(
        "DROP VIEW build_summary;"
        " CREATE VIEW build_summary AS SELECT id AS build_id FROM builds;"  # the old view's shape
        " CREATE VIEW my_view AS SELECT name FROM builds;"
        " UPDATE change_kinds SET items = 'function' WHERE name LIKE 'moved into %';"  # before schema 6
        " UPDATE schema_version SET version = 3;"
    )
    raw.commit()
    raw.close()
    db.connect(path).close()
    conn = db.open_readonly(path)
    assert conn.execute("SELECT count(*) FROM changes").fetchone()[0] == stored
    assert "variables" in {d[0] for d in conn.execute("SELECT * FROM build_summary").description}
    assert conn.execute("SELECT name FROM my_view ORDER BY name").fetchall() == [("a",), ("b",)]
    moves = "SELECT DISTINCT items FROM change_kinds WHERE name LIKE 'moved into %'"
    assert conn.execute(moves).fetchall() == [("function struct union enum tracepoint kfunc",)]
    conn.close()


def test_migration_to_schema_7_lets_kfuncs_move(tmp_path, pair_check_db):
    """A schema 6 database (moves of functions, types and trace events) gains kfunc moves:
    the two change kinds list kfunc, the stored diffs stay (the changes table is unchanged)."""
    import sqlite3

    path = tmp_path / "v6.db"
    path.write_bytes(pair_check_db.read_bytes())
    raw = sqlite3.connect(path)
    stored = raw.execute("SELECT count(*) FROM changes").fetchone()[0]
    raw.executescript(
        "UPDATE change_kinds SET items = 'function struct union enum tracepoint' WHERE name LIKE 'moved into %';"
        " UPDATE schema_version SET version = 6;"
    )
    raw.commit()
    raw.close()
    db.connect(path).close()
    conn = db.open_readonly(path)
    moves = "SELECT name, items FROM change_kinds WHERE name LIKE 'moved into %' ORDER BY position"
    assert conn.execute(moves).fetchall() == [
        ("moved into module", "function struct union enum tracepoint kfunc"),
        ("moved into vmlinux", "function struct union enum tracepoint kfunc"),
    ]
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(db.SCHEMA_VERSION,)]
    assert conn.execute("SELECT count(*) FROM changes").fetchone()[0] == stored


def test_a_kfunc_unknown_without_modules(pair_check_db):
    """Builds a and b were ingested without modules (builds.n_modules NULL): a kfunc
    neither registers may be a module's, so it is not recorded, never absent."""
    conn = db.open_readonly(pair_check_db)
    report = check.evaluate(conn, [check.parse_spec("kfunc:bpf_skb_ct_lookup")])
    assert (
        cells(report)["kfunc:bpf_skb_ct_lookup"]
        == [("unknown", "not a kfunc of vmlinux; modules not read", "not_recorded")] * 2
    )


def test_every_failure_says_what_to_use_instead(pair_check_db):
    """The ways out on build B of tests/fixtures/diff/pair.c: only_in_a is gone and
    only_in_b (the same file, int (int), 89% alike) replaced it; becomes_inline is
    always inlined into main; field_removed lost `removed` (bits 32..64 on A), next
    to which a (bits 0..32) and b (64..128 on B: the long moved up) are."""
    deps = ["kprobe:only_in_a", "kprobe:becomes_inline", "field:field_removed.removed"]
    report = check.check_objects(pair_check_db, dep_texts=deps)
    got = {
        check.spec(d): [[(x.kind, x.target, x.attachable) for x in c.suggestions] for c in row]
        for d, row in zip(report.dependencies, report.cells)
    }
    assert got == {
        "kprobe:only_in_a": [[], [("successor", "kprobe:only_in_b", True)]],
        "kprobe:becomes_inline": [[], [("inline_caller", "kprobe:main", True)]],
        "field:field_removed.removed": [
            [],
            [("field", "field:field_removed.a", None), ("field", "field:field_removed.b", None)],
        ],
    }
    successor = report.cells[0][1].suggestions[0]
    assert successor.evidence.startswith("guess: declared in pair.c:")
    data = report.as_dict()["dependencies"][0]["results"]["b"]["suggestions"]
    assert data == [successor.as_dict()] and set(data[0]) == {"kind", "target", "evidence", "attachable"}
    assert "instead:" in report.text() and "successor: kprobe:only_in_b ✓" in report.text()
    assert "**Instead**" in report.markdown() and "`kprobe:only_in_b` ✓" in report.markdown()
    assert "suggestions" not in report.as_dict()["dependencies"][0]["results"]["a"]  # ✓ cells have none
