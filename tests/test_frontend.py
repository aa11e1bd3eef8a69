"""The Datasette frontend over the frontend fixture (tests/fixtures/frontend,
builds "v1" and "v2"): canned queries return the rows the C source implies,
pages render status lines, callers, symbols, layouts and diffs, names are
escaped and parameters are inert."""

from __future__ import annotations

import html
import os
import re
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support import ROOT, facts
from tests.support.site import SOURCES, Site, binary, build_frontend_db, text, variant


def line_of(file: str, text: str) -> int:
    """The line of a fixture source where `text` first appears."""
    lines = (SOURCES / file).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def nm_range(prog: Path, symbol: str) -> str:
    """`start-end` of a symbol as `nm -S` (an independent reader) prints it."""
    out = subprocess.run(["nm", "-S", str(prog)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == symbol:
            start, size = int(parts[0], 16), int(parts[1], 16)
            return f"{start:x}-{start + size:x}"
    raise AssertionError(f"{symbol} not in nm output")


@pytest.fixture(scope="session")
def fixture_db(tmp_path_factory) -> Path:
    return build_frontend_db(tmp_path_factory)


@pytest.fixture(scope="session")
def site(fixture_db):
    s = Site(fixture_db)
    yield s
    s.close()


def site_with(tmp_path, fixture_db, sql="", params=None) -> Site:
    return Site(variant(fixture_db, tmp_path / "variant", sql, params))


DIFF_SQL = """
INSERT INTO diff_pairs (id, group_id, build_a, build_b, stamp, computed_at, n_changes)
  SELECT 1, NULL, a.id, b.id, 'test', '2025-01-01T00:00:00Z', 6 FROM builds a, builds b
  WHERE a.name = 'v1' AND b.name = 'v2';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'function', id, 'param added', 'flags', NULL, 'long int' FROM names WHERE name = 'fe_map';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'function', id, 'removed', NULL, NULL, NULL FROM names WHERE name = 'fe_removed';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'function', id, 'added', NULL, NULL, 'int fe_added(int x);' FROM names WHERE name = 'fe_added';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'function', id, 'inline changed', NULL, 'No', 'Full' FROM names WHERE name = 'fe_becomes_inline';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'struct', id, 'field added', 'flags', NULL, 'unsigned int' FROM names WHERE name = 'fe_ops';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'struct', id, 'size changed', NULL, '24', '32' FROM names WHERE name = 'fe_ops';
"""

GROUPS_SQL = """
INSERT INTO groups (id, name, kind, position) VALUES (1, 'Regular', 'series', 0), (2, 'Flavor', 'variants', 1);
INSERT INTO group_members (group_id, position, build_id, label)
  SELECT 1, 0, id, '1.0' FROM builds WHERE name = 'v1';
INSERT INTO group_members (group_id, position, build_id, label)
  SELECT 1, 1, id, '2.0' FROM builds WHERE name = 'v2';
INSERT INTO group_members (group_id, position, build_id, label)
  SELECT 2, 0, id, 'generic' FROM builds WHERE name = 'v2';
INSERT INTO group_members (group_id, position, build_id, label)
  SELECT 2, 1, id, 'cloud' FROM builds WHERE name = 'v1';
"""

EVIL = '<script>alert("x")</script>&amp;'


# --------------------------------------------------------------------------- canned queries


def test_every_canned_query_runs(site):
    queries = site.loop.run_until_complete(site.ds.get_canned_queries("kernels", None))
    expected = {
        "function_builds",
        "function_instances",
        "function_callers",
        "function_symbols",
        "struct_layout",
        "builds_summary",
        "became_inlined",
        "search_names",
        "diff_between_builds",
        "diff_counts",
        "diff_pair_list",
        "function_attach",
        "tracepoints_per_build",
        "syscalls_per_build",
        "lsm_hooks_per_build",
        "kfuncs_per_build",
        "config_per_build",
        "variables_per_build",
        "fact_sources",
    }
    assert expected <= set(queries)
    params = {
        "name": "fe_map",
        "build": "v1",
        "build_a": "v1",
        "build_b": "v2",
        "q": "fe_",
        "item_kind": "",
        "change_kind": "",
        "only": "failing",
    }
    for name in queries:
        response = site.get(f"/kernels/{name}.json", params=params)
        assert response.status_code == 200, (name, response.text[:300])
        assert response.json()["ok"] is not False, name


def test_function_status_query(site):
    # the canned query is function_builds; its old name is the view's and redirects when given a name
    old = site.get("/kernels/function_status.json?name=fe_map", follow_redirects=False)
    assert old.status_code == 302
    assert old.headers["location"] == "/kernels/function_builds.json?name=fe_map"
    assert site.get("/kernels/function_status.json").json()["rows"]  # the view, without a name
    rows = site.rows("/kernels/function_builds.json?name=fe_map")
    assert [(r["build"], r["status"], r["collision"], r["inline"], r["prototype"]) for r in rows] == [
        ("v1", "✅", "Unique Global", "No", "int fe_map(int *pages, unsigned int count);"),
        ("v2", "✅", "Unique Global", "No", "int fe_map(int *pages, unsigned int count, long int flags);"),
    ]
    rows = site.rows("/kernels/function_status.json?name=fe_removed")
    assert [(r["build"], r["status"]) for r in rows] == [("v1", "✅"), ("v2", "Absent ⚠️")]
    rows = site.rows("/kernels/function_status.json?name=fe_helper")
    assert {r["status"] for r in rows} == {"Duplicate, Full Inline ⚠️"}
    rows = site.rows("/kernels/function_status.json?name=fe_scalar")
    assert {(r["status"], r["transformation"]) for r in rows} == {
        ("Selective Inline, Transformation ⚠️", "isra")
    }
    rows = site.rows("/kernels/function_status.json?name=fe_twin")
    assert {(r["status"], r["collision"]) for r in rows} == {("Collision ⚠️", "Static-Static Collision")}


def test_function_instances_query(site):
    rows = site.rows("/kernels/function_instances.json?name=fe_helper")
    location = f"include/fe.h:{line_of('fe.h', 'static inline int fe_helper(')}"
    assert sorted((r["build"], r["cu"], r["location"], r["dw_at_inline"], r["external"]) for r in rows) == [
        ("v1", "kernel/fe_a.c", location, 3, 0),
        ("v1", "kernel/fe_b.c", location, 3, 0),
        ("v2", "kernel/fe_a.c", location, 3, 0),
        ("v2", "kernel/fe_b.c", location, 3, 0),
    ]


def test_function_callers_query(site):
    rows = site.rows("/kernels/function_callers.json?name=fe_map&build=v1")
    assert [(r["caller"], r["caller_cu"], r["kind"], r["sites"]) for r in rows] == [
        ("fe_entry_a", "kernel/fe_a.c", "direct", 2),
        ("fe_entry_b", "kernel/fe_b.c", "direct", 1),
    ]
    rows = site.rows("/kernels/function_callers.json?name=fe_helper&build=v2")
    assert sorted((r["caller"], r["callee_cu"], r["kind"]) for r in rows) == [
        ("fe_entry_a", "kernel/fe_a.c", "inline"),
        ("fe_entry_b", "kernel/fe_b.c", "inline"),
    ]


def test_function_symbols_query(site, tmp_path_factory):
    rows = site.rows("/kernels/function_symbols.json?name=fe_scalar")
    assert [(r["build"], r["symbol"], r["binding"], r["suffixes"]) for r in rows] == [
        ("v1", "fe_scalar.isra.0", "STB_LOCAL", "isra"),
        ("v2", "fe_scalar.isra.0", "STB_LOCAL", "isra"),
    ]
    rows = site.rows("/kernels/function_symbols.json?name=fe_map")
    for r in rows:
        assert f"{r['start']}-{r['end']}" == nm_range(binary(tmp_path_factory, r["build"]), "fe_map")


def test_struct_layout_query(site):
    rows = site.rows("/kernels/struct_layout.json?name=fe_ops")
    by_build = {}
    for r in rows:
        by_build.setdefault(r["build"], []).append(
            (r["field"], r["byte_offset"], r["byte_size"], r["parent"])
        )
    v1 = [
        ("open", 0, 8, None),
        (None, 8, 8, None),
        ("raw", 8, 8, 1),
        (None, 8, 4, 1),
        ("lo", 8, 2, 3),
        ("hi", 10, 2, 3),
        ("name", 16, 8, None),
    ]
    assert by_build == {"v1": v1, "v2": v1 + [("flags", 24, 4, None)]}
    assert {(r["build"], r["type_size"]) for r in rows} == {("v1", 24), ("v2", 32)}


def test_builds_summary_query(site):
    rows = {r["build"]: r for r in site.rows("/kernels/builds_summary.json")}
    assert list(rows) == ["v1", "v2"]
    # fe_helper (both), fe_becomes_inline (v2 only); fe_twin; fe_helper; fe_scalar.isra
    assert (rows["v1"]["full_inline"], rows["v2"]["full_inline"]) == (1, 2)
    assert {r["collisions"] for r in rows.values()} == {1}
    assert {r["duplicates"] for r in rows.values()} == {1}
    assert {r["transformed"] for r in rows.values()} == {1}
    assert {r["structs"] for r in rows.values()} == {1}  # struct fe_ops; the anonymous ones have no name


def test_became_inlined_query(site):
    rows = site.rows("/kernels/became_inlined.json?build_a=v1&build_b=v2")
    assert [(r["name"], r["inline_a"], r["inline_b"]) for r in rows] == [("fe_becomes_inline", "No", "Full")]
    assert site.rows("/kernels/became_inlined.json?build_a=v2&build_b=v1") == []


def test_search_names_query(site, tmp_path, fixture_db):
    rows = site.rows("/kernels/search_names.json?q=fe_ma")
    assert [r["name"] for r in rows] == ["fe_map"]
    rows = site.rows("/kernels/search_names.json?q=OPS")  # case-insensitive substring
    assert [(r["name"], r["type_kinds"]) for r in rows] == [("fe_ops", "struct")]
    assert [r["name"] for r in site.rows("/kernels/search_names.json?q=fe")][:2] == ["fe_map", "fe_ops"]
    # Without a filled index the same query falls back to a scan, same answer.
    plain = site_with(tmp_path, fixture_db, "INSERT INTO name_search (name_search) VALUES ('delete-all');")
    assert [r["name"] for r in plain.rows("/kernels/search_names.json?q=fe_ma")] == ["fe_map"]


def test_diff_queries(tmp_path, fixture_db):
    s = site_with(tmp_path, fixture_db, DIFF_SQL)
    rows = s.rows("/kernels/diff_between_builds.json?build_a=v1&build_b=v2&item_kind=&change_kind=&name=")
    assert [(r["item_kind"], r["name"], r["change_kind"], r["detail"]) for r in rows] == [
        ("function", "fe_added", "added", None),
        ("function", "fe_becomes_inline", "inline changed", None),
        ("function", "fe_map", "param added", "flags"),
        ("function", "fe_removed", "removed", None),
        ("struct", "fe_ops", "size changed", None),
        ("struct", "fe_ops", "field added", "flags"),
    ]
    # a removed function's old prototype is not stored: change_list joins it from build A
    assert [r["old"] for r in rows if r["name"] == "fe_removed"] == ["int fe_removed(int x);"]
    rows = s.rows(
        "/kernels/diff_between_builds.json?build_a=v1&build_b=v2&item_kind=struct&change_kind=&name="
    )
    assert {r["name"] for r in rows} == {"fe_ops"}
    rows = s.rows("/kernels/diff_counts.json?build_a=v1&build_b=v2")
    assert ("function", "added", 1) in [(r["item_kind"], r["change_kind"], r["changes"]) for r in rows]


# --------------------------------------------------------------------------- function page


def test_function_page_status_lines(site, tmp_path_factory):
    response = site.get("/function/fe_map")
    assert response.status_code == 200
    page = text(response)
    assert "Function: fe_map" in page
    assert "In v1: ✅" in page and "In v2: ✅ Δ" in page
    assert "int fe_map(int *pages, unsigned int count);" in page
    assert "int fe_map(int *pages, unsigned int count, long int flags);" in page
    assert "Collision: Unique Global" in page and "Inline: No" in page and "Transformation: False" in page
    assert (
        f"Location: kernel/fe_a.c:{line_of('fe_a.c', 'int fe_map(int *pages, unsigned int count)')}" in page
    )
    assert "Direct callers:\n  - kernel/fe_a.c:fe_entry_a (2 sites)\n  - kernel/fe_b.c:fe_entry_b" in page
    for version in ("v1", "v2"):
        assert f"{nm_range(binary(tmp_path_factory, version), 'fe_map')}: fe_map (STB_GLOBAL)" in page
    assert '<a href="/function/fe_entry_a">kernel/fe_a.c:fe_entry_a</a>' in response.text
    assert re.search(r"In kernel/fe_a\.c \([0-9a-f]+\)", page)


def test_function_page_inline_callers_and_duplicates(site):
    page = text(site.get("/function/fe_helper"))
    assert "In v1: Duplicate, Full Inline ⚠️" in page and "In v2: Duplicate, Full Inline ⚠️" in page
    assert "Collision: Static Duplication" in page and "Inline: Full" in page
    assert f"Location: include/fe.h:{line_of('fe.h', 'static inline int fe_helper(')}" in page
    assert "Inline: True" in page
    assert "Inline callers:\n  - kernel/fe_a.c:fe_entry_a" in page
    assert "Inline callers:\n  - kernel/fe_b.c:fe_entry_b" in page
    assert "Symbols: none" in page


def test_function_page_collision_transformation_absent(site):
    assert "In v1: Collision ⚠️" in text(site.get("/function/fe_twin"))
    page = text(site.get("/function/fe_scalar"))
    assert "In v1: Selective Inline, Transformation ⚠️" in page
    assert "Transformation: True (isra)" in page
    assert re.search(r"[0-9a-f]+-[0-9a-f]+: fe_scalar\.isra\.0 \(STB_LOCAL\)", page)
    page = text(site.get("/function/fe_removed"))
    assert "In v1: ✅" in page and "In v2: Absent ⚠️ Δ" in page
    assert "In v1: Absent ⚠️" in text(site.get("/function/fe_added"))
    page = text(site.get("/function/fe_becomes_inline"))
    assert "In v1: ✅" in page and "In v2: Full Inline ⚠️ Δ" in page


def test_status_strip(site):
    body = site.get("/function/fe_helper").text
    cell = re.compile(
        r'<a class="ks-cell ks-(\w+)" href="#([\w-]+)" title="([^"]*)">([^<]*)<small>(\w+)</small>'
    )
    cells = cell.findall(body)
    assert [(cls, letters, label) for cls, _, _, letters, label in cells] == [
        ("F", "DF", "v1"),
        ("F", "DF", "v2"),
    ]
    assert cells[0][1:3] == ("g0-0", "v1 (v1): Duplicate, Full Inline ⚠️")
    cells = cell.findall(site.get("/function/fe_map").text)
    assert [(c[0], c[3]) for c in cells] == [("ok", "\u00a0"), ("ok", "Δ")]
    cells = cell.findall(site.get("/function/fe_added").text)
    assert [(c[0], c[3]) for c in cells] == [("absent", "\u00a0"), ("ok", "Δ")]
    page = text(site.get("/function/fe_map"))
    for words in ("Full inline", "Selective inline", "Transformed", "Duplicate", "Collision", "absent"):
        assert words in page  # the legend


def test_unknown_function_is_404_with_search_link(site):
    response = site.get("/function/no_such_function")
    assert response.status_code == 404
    assert "No function named no_such_function" in text(response)
    assert 'href="/search?q=no_such_function"' in response.text


def test_function_page_links_json_and_csv(site):
    body = site.get("/function/fe_map").text
    links = re.findall(r'href="(/kernels/[^"]+\.(?:json|csv)[^"]*)"', body)
    assert any(".json" in link for link in links) and any(".csv" in link for link in links)
    for link in links:
        response = site.get(html.unescape(link))
        assert response.status_code == 200, link


def test_no_diffs_computed(site):
    assert "Between v1 and v2: no diffs computed" in text(site.get("/function/fe_map"))
    response = site.get("/diff/v1/v2")
    assert response.status_code == 200
    assert "No diffs computed for this pair of builds" in text(response)


def test_groups_order_labels_and_variants(tmp_path, fixture_db):
    s = site_with(tmp_path, fixture_db, GROUPS_SQL)
    page = text(s.get("/function/fe_removed"))
    assert page.index("Regular") < page.index("Flavor")
    assert "In 1.0 (v1): ✅" in page and "In 2.0 (v2): Absent ⚠️ Δ" in page
    # variants compare with the baseline (generic = v2): cloud (v1) has it, so it changed
    assert "In generic (v2): Absent ⚠️" in page and "In cloud (v1): ✅ Δ" in page
    assert "All builds" not in page


def test_no_dwarf_build_says_inlining_unknown(tmp_path, fixture_db):
    s = site_with(
        tmp_path,
        fixture_db,
        "UPDATE builds SET has_dwarf = 0, lacks = 'inlining, callers, instances' WHERE name = 'v1';",
    )
    page = text(s.get("/function/fe_helper"))
    assert "In v1: ✅ (no DWARF: inlining unknown)" in page
    assert "no DWARF: inlining unknown (this build lacks inlining, callers, instances)" in page
    assert "In v2: Duplicate, Full Inline ⚠️" in page
    page = text(s.get("/function/fe_added"))
    assert "In v1: not in BTF or symbols (no DWARF: inlining unknown)" in page
    assert "Absent" not in page.split("Status")[1].split("In v2")[0]
    rows = s.rows("/kernels/function_status.json?name=fe_helper")
    assert rows[0]["status"] == "✅ (no DWARF: inlining unknown)"


def test_function_and_struct_differences(tmp_path, fixture_db):
    s = site_with(tmp_path, fixture_db, DIFF_SQL)
    page = text(s.get("/function/fe_map"))
    assert "v1 and v2 ⚠️" in page and "param added flags: long int" in page
    page = text(s.get("/function/fe_entry_a"))
    assert "No changes between v1 and v2 ✅" in page
    page = text(s.get("/struct/fe_ops"))
    assert "field added flags: unsigned int" in page and "size changed: 24 ➡️ 32" in page


# --------------------------------------------------------------------------- struct, diff, search, builds, matrix


def test_struct_page(site):
    response = site.get("/struct/fe_ops")
    assert response.status_code == 200
    page = text(response)
    assert "Struct: fe_ops" in page
    assert "In v1: ✅" in page and "In v2: ✅ Δ" in page
    v1 = (
        "struct fe_ops {\n"
        "\tint (*open)(struct fe_ops *, int);\t/* 0 8 */\n"
        "\tunion {\n"
        "\t\tlong int raw;\t/* 8 8 */\n"
        "\t\tstruct {\n"
        "\t\t\tshort int lo;\t/* 8 2 */\n"
        "\t\t\tshort int hi;\t/* 10 2 */\n"
        "\t\t};\t/* 8 4 */\n"
        "\t};\t/* 8 8 */\n"
        "\tconst char *name;\t/* 16 8 */\n"
    )
    assert v1 + "\n\t/* size: 24 */\n};" in page
    assert v1 + "\tunsigned int flags;\t/* 24 4 */\n\n\t/* size: 32 */\n};" in page
    assert site.get("/struct/fe_map").status_code == 404


def test_diff_page(tmp_path, fixture_db):
    s = site_with(tmp_path, fixture_db, DIFF_SQL)
    response = s.get("/diff/v1/v2")
    assert response.status_code == 200
    page = text(response)
    assert "Differences: v1 → v2" in page and "6 changes." in page
    assert "param added" in page and "long int" in page and "size changed" in page
    assert '<a href="/function/fe_map">fe_map</a>' in response.text
    assert '<a href="/struct/fe_ops">fe_ops</a>' in response.text
    page = text(s.get("/diff/v1/v2?item=struct"))
    assert "2 changes." in page and "fe_map" not in page.split("2 changes.")[1]
    page = text(s.get("/diff/v1/v2?q=fe_re"))
    assert "1 change." in page and "fe_removed" in page and "int fe_removed(int x);" in page
    page = text(s.get("/diff/v1/v2?change=added"))
    assert "1 change." in page and "fe_added" in page
    assert "Stored as v1 → v2" in text(s.get("/diff/v2/v1"))
    unknown = s.get("/diff/v1/nope")
    assert unknown.status_code == 404 and "Unknown build nope" in text(unknown)


def test_diff_page_paginates(tmp_path, fixture_db):
    many = [
        (
            "INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)"
            " SELECT 1, 'function', id, 'param added', ?, NULL, 'int' FROM names WHERE name = 'fe_map'",
            (f"p{k:03d}",),
        )
        for k in range(150)
    ]
    s = site_with(tmp_path, fixture_db, DIFF_SQL, many)
    first = s.get("/diff/v1/v2")
    assert "156 changes, page 1 of 2" in text(first)
    assert 'href="?page=2">next' in first.text
    second = text(s.get("/diff/v1/v2?page=2"))
    assert "page 2 of 2" in second and "previous" in second


def test_search_page(site):
    response = site.get("/search", params={"q": "fe_ma"})
    assert response.status_code == 200
    assert '<a href="/function/fe_map">function</a>' in response.text
    assert "in 2/2 builds" in text(response)
    response = site.get("/search", params={"q": "ops"})
    assert '<a href="/struct/fe_ops">struct</a>' in response.text
    assert (
        # search finds module names too
        "No function, type, tracepoint, syscall, LSM hook, kfunc, kernel variable, config option or module name"
        " contains zzzz" in text(site.get("/search", params={"q": "zzzz"}))
    )
    assert "/kernels/search_names.json?q=ops" in site.get("/search", params={"q": "ops"}).text


def test_builds_page(site):
    response = site.get("/builds")
    assert response.status_code == 200
    body = response.text
    assert body.count('<svg class="ks-chart"') == 2 and "<script src" not in body
    assert "v1: Full inline 1" in body and "v2: Full inline 2" in body  # bar tooltips
    assert "/kernels/builds_summary.json" in body


def test_matrix_page(site):
    response = site.get("/matrix", params={"names": "fe_helper fe_removed\nfe_ops, nope"})
    assert response.status_code == 200
    assert "<svg" in response.text and "<script src" not in response.text
    cell = r'<g class="ks-m"><title>([^<]*)</title><rect [^>]*fill="(#\w+)"/><text [^>]*>([^<]*)</text></g>'
    cells = re.findall(cell, response.text)
    red, green, grey = "#d9534f", "#5cb85c", "#ececec"
    assert [(html.unescape(t), fill, letters) for t, fill, letters in cells] == [
        ("fe_helper in v1: Duplicate, Full Inline ⚠️", red, "DF"),
        ("fe_helper in v2: Duplicate, Full Inline ⚠️", red, "DF"),
        ("fe_removed in v1: ✅", green, ""),
        ("fe_removed in v2: Absent ⚠️", grey, "Δ"),
        ("fe_ops in v1: ✅", green, ""),
        ("fe_ops in v2: ✅", green, "Δ"),
        ("nope in v1: unknown name", grey, ""),
        ("nope in v2: unknown name", grey, ""),
    ]
    assert '<a href="/function/fe_helper">' in response.text and '<a href="/struct/fe_ops">' in response.text


def test_index_page(site):
    response = site.get("/")
    assert response.status_code == 200
    assert 'action="/search"' in response.text and 'href="/builds"' in response.text
    assert 'href="/kernels"' in response.text


# --------------------------------------------------------------------------- escaping, injection, read-only


def _with_evil_function(path: Path) -> Path:
    """`path` with a function named EVIL in build v1, which calls fe_map."""
    conn = sqlite3.connect(path)
    v1 = facts.build_id(conn, "v1")
    name = conn.execute("INSERT INTO names (name) VALUES (?)", (EVIL,)).lastrowid
    func = {"collision": "Unique Global", "inline": "No", "n_instances": 1, "n_symbols": 0}
    facts.add(conn, "function", v1, name_id=name, **func)
    caller = facts.add(conn, "instance", v1, name_id=name, external=1, defined=1, occurrence=0)
    for (callee,) in conn.execute(
        "SELECT i.id FROM instances i JOIN names n ON n.id = i.name_id WHERE n.name = 'fe_map' AND i.build_id = ?",
        (v1,),
    ).fetchall():
        facts.add(conn, "call", v1, callee_id=callee, caller_id=caller, inline=0, sites=1)
    conn.commit()
    conn.close()
    return path


def test_html_names_are_escaped(tmp_path, fixture_db):
    s = Site(_with_evil_function(variant(fixture_db, tmp_path / "variant")))
    for path in (
        f"/function/{quote(EVIL, safe='')}",
        '/function/<script>alert("x")<',
        "/function/fe_map",
        "/matrix?names=" + quote(EVIL),
        "/search?q=%3Cscript",
        "/struct/" + quote(EVIL, safe=""),
    ):
        response = s.get(path)
        assert "<script>alert" not in response.text, path
    page = s.get(f"/function/{quote(EVIL, safe='')}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;amp;" in page.text
    assert f"Function: {EVIL}" in text(page)
    assert "?:" + EVIL in text(s.get("/function/fe_map"))  # a caller without a CU, shown as text


def test_injection_shaped_parameters_are_inert(site):
    evil = "x' OR '1'='1"
    rows = site.rows("/kernels/function_status.json?name=" + evil.replace("'", "%27").replace(" ", "%20"))
    assert [r["status"] for r in rows] == ["Absent ⚠️", "Absent ⚠️"]
    assert site.rows("/kernels/function_callers.json?name=fe_map&build=v1%27%20OR%201=1--") == []
    for q in ('"', "' OR 1=1 --", 'a" OR "b', "fe_map' --", "*", "NEAR(fe map)"):
        assert site.get("/kernels/search_names.json", params={"q": q}).status_code == 200, q
        assert site.get("/search", params={"q": q}).status_code == 200, q
    assert site.get("/function/x'%20OR%201=1--").status_code == 404
    response = site.get("/diff/v1/v2", params={"q": "' OR 1=1 --", "page": "-3", "item": "x'"})
    assert response.status_code == 200
    assert site.get("/matrix", params={"names": "') DROP TABLE builds; --"}).status_code == 200
    assert [r["build"] for r in site.rows("/kernels/builds_summary.json")] == ["v1", "v2"]


def test_read_only_and_downloadable(site):
    assert site.ds.get_database("kernels").is_mutable is False
    response = site.get(
        "/kernels/function_status.json", params={"name": "fe_map", "sql": "DELETE FROM builds"}
    )
    assert response.status_code == 200
    assert site.get("/kernels.json", params={"sql": "DELETE FROM builds"}).status_code == 400
    download = site.get("/kernels.db")
    assert download.status_code == 200 and download.content[:15] == b"SQLite format 3"
    assert "max-age" in site.get("/function/fe_map").headers["cache-control"]


def test_serve_script_prepares_index_and_inspect_file(tmp_path, fixture_db):
    db = variant(fixture_db, tmp_path, "INSERT INTO name_search (name_search) VALUES ('delete-all');")
    other = tmp_path / "other.db"
    db.rename(other)
    env = dict(os.environ, PREPARE_ONLY="1")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "serve.sh"), str(other)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    # 19 function, type, typedef (fe_counter_t) and surface names, and 12 kernel variables: the OBJECT
    # symbols readelf -sW lists (fe_default_ops, fe_sink, fe_counter and 9 of the C runtime's, ...)
    assert "search index: 31 names" in proc.stderr
    assert (tmp_path / "other.inspect.json").exists()
    assert '"kernels"' in (tmp_path / "other.inspect.json").read_text()


def test_build_names_with_plus_and_tilde_route(tmp_path, fixture_db):
    # "6.12..." sorts before "v1": the pair is stored v1 -> 6.12..., and shown that way round
    s = site_with(
        tmp_path, fixture_db, DIFF_SQL + "UPDATE builds SET name = '6.12.1+deb13~2' WHERE name = 'v2';"
    )
    page = s.get("/function/fe_map")
    assert 'href="/diff/v1/6.12.1+deb13~2?q=fe_map">v1 and 6.12.1+deb13~2</a>' in page.text
    for path in ("/diff/v1/6.12.1+deb13~2", "/diff/v1/6.12.1%2Bdeb13%7E2"):
        response = s.get(path)
        assert response.status_code == 200 and "6 changes." in text(response), path


def test_typedef_page(site):
    """fe_counter_t (fe.h) names an anonymous struct that gained a member in v2."""
    response = site.get("/type/fe_counter_t")
    assert response.status_code == 200
    page = text(response)
    assert "typedef struct {...} fe_counter_t;" in page
    assert "int counter;" in page and "int extra;" in page
    assert site.get("/type/fe_nothing").status_code == 404
    search = site.get("/search?q=fe_counter_t")
    assert '<a href="/type/fe_counter_t">typedef</a>' in search.text
    assert '<a href="/type/fe_counter_t">typedef page</a>' in site.get("/struct/fe_counter_t").text


def test_check_page_says_what_to_use_instead(site):
    """fe_helper (fe.h) is fully inlined: /check names the functions holding its copies."""
    response = site.get("/check", params={"deps": "kprobe:fe_helper"})
    assert response.status_code == 200
    page = text(response)
    assert "Instead" in page
    assert re.search(r"inline_caller: kprobe:fe_entry_[ab]", page), page[:2000]
    data = site.get("/check.json", params={"deps": "kprobe:fe_helper"}).json()
    results = data["dependencies"][0]["results"]
    kinds = {x["kind"] for r in results.values() for x in r.get("suggestions", ())}
    assert kinds == {"inline_caller"}
