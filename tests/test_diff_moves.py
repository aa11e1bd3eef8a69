"""Types and trace events that move between vmlinux and a module, in diffs and on the pages
(docs/concepts.md#differences). tests/test_frontend_modules.py's `module_db` (A: the fixture
program + alpha, beta; B: + beta) copied, with two more builds ingested into the copy:

- "C": tests/fixtures/surfaces/surfaces.c as vmlinux, modules m/beta.ko;
- "D": the fixture program (dwarf5) as vmlinux, modules m/beta.ko and kernel/demo.ko, which
  is surfaces.c again, compiled as a module (gcc -c, then ld -r with a `.modinfo` naming it).

So what surfaces.c defines is built in on C and in module demo on D. From surfaces.c: the
named types list_head, tracepoint, trace_event_class, trace_event_call, pt_regs, hlist_head,
security_hook_heads (structs), trace_event_raw_sched_switch,
trace_event_raw_sched_wakeup_template (structs), trace_event_flags (enum),
security_list_options (union) — the fixture program defines none of these names (only
struct packet, enum colour) — and the trace events in its `_ftrace_events` that the kernel
would register: my_probe, sched_switch, sched_wakeup (event_sched_switch_again repeats
sched_switch, event_function is system "ftrace", event_enter__read has no syscall slot).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, compile_program
from frontend_support import Site, variant
from test_frontend_modules import _tree
from test_frontend_modules import module_db as module_db  # the fixture this file extends
from test_modules_readers import _build

from ingest import db, diff, pipeline

SOURCE = FIXTURES / "surfaces" / "surfaces.c"
TYPES = [
    ("struct", "hlist_head"),
    ("struct", "list_head"),
    ("struct", "pt_regs"),
    ("struct", "security_hook_heads"),
    ("struct", "trace_event_call"),
    ("struct", "trace_event_class"),
    ("struct", "trace_event_raw_sched_switch"),
    ("struct", "trace_event_raw_sched_wakeup_template"),
    ("struct", "tracepoint"),
    ("union", "security_list_options"),
    ("enum", "trace_event_flags"),
]  # in diff order: item kind, then name
EVENTS = ["my_probe", "sched_switch", "sched_wakeup"]
MOVED = {*TYPES, *(("tracepoint", e) for e in EVENTS)}
MOVING = ("struct", "union", "enum", "tracepoint")
#: .modinfo of the demo module (tests/fixtures/modules/mod_common.h's MODINFO, spelled out).
MODINFO = "\n".join(
    f'static const char mi_{k}[] __attribute__((section(".modinfo"), used, aligned(1))) = "{k}={v}";'
    for k, v in (("license", "GPL"), ("name", "demo"))
)


def _surfaces(dest: Path, module: bool) -> Path:
    """surfaces.c linked as a program (a vmlinux), or as a module-like object."""
    common = ["gcc", "-g", "-O2", "-fno-toplevel-reorder"]
    if not module:
        out = dest / "surfaces"
        defsyms = [f"-Wl,--defsym=__{e}_ftrace_events=__{e}__ftrace_events" for e in ("start", "stop")]
        subprocess.run([*common, str(SOURCE), "-o", str(out), *defsyms], check=True, capture_output=True)
        return out
    subprocess.run([*common, "-c", str(SOURCE), "-o", str(dest / "s.o")], check=True, capture_output=True)
    subprocess.run(
        ["gcc", "-c", "-x", "c", "-", "-o", str(dest / "mi.o")], input=MODINFO.encode(), check=True
    )
    out = dest / "demo.ko"
    subprocess.run(["ld", "-r", "-o", str(out), str(dest / "s.o"), str(dest / "mi.o")], check=True)
    return out


@pytest.fixture(scope="module")
def moves_db(module_db, tmp_path_factory) -> Path:
    if shutil.which("gcc") is None or shutil.which("ld") is None:
        pytest.skip("gcc / ld not installed")
    tmp = tmp_path_factory.mktemp("moves")
    path = variant(module_db, tmp / "db")
    kos = {**_build("amd64", tmp), "demo": _surfaces(tmp, module=True)}
    for label, vmlinux, layout in (
        ("C", _surfaces(tmp, module=False), {"beta": "m/beta.ko"}),
        ("D", None, {"beta": "m/beta.ko", "demo": "kernel/demo.ko"}),
    ):
        work = tmp / label
        work.mkdir()
        program = vmlinux or compile_program(work, "dwarf5")
        pipeline.ingest(program, path, pipeline.Identity(label=label), modules=_tree(work, kos, layout))
    return path


def _moves_of(changes: list[diff.Change]) -> list[diff.Change]:
    return [c for c in changes if c.item_kind in MOVING and c.change_kind.startswith("moved")]


def _moves(changes: list[diff.Change]) -> list[tuple[str, str, str, str | None, str | None]]:
    return [(c.item_kind, c.name, c.change_kind, c.old, c.new) for c in _moves_of(changes)]


def test_types_and_events_move_into_a_module_and_back(moves_db):
    conn = db.connect(moves_db)
    into = diff.diff_builds(conn, "C", "D")
    assert _moves(into) == [
        *((kind, name, "moved into module", "vmlinux", "demo") for kind, name in TYPES),
        *(("tracepoint", name, "moved into module", "vmlinux", "demo") for name in EVENTS),
    ]
    # same layouts and facts on both sides: the move is all there is to say about them
    assert [c for c in into if c.item_kind in MOVING and (c.item_kind, c.name) in MOVED] == _moves_of(into)
    back = diff.diff_builds(conn, "D", "C")
    assert _moves(back) == [
        *((kind, name, "moved into vmlinux", "demo", "vmlinux") for kind, name in TYPES),
        *(("tracepoint", name, "moved into vmlinux", "demo", "vmlinux") for name in EVENTS),
    ]


def test_types_move_from_module_to_module(moves_db):
    # mod_common.h's fake_* structs: alpha and beta both define them; a layout only modules
    # define is stored with the first module by path, kernel/alpha.ko, in A; B has only beta.
    conn = db.connect(moves_db)
    assert _moves(diff.diff_builds(conn, "A", "B", kinds=["type"])) == [
        ("struct", name, "moved into module", "alpha", "beta")
        for name in ("fake_event", "fake_list", "fake_module")
    ]
    # beta defines them on B and D: no move
    assert _moves(diff.diff_builds(conn, "B", "D", kinds=["type"])) == []


def test_unknown_is_never_absent(moves_db, tmp_path):
    """B lacks everything of module demo; with B's modules read that is "added" on D,
    with them not read nothing is said about module items (vmlinux ones still count)."""
    conn = db.connect(moves_db)
    read = diff.diff_builds(conn, "B", "D")
    added = sorted((c.item_kind, c.name) for c in read if c.item_kind in MOVING and c.change_kind == "added")
    assert added == sorted(MOVED)
    unread = db.connect(variant(moves_db, tmp_path, "UPDATE builds SET n_modules = NULL WHERE name = 'B';"))
    for a, b in (("B", "D"), ("D", "B")):
        changes = diff.diff_builds(unread, a, b)
        assert not [c for c in changes if c.item_kind in MOVING], (a, b)
        assert not _moves_of(changes)
    # a vmlinux type or event missing from a build whose modules were not read is still removed
    changes = diff.diff_builds(unread, "C", "B", kinds=["type", "tracepoint"])
    assert sorted((c.item_kind, c.name) for c in changes if c.change_kind == "removed") == sorted(MOVED)


def test_moves_on_the_pages(moves_db, tmp_path):
    path = variant(moves_db, tmp_path)
    conn = db.connect(path)
    ids = dict(conn.execute("SELECT name, id FROM builds WHERE name IN ('C', 'D')"))
    db.store_groups(conn, [("Moves", "series", [(ids["C"], "C"), (ids["D"], "D")])])
    diff.compute_group_diffs(conn)
    conn.close()
    site = Site(path)
    shown = (
        'moved into module: <code class="ks-diff-old">vmlinux</code> ➡️ <code class="ks-diff-new">demo</code>'
    )
    try:
        page = site.get("/diff/C/D?change=moved+into+module").text
        assert '<a href="/struct/trace_event_call">trace_event_call</a>' in page
        assert '<a href="/tracepoint/sched_switch">sched_switch</a>' in page
        assert shown in site.get("/struct/trace_event_call").text
        assert shown in site.get("/tracepoint/sched_switch").text
    finally:
        site.close()


@pytest.mark.parametrize(
    ("path", "error", "moved"),
    [
        # alpha after beta in B's path order: it may still hold them (only the first is stored)
        ("z/alpha.ko", None, False),
        # before beta: it would be their home if it had them, so it has not
        ("a/alpha.ko", None, True),
        # unreadable: unknown, never absent
        ("a/alpha.ko", "truncated", False),
    ],
)
def test_between_modules_only_when_the_old_one_let_go(moves_db, tmp_path, path, error, moved):
    """A -> B with an alpha module added to B (same name, another path): the fake_* structs
    and shared_helper (tests/test_frontend_modules.py) moved only when alpha cannot hold them."""
    sql = (
        "INSERT INTO modules (build_id, name_id, path, error) SELECT b.id, n.id, ?, ?"
        " FROM builds b, names n WHERE b.name = 'B' AND n.name = 'alpha'"
    )
    conn = db.connect(variant(moves_db, tmp_path, params=[(sql, (path, error))]))
    got = [
        (c.name, c.old, c.new) for c in diff.diff_builds(conn, "A", "B") if c.change_kind.startswith("moved")
    ]
    expected = [("shared_helper", "alpha", "beta")] + [
        (name, "alpha", "beta") for name in ("fake_event", "fake_list", "fake_module")
    ]
    assert got == (expected if moved else [])


def test_a_module_kfunc_is_not_removed_against_unread_modules(moves_db, tmp_path):
    """kfuncs follow the rule of every module item: one registered by module beta
    on D (a row like those ingest writes for nf_conntrack's, tests/test_kfuncs_modules.py)
    is "removed" against a B whose modules were read, and not mentioned when they were not."""
    kfunc = (
        "INSERT OR IGNORE INTO names (name) VALUES ('beta_kfunc');"
        " INSERT INTO kfuncs (name_id, build_id, source, sets, flags, module_id)"
        " SELECT n.id, b.id, 'btf_id_set8', 'beta_kfunc_ids', 0, m.id FROM names n, builds b"
        " JOIN modules m ON m.build_id = b.id JOIN names mn ON mn.id = m.name_id"
        " WHERE n.name = 'beta_kfunc' AND b.name = 'D' AND mn.name = 'beta';"
    )
    for unread, expected in ((False, [("beta_kfunc", "removed")]), (True, [])):
        sql = kfunc + (" UPDATE builds SET n_modules = NULL WHERE name = 'B';" if unread else "")
        conn = db.connect(variant(moves_db, tmp_path / str(unread), sql))
        changes = diff.diff_builds(conn, "D", "B", kinds=["kfunc"])
        assert [(c.name, c.change_kind) for c in changes] == expected
