"""Modules on the pages, in search, the builds summary, canned queries and diffs
(docs/concepts.md#modules, docs/serving.md). Two builds of the fixture program
(dwarf4 and dwarf5: two build-ids) each with a module tree built from
tests/fixtures/modules by tests/test_modules_readers.py::build_modules:

- "A" (dwarf4): kernel/alpha.ko, m/beta.ko
- "B" (dwarf5): m/beta.ko only

From the C source: alpha (alpha_main.c, alpha_util.c; depends=beta,gamma, license GPL,
description "alpha fixture") defines alpha_entry, alpha_util, alpha_twice, alpha_init and
a static shared_helper; beta (beta_main.c, "Dual MIT/GPL") defines beta_entry and its own
static shared_helper. Modules in path order: kernel/alpha.ko before m/beta.ko, so in A
shared_helper lives in alpha; in B only beta has it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest import db
from ingest.changes import diff
from ingest.queries import names as names_q
from ingest.web import items, modules, overview
from ingest.web.context import Context, Links, load_context
from tests.support import facts
from tests.support.site import Site, variant

#: What alpha defines (alpha_main.c, alpha_util.c); shared_helper lives in alpha in A (first by path).
#: The undefined import vmlinux_import (declared in alpha_main.c, defined nowhere) is left out of
#: the comparisons: whether its declaration-only row is tagged alpha differs between the dwarf4 and
#: dwarf5 builds (a question for the ingest, not for the pages).
ALPHA_DEFINES = ["alpha_entry", "alpha_init", "alpha_twice", "alpha_util", "shared_helper"]
IMPORT = "vmlinux_import"

#: The fixture program's function names with a compile unit directly in kernel/
#: (tests/fixtures/program: unit_a.c, unit_b.c, main.c; asm_defined and
#: never_defined have no CU): what B's vmlinux has in alpha.ko's directory.
KERNEL_DIR_FUNCTIONS = 17


def _open(path: Path) -> tuple[sqlite3.Connection, Context]:
    conn = db.connect(path)
    return conn, load_context(conn)


@pytest.fixture(scope="module")
def site(module_db):
    s = Site(module_db)
    yield s
    s.close()


def rows_of(page: dict) -> dict[str, dict]:
    """build name -> its status line row."""
    return {r["build"]: r for g in page["groups"] for r in g["rows"]}


# --------------------------------------------------------------------------- item pages


def test_function_page_says_the_module(module_db):
    conn, ctx = _open(module_db)
    page = rows_of(items.function_page(conn, ctx, Links(), "alpha_entry"))
    # alpha_entry: one external definition in alpha_main.c, with a symbol: Unique Global, No inline
    assert page["A"]["status"] == "✅ · in module alpha"
    assert page["A"]["module"] == "alpha"
    assert [i["module"] for i in page["A"]["instances"]] == ["alpha"]
    assert page["A"]["symbols"][0].endswith(": alpha_entry (STB_GLOBAL) in module alpha")
    assert page["B"]["present"] is False  # B ships no alpha.ko
    # vmlinux functions say nothing about modules
    entry = rows_of(items.function_page(conn, ctx, Links(), "entry_a"))
    assert "module" not in entry["A"]["status"] and entry["A"]["module"] is None


def test_a_static_in_two_modules_lists_both(module_db):
    conn, ctx = _open(module_db)
    page = rows_of(items.function_page(conn, ctx, Links(), "shared_helper"))
    # A: static in alpha_main.c and beta_main.c, two declarations: a collision, in both modules
    # (its attachability is alpha's, the first by path with a symbol of the name)
    assert page["A"]["status"] == "Collision ⚠️ · in modules alpha, beta"
    assert page["A"]["module"] == "alpha"
    assert [i["module"] for i in page["A"]["instances"]] == ["alpha", "beta"]
    # B: only beta's
    assert page["B"]["status"] == "✅ · in module beta"
    assert page["B"]["changed"] is True  # Δ: collision and module differ from A


def test_struct_defined_only_in_modules(module_db):
    conn, ctx = _open(module_db)
    # struct fake_module (mod_common.h) is defined by the modules, not by the program
    page = rows_of(items.struct_page(conn, ctx, Links(), "fake_module"))
    assert page["A"]["status"] == "✅ · in module alpha"
    assert page["B"]["status"] == "✅ · in module beta"
    assert [d["module"] for d in page["A"]["definitions"]] == ["alpha"]


# --------------------------------------------------------------------------- /module/<name>


def test_module_page_across_builds(module_db):
    conn, ctx = _open(module_db)
    page = modules.module_page(conn, ctx, Links(), "alpha")
    assert page["found"] is True
    a, b = rows_of(page)["A"], rows_of(page)["B"]
    # .modinfo of alpha_main.c
    assert (a["path"], a["license"], a["description"], a["depends"], a["error"]) == (
        "kernel/alpha.ko",
        "GPL",
        "alpha fixture",
        ["beta", "gamma"],
        None,
    )
    assert a["vermagic"] == "6.1.0-test SMP mod_unload"
    alpha_rows = conn.execute(
        "SELECT n.name FROM functions f JOIN names n ON n.id = f.name_id JOIN modules m ON m.id = f.module_id"
        " JOIN builds b ON b.id = m.build_id WHERE b.name = 'A' AND m.path = 'kernel/alpha.ko'"
    ).fetchall()
    assert sorted(n for (n,) in alpha_rows if n != IMPORT) == ALPHA_DEFINES
    assert a["functions"] == len(alpha_rows)
    assert a["functions_url"] == "/kernels/module_functions?build=A&module=alpha"
    assert (
        a["status"] == f"loadable module kernel/alpha.ko, {a['size']:,} bytes, {len(alpha_rows)} functions ✅"
    )
    assert a["size"] > 0
    # B read its modules and has no alpha, but its vmlinux has code in kernel/
    assert b["present"] is False and b["built_in"] == {"kernel": KERNEL_DIR_FUNCTIONS}
    assert (
        b["status"] == f"built into vmlinux? (vmlinux has functions from {KERNEL_DIR_FUNCTIONS} in kernel/)"
    )
    assert [(c["letters"], c["cls"]) for c in page["strip"]] == [("", "ok"), ("BΔ", "T")]


def test_module_page_absent_and_not_recorded(module_db, tmp_path):
    conn, ctx = _open(module_db)
    beta = rows_of(modules.module_page(conn, ctx, Links(), "beta"))
    # m/ has no vmlinux code: nothing to guess from; beta is in both builds
    assert beta["A"]["license"] == "Dual MIT/GPL" and beta["A"]["depends"] == []
    assert beta["B"]["functions"] == 2  # beta_entry, shared_helper (alpha is gone)
    assert beta["A"]["functions"] == 1  # beta_entry; shared_helper lives in alpha
    # gamma: named by alpha's depends, shipped by no build
    assert modules.module_page(conn, ctx, Links(), "gamma")["found"] is False
    # a build whose modules were not read says so instead of absent
    conn, ctx = _open(variant(module_db, tmp_path, "UPDATE builds SET n_modules = NULL WHERE name = 'B';"))
    b = rows_of(modules.module_page(conn, ctx, Links(), "alpha"))["B"]
    assert (b["status"], b["recorded"]) == ("? not recorded (this build's modules were not read)", False)


def test_module_page_served(site):
    page = site.get("/module/alpha")
    assert page.status_code == 200
    assert "kernel/alpha.ko" in page.text and "alpha fixture" in page.text
    assert (
        '<a href="/module/beta"><code>beta</code></a>, <a href="/module/gamma"><code>gamma</code></a>'
        in page.text
    )
    assert "built into vmlinux?" in page.text
    assert site.get("/module/gamma").status_code == 404
    assert site.get("/module/no_such_thing").status_code == 404
    fn = site.get("/function/alpha_entry")
    assert "✅ · in module alpha" in fn.text and 'in module <a href="/module/alpha">alpha</a>' in fn.text


# --------------------------------------------------------------------------- canned queries, /builds, /search


def test_canned_queries(site):
    got = site.rows("/kernels/modules_per_build.json?name=&build=")
    assert [(r["build"], r["name"], r["path"], r["license"], r["depends"], r["error"]) for r in got] == [
        ("A", "alpha", "kernel/alpha.ko", "GPL", "beta,gamma", None),
        ("A", "beta", "m/beta.ko", "Dual MIT/GPL", None, None),
        ("B", "beta", "m/beta.ko", "Dual MIT/GPL", None, None),
    ]
    assert [r["functions"] for r in got][1:] == [1, 2]  # beta_entry; beta_entry and shared_helper
    assert [r["trace_events"] for r in got] == [0, 0, 0]  # the fixture's events are no ftrace events
    got = site.rows("/kernels/module_functions.json?build=A&module=alpha")
    assert [r["name"] for r in got if r["name"] != IMPORT] == ALPHA_DEFINES
    status = {r["name"]: r["status"] for r in got}
    # shared_helper: statics in alpha_main.c and beta_main.c; alpha_entry: one external definition
    assert status["shared_helper"] == "Collision ⚠️" and status["alpha_entry"] == "✅"
    assert {r["name"]: r["kprobe"] for r in got}["alpha_entry"] == "✓"
    summary = site.rows("/kernels/builds_summary.json")
    assert [(r["build"], r["modules"]) for r in summary] == [("A", 2), ("B", 1)]
    assert summary[1]["module_functions"] == 2
    assert summary[0]["module_functions"] in (6, 7)  # alpha's (with or without the import) + beta_entry


def test_builds_page_counts_modules(module_db, site):
    conn, ctx = _open(module_db)
    page = overview.summary_page(conn, ctx, Links())
    # A: alpha's functions + beta_entry; B: beta_entry and shared_helper
    alpha = conn.execute("SELECT functions FROM module_list WHERE build = 'A' AND name = 'alpha'").fetchone()[
        0
    ]
    assert [(r.name, r.modules, r.module_functions) for r in page["rows"]] == [
        ("A", 2, alpha + 1),
        ("B", 1, 2),
    ]
    assert page["modules"] is True
    html = site.get("/builds").text
    assert "module functions" in html and "/kernels/modules_per_build?build=A" in html


def test_search_finds_modules(module_db, site):
    conn, ctx = _open(module_db)
    # no name_search index here: the scan finds module names too
    assert not names_q.indexed(conn, ctx.tables)
    got = {r["name"]: r for r in overview.search_page(conn, ctx, Links(), "beta")["results"]}
    assert got["beta"]["module"] == 2 and got["beta"]["functions"] == 0
    assert got["beta_entry"]["module"] == 0 and got["beta_entry"]["functions"] == 2
    html = site.get("/search?q=beta").text
    assert '<a href="/module/beta">module</a>' in html


# --------------------------------------------------------------------------- diffs


def test_modules_added_removed_and_moved(module_db, tmp_path):
    conn, _ = _open(variant(module_db, tmp_path))  # a copy: the pair is stored below
    changes = diff.diff_builds(conn, "A", "B")
    modules_changed = [(c.name, c.change_kind, c.old, c.new) for c in changes if c.item_kind == "module"]
    assert modules_changed == [("alpha", "removed", "kernel/alpha.ko", None)]
    moved = [(c.name, c.change_kind, c.old, c.new) for c in changes if c.change_kind.startswith("moved")]
    # shared_helper lived in alpha (first by path) in A, only beta has it in B; so do the
    # structs of mod_common.h that alpha and beta use (tests/test_diff_moves.py)
    assert moved == [("shared_helper", "moved into module", "alpha", "beta")] + [
        (name, "moved into module", "alpha", "beta") for name in ("fake_event", "fake_list", "fake_module")
    ]
    removed = sorted(c.name for c in changes if c.item_kind == "function" and c.change_kind == "removed")
    assert [n for n in removed if n != IMPORT] == ["alpha_entry", "alpha_init", "alpha_twice", "alpha_util"]
    back = diff.diff_builds(conn, "B", "A", kinds=["module"])
    assert [(c.name, c.change_kind, c.new) for c in back] == [("alpha", "added", "kernel/alpha.ko")]
    # stored and shown: the changes CHECK takes item kind "module"
    pair = diff.store_pair(conn, "A", "B")
    assert conn.execute(
        "SELECT count(*) FROM changes WHERE pair_id = ? AND item_kind = 'module'", (pair,)
    ).fetchone() == (1,)


def test_moved_into_vmlinux(module_db, tmp_path):
    # The same program is vmlinux in both builds, so make B's beta_entry a vmlinux function
    # (as a config with the code built in would): only its module_id differs.
    path = variant(module_db, tmp_path)
    with facts.editing(path) as conn:
        b = facts.build_id(conn, "B")
        facts.change(conn, "function", b, facts.function_fact(conn, b, "beta_entry"), module_name_id=None)
    conn, _ = _open(path)
    moved = [
        (c.name, c.change_kind, c.old, c.new) for c in diff.diff_builds(conn, "A", "B", name_pattern="beta_*")
    ]
    assert moved == [("beta_entry", "moved into vmlinux", "beta", "vmlinux")]


def test_nothing_about_modules_when_one_build_did_not_read_them(module_db, tmp_path):
    conn, _ = _open(variant(module_db, tmp_path, "UPDATE builds SET n_modules = NULL WHERE name = 'B';"))
    changes = diff.diff_builds(conn, "A", "B")
    assert not [c for c in changes if c.item_kind == "module" or c.change_kind.startswith("moved")]
    # A's module functions are not "removed" against a build that could not see them
    assert not [c for c in changes if c.name.startswith("alpha_")]


# --------------------------------------------------------------------------- kfuncs registered by modules


#: gcc writes no BTF, so the fixture modules register no kfunc: the rows a real module's
#: `.BTF_ids` set8 gives (tests/test_kfuncs_modules.py; the real pages:
#: tests/test_frontend_surfaces.py::test_real_kfuncs_of_modules_on_the_pages) are added
#: here: alpha registers alpha_entry in A; beta registers beta_entry in A, while B's
#: beta_entry kfunc is vmlinux's (as a config with the code built in would have it).
@pytest.fixture(scope="module")
def kfunc_db(module_db, tmp_path_factory) -> Path:
    path = variant(module_db, tmp_path_factory.mktemp("kfuncs"))
    with facts.editing(path) as conn:
        homes = conn.execute(
            "SELECT b.name, n.name, mn.name FROM functions f JOIN names n ON n.id = f.name_id"
            " JOIN builds b ON b.id = f.build_id LEFT JOIN names mn ON mn.id = f.module_name_id"
            " WHERE n.name IN ('alpha_entry', 'beta_entry')"
        ).fetchall()
        for build, name, module in homes:
            facts.add_kfunc(conn, build, name, "fixture_kfunc_set", None if build == "B" else module)
    return path


def test_kfunc_pages_say_the_module(kfunc_db):
    conn, ctx = _open(kfunc_db)
    # the check verdict is the CLI's: in module beta, which depends on nothing
    kfunc = rows_of(items.surface_page(conn, ctx, Links(), "kfunc", "beta_entry"))
    assert kfunc["A"]["status"] == "kfunc in fixture_kfunc_set ✅ · in module beta"
    assert kfunc["A"]["verdicts"][0]["text"] == "in module beta (must be loaded: beta)"
    assert [f["module"] for f in kfunc["A"]["facts"]] == ["beta"]
    assert kfunc["B"]["status"] == "kfunc in fixture_kfunc_set ✅"  # vmlinux's: as before modules
    assert kfunc["B"]["changed"] is True  # Δ: moved into vmlinux
    function = rows_of(items.function_page(conn, ctx, Links(), "beta_entry"))
    assert function["A"]["kfunc"] == "kfunc in fixture_kfunc_set · in module beta"
    assert function["B"]["kfunc"] == "kfunc in fixture_kfunc_set"
    assert rows_of(items.function_page(conn, ctx, Links(), "alpha_util"))["A"]["kfunc"] is None


def test_module_page_lists_its_kfuncs(kfunc_db):
    conn, ctx = _open(kfunc_db)
    page = modules.module_page(conn, ctx, Links(), "alpha")
    a = rows_of(page)["A"]
    assert a["kfuncs"] == ["alpha_entry"] and a["status"].endswith(" functions, 1 kfunc ✅")
    beta = rows_of(modules.module_page(conn, ctx, Links(), "beta"))
    assert (beta["A"]["kfuncs"], beta["B"]["kfuncs"]) == (["beta_entry"], [])
    assert beta["B"]["changed"] is True  # beta_entry left beta's kfuncs


def test_kfuncs_in_modules_served(kfunc_db):
    site = Site(kfunc_db)
    try:
        html = site.get("/kfunc/beta_entry").text
        assert "kfunc in fixture_kfunc_set ✅ · in module beta" in html
        assert (
            '<b>Lives in module</b> <a href="/module/beta"><code>beta</code></a> (callable once it is loaded)'
            in html
        )
        assert "<code>kfunc:beta_entry</code> ✓ in module beta (must be loaded: beta)" in html
        fn = site.get("/function/beta_entry").text
        assert 'Also a kfunc: <a href="/kfunc/beta_entry">' in fn
        assert ">kfunc in fixture_kfunc_set · in module beta</a>" in fn
        alpha = site.get("/module/alpha").text
        assert (
            '<b>kfuncs it registers:</b> <a href="/kfunc/alpha_entry"><code>alpha_entry</code></a></p>'
            in alpha
        )
        search = site.get("/search?q=beta_entry").text
        assert '<a href="/kfunc/beta_entry">kfunc</a> <span class="ks-muted">in module beta</span>' in search
        got = site.rows("/kernels/kfuncs_per_build.json?name=beta_entry&build=")
        assert [(r["build"], r["module"]) for r in got] == [("A", "beta"), ("B", None)]
        # /check: the cell's text is the CLI's (ok cells carry it in their title, as the CLI's JSON)
        check = site.get("/check", params={"deps": "kfunc:beta_entry"}).text
        assert 'title="A: in module beta (must be loaded: beta)">✓</td>' in check
        assert 'title="B: ok">✓</td>' in check
    finally:
        site.close()
