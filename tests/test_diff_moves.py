"""Types, trace events and kfuncs that move between vmlinux and a module, in diffs and on the pages
(docs/concepts.md#differences). conftest's `module_db` (A: the fixture
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

import sqlite3
from pathlib import Path

import pytest

from ingest import db, pipeline
from ingest.changes import diff
from tests.support import FIXTURES, facts
from tests.support.modules import build_modules, install_modules
from tests.support.programs import compile_program, compile_traced
from tests.support.site import Site, variant
from tests.support.tools import build

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
    if not module:
        return compile_traced(SOURCE, dest / "surfaces")
    build(["gcc", "-g", "-O2", "-fno-toplevel-reorder", "-c", SOURCE, "-o", dest / "s.o"])
    build(["gcc", "-c", "-x", "c", "-", "-o", dest / "mi.o"], input=MODINFO.encode())
    build(["ld", "-r", "-o", dest / "demo.ko", dest / "s.o", dest / "mi.o"])
    return dest / "demo.ko"


@pytest.fixture(scope="module")
def moves_db(module_db, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("moves")
    path = variant(module_db, tmp / "db")
    kos = {**build_modules("amd64", tmp), "demo": _surfaces(tmp, module=True)}
    for label, vmlinux, layout in (
        ("C", _surfaces(tmp, module=False), {"beta": "m/beta.ko"}),
        ("D", None, {"beta": "m/beta.ko", "demo": "kernel/demo.ko"}),
    ):
        work = tmp / label
        work.mkdir()
        program = vmlinux or compile_program(work, "dwarf5")
        pipeline.ingest(
            program, path, pipeline.Identity(label=label), modules=install_modules(work, kos, layout)
        )
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
    changes = diff.diff_builds(unread, "C", "B", kinds=["struct", "union", "enum", "tracepoint"])
    assert sorted((c.item_kind, c.name) for c in changes if c.change_kind == "removed") == sorted(MOVED)


def _grouped(source: Path, tmp_path: Path) -> Path:
    """A copy of `source` whose builds C and D form a group with its diffs stored."""
    path = variant(source, tmp_path)
    conn = db.connect(path)
    ids = dict(conn.execute("SELECT name, id FROM builds WHERE name IN ('C', 'D')"))
    db.store_groups(conn, [("Moves", "series", [(ids["C"], "C"), (ids["D"], "D")])])
    diff.compute_group_diffs(conn)
    conn.close()
    return path


def test_moves_on_the_pages(moves_db, tmp_path):
    path = _grouped(moves_db, tmp_path)
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
    for unread, expected in ((False, [("beta_kfunc", "removed")]), (True, [])):
        path = variant(
            moves_db,
            tmp_path / str(unread),
            "UPDATE builds SET n_modules = NULL WHERE name = 'B';" if unread else "",
        )
        with facts.editing(path) as conn:
            facts.add_kfunc(conn, "D", "beta_kfunc", "beta_kfunc_ids", "beta")
        conn = db.connect(path)
        changes = diff.diff_builds(conn, "D", "B", kinds=["kfunc"])
        assert [(c.name, c.change_kind) for c in changes] == expected


# --------------------------------------------------------------------------- kfuncs

#: kfunc name -> its home per build (None: vmlinux). gcc writes no BTF, so no fixture
#: registers a kfunc: the rows are set by SQL, as ingest writes them for a module's `.BTF_ids`
#: set8 (tests/test_kfuncs_modules.py). Paths: A alpha kernel/alpha.ko, beta m/beta.ko;
#: B and C beta m/beta.ko; D beta m/beta.ko, demo kernel/demo.ko.
KFUNC_HOMES: dict[str, dict[str, str | None]] = {
    "k_into": {"C": None, "D": "demo"},  # built in on C, in module demo on D
    "k_across": {"A": "alpha", "B": "beta"},  # alpha is no module of B
    "k_kept": {"A": "beta", "D": "demo"},  # D's beta, after demo by path, may still register it
    "k_beta": {"A": "beta", "B": "beta", "D": "beta"},  # never moves
    "k_vmlinux": {"A": None, "B": None, "C": None, "D": None},
}


@pytest.fixture(scope="module")
def kfunc_moves_db(moves_db, tmp_path_factory) -> Path:
    path = variant(moves_db, tmp_path_factory.mktemp("kfunc-moves"))
    with facts.editing(path) as conn:
        for name, homes in KFUNC_HOMES.items():
            for build, module in homes.items():
                facts.add_kfunc(conn, build, name, "moving_kfunc_ids", module)
    conn = db.connect(path)
    stored = conn.execute(
        "SELECT build, name, module FROM kfunc_list WHERE name LIKE 'k\\_%' ESCAPE '\\' ORDER BY name, build"
    ).fetchall()
    conn.close()
    assert stored == [(b, n, m) for n, homes in sorted(KFUNC_HOMES.items()) for b, m in sorted(homes.items())]
    return path


def _kfunc_moves(conn: sqlite3.Connection, a: str, b: str) -> list[tuple[str, str, str | None, str | None]]:
    changes = diff.diff_builds(conn, a, b, kinds=["kfunc"], name_pattern="k_*")
    return [(c.name, c.change_kind, c.old, c.new) for c in changes if c.change_kind.startswith("moved")]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("C", "D", [("k_into", "moved into module", "vmlinux", "demo")]),
        ("D", "C", [("k_into", "moved into vmlinux", "demo", "vmlinux")]),
        # module to module: alpha is gone from B; beta -> demo on D: beta may still register it
        ("A", "B", [("k_across", "moved into module", "alpha", "beta")]),
        ("A", "D", []),
        ("B", "D", []),
    ],
)
def test_kfuncs_move(kfunc_moves_db, a, b, expected):
    assert _kfunc_moves(db.connect(kfunc_moves_db), a, b) == expected


def test_a_moved_kfunc_is_only_moved(kfunc_moves_db):
    """Same flags and sets on both sides: the move is the kfunc's only change."""
    changes = diff.diff_builds(db.connect(kfunc_moves_db), "C", "D", kinds=["kfunc"], name_pattern="k_into")
    assert [(c.name, c.change_kind) for c in changes] == [("k_into", "moved into module")]


@pytest.mark.parametrize(
    ("a", "b", "unread", "expected"),
    [
        # k_across stays where it was as far as anyone knows; A's k_kept (beta) is not removed
        ("A", "B", "B", []),
        ("B", "A", "B", []),
        # k_into: built in on C, D's place for it unknown. D's other module kfuncs are
        # "added" against C, whose modules were read (the rule of tests above)
        ("C", "D", "D", [("k_beta", "added"), ("k_kept", "added")]),
        ("D", "C", "D", [("k_beta", "removed"), ("k_kept", "removed")]),
    ],
)
def test_kfuncs_do_not_move_against_unread_modules(kfunc_moves_db, tmp_path, a, b, unread, expected):
    """A build whose modules were not read (n_modules NULL) says nothing about where a
    kfunc lives: no move, and a module's kfunc it lacks is not removed."""
    sql = f"UPDATE builds SET n_modules = NULL WHERE name = '{unread}';"
    conn = db.connect(variant(kfunc_moves_db, tmp_path, sql))
    changes = diff.diff_builds(conn, a, b, kinds=["kfunc"], name_pattern="k_*")
    assert sorted((c.name, c.change_kind) for c in changes) == expected


def test_kfunc_moves_stored_and_on_the_page(kfunc_moves_db, tmp_path):
    path = _grouped(kfunc_moves_db, tmp_path)
    conn = db.open_readonly(path)
    stored = conn.execute(
        "SELECT name, change_kind, old, new FROM change_list WHERE item_kind = 'kfunc' AND name = 'k_into'"
    ).fetchall()
    conn.close()
    assert stored == [("k_into", "moved into module", "vmlinux", "demo")]
    site = Site(path)
    try:
        page = site.get("/kfunc/k_into").text
        assert (
            'moved into module: <code class="ks-diff-old">vmlinux</code> ➡️ <code class="ks-diff-new">demo</code>'
            in page
        )
        assert '<a href="/kfunc/k_into">k_into</a>' in site.get("/diff/C/D?change=moved+into+module").text
    finally:
        site.close()


def test_canned_queries_end_with_the_module(kfunc_moves_db):
    """tracepoints_per_build and kfuncs_per_build list one build's items with their module last."""
    site = Site(kfunc_moves_db)
    try:
        events = site.rows("/kernels/tracepoints_per_build.json?name=sched_switch&build=")
        assert [(r["build"], list(r)[-1], r["module"]) for r in events] == [
            ("C", "module", None),
            ("D", "module", "demo"),
        ]
        kfuncs = site.rows("/kernels/kfuncs_per_build.json?name=k_into&build=")
        assert [(r["build"], list(r)[-1], r["module"]) for r in kfuncs] == [
            ("C", "module", None),
            ("D", "module", "demo"),
        ]
    finally:
        site.close()
