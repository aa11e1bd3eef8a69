"""ingest.web without a server: the page builders on the frontend fixture
database (builds "v1" and "v2"), the timeline of a series and of variants,
the matrix geometry, the multipart parser and the status decision table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from ingest.join import classify
from ingest.queries.changes import ChangeFilter
from ingest.web import charts, check, diff, forms, items, overview
from ingest.web.context import Context, Links, load_context
from tests.support.site import build_frontend_db, variant

#: A series (v1 -> v2) and variants whose baseline is v2: cloud (v1) and again (v2).
GROUPS_SQL = """
INSERT INTO groups (id, name, kind, position) VALUES (1, 'Regular', 'series', 0), (2, 'Flavor', 'variants', 1);
INSERT INTO group_members (group_id, position, build_id, label) SELECT 1, 0, id, '1.0' FROM builds WHERE name = 'v1';
INSERT INTO group_members (group_id, position, build_id, label) SELECT 1, 1, id, '2.0' FROM builds WHERE name = 'v2';
INSERT INTO group_members (group_id, position, build_id, label) SELECT 2, 0, id, 'generic' FROM builds WHERE name = 'v2';
INSERT INTO group_members (group_id, position, build_id, label) SELECT 2, 1, id, 'cloud' FROM builds WHERE name = 'v1';
INSERT INTO group_members (group_id, position, build_id, label) SELECT 2, 2, id, 'again' FROM builds WHERE name = 'v2';
"""

DIFF_SQL = """
INSERT INTO diff_pairs (id, group_id, build_a, build_b, stamp, computed_at, n_changes)
  SELECT 1, NULL, a.id, b.id, 'test', '2025-01-01T00:00:00Z', 3 FROM builds a, builds b
  WHERE a.name = 'v1' AND b.name = 'v2';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'function', id, 'param added', 'flags', NULL, 'long int' FROM names WHERE name = 'fe_map';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'function', id, 'removed', NULL, NULL, NULL FROM names WHERE name = 'fe_removed';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'struct', id, 'size changed', NULL, '24', '32' FROM names WHERE name = 'fe_ops';
"""


@pytest.fixture(scope="session")
def fixture_db(tmp_path_factory) -> Path:
    return build_frontend_db(tmp_path_factory)


def _open(path: Path) -> tuple[sqlite3.Connection, Context]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    return conn, load_context(conn)


@pytest.fixture(scope="session")
def plain(fixture_db):
    conn, ctx = _open(fixture_db)
    yield conn, ctx
    conn.close()


@pytest.fixture(scope="session")
def grouped(fixture_db, tmp_path_factory):
    conn, ctx = _open(variant(fixture_db, tmp_path_factory.mktemp("web-groups"), GROUPS_SQL + DIFF_SQL))
    yield conn, ctx
    conn.close()


def cells(page: dict) -> list[tuple[str, str, str, str]]:
    return [(c["group"], c["label"], c["letters"], c["cls"]) for c in page["strip"]]


# --------------------------------------------------------------------------- timeline


def test_context_groups_and_the_rest(plain, grouped):
    _, ctx = plain
    assert [(g.name, g.kind, [m.label for m in g.members]) for g in ctx.groups] == [
        ("All builds", "series", ["v1", "v2"])
    ]
    _, ctx = grouped
    assert [(g.name, g.kind, [(m.label, m.build.name) for m in g.members]) for g in ctx.groups] == [
        ("Regular", "series", [("1.0", "v1"), ("2.0", "v2")]),
        ("Flavor", "variants", [("generic", "v2"), ("cloud", "v1"), ("again", "v2")]),
    ]


def test_function_timeline_series_and_variants(grouped):
    conn, ctx = grouped
    page = items.function_page(conn, ctx, Links(), "fe_removed")
    # variants compare with the baseline: "again" (v2) equals generic (v2), no Δ, though cloud (v1) differs
    assert cells(page) == [
        ("Regular", "1.0", "", "ok"),
        ("Regular", "2.0", "Δ", "absent"),
        ("Flavor", "generic", "", "absent"),
        ("Flavor", "cloud", "Δ", "ok"),
        ("Flavor", "again", "", "absent"),
    ]
    assert [c["anchor"] for c in page["strip"]] == ["g0-0", "g0-1", "g1-0", "g1-1", "g1-2"]
    assert [c["first"] for c in page["strip"]] == [True, False, True, False, False]
    assert page["strip"][1]["title"] == "2.0 (v2): Absent ⚠️ Δ"
    rows = [r for g in page["groups"] for r in g["rows"]]
    assert [(r["label"], r["status"], r["present"], r["changed"]) for r in rows] == [
        ("1.0", "✅", True, False),
        ("2.0", "Absent ⚠️", False, True),
        ("generic", "Absent ⚠️", False, False),
        ("cloud", "✅", True, True),
        ("again", "Absent ⚠️", False, False),
    ]
    assert rows[0]["prototype"] == "int fe_removed(int x);" and rows[0]["instances"]


def test_function_page_details(plain):
    conn, ctx = plain
    page = items.function_page(conn, ctx, Links(), "fe_helper")
    assert cells(page) == [("All builds", "v1", "DF", "F"), ("All builds", "v2", "DF", "F")]
    row = page["groups"][0]["rows"][0]
    assert row["status"] == "Duplicate, Full Inline ⚠️" and row["collision"] == classify.STATIC_DUPLICATION
    assert row["symbols"] == [] and len(row["instances"]) == 2
    assert {c["name"] for i in row["instances"] for c in i["inline_callers"]} == {"fe_entry_a", "fe_entry_b"}
    assert page["links"]["status"]["json"] == "/kernels/function_builds.json?name=fe_helper"
    missing = items.function_page(conn, ctx, Links(), "fe_ops")
    assert missing["found"] is False and missing["is_type"] is True


def test_struct_and_surface_pages(grouped, plain):
    conn, ctx = grouped
    page = items.struct_page(conn, ctx, Links(), "fe_ops")
    assert cells(page)[:2] == [("Regular", "1.0", "", "ok"), ("Regular", "2.0", "Δ", "ok")]
    sizes = [[d["size"] for d in r["definitions"]] for r in page["groups"][0]["rows"]]
    assert sizes == [[24], [32]] and page["kind"] == "struct"
    assert page["differences"][0]["pairs"] == [
        {
            "pair": (1, 2),  # build ids, as the timeline compares them: its Δ comes from here
            "a": "1.0",
            "b": "2.0",
            "computed": True,
            "changes": [
                {"kind": "struct", "change": "size changed", "detail": None, "old": "24", "new": "32"}
            ],
            "url": "/diff/v1/v2",
        }
    ]
    # variants generic (v2) -> cloud (v1): the pair is stored v1 -> v2 and shown that way round
    assert [(p["a"], p["b"], p["computed"]) for p in page["differences"][1]["pairs"]] == [
        ("cloud", "generic", True),
        ("generic", "again", False),
    ]
    conn, ctx = plain
    unknown = items.surface_page(conn, ctx, Links(), "tracepoint", "fe_nothing")
    assert unknown["found"] is False and unknown["known_kind"] is True
    assert items.surface_page(conn, ctx, Links(), "nope", "x")["known_kind"] is False


# --------------------------------------------------------------------------- matrix, summary, search, diff


def test_matrix_geometry(plain, grouped):
    conn, ctx = plain
    page = overview.matrix_page(conn, ctx, ["fe_helper", "fe_ops", "nope"])
    pic = page["picture"]
    # left margin from the longest name (9 characters), top from the longest label (2)
    assert (pic["left"], pic["width"], pic["height"]) == (83.5, 152, 98)
    assert [(h["x"], h["y"], h["label"]) for h in pic["heads"]] == [(102.5, 22, "v1"), (134.5, 22, "v2")]
    assert [r["y"] for r in pic["rows"]] == [28, 50, 72]
    assert [[(c["x"], c["fill"], c["letters"], c["ink"]) for c in r["cells"]] for r in pic["rows"]] == [
        [(83.5, "#d9534f", "DF", "#fff"), (115.5, "#d9534f", "DF", "#fff")],
        [(83.5, "#5cb85c", "", "#111"), (115.5, "#5cb85c", "Δ", "#111")],
        [(83.5, "#ececec", "", "#111"), (115.5, "#ececec", "", "#111")],
    ]
    assert [r.kind for r in page["rows"]] == ["function", "struct", None]
    conn, ctx = grouped  # a gap of 8 before each group's first column
    xs = [c["x"] for c in overview.matrix_page(conn, ctx, ["fe_ops"])["picture"]["rows"][0]["cells"]]
    assert [round(b - a, 1) for a, b in zip(xs, xs[1:])] == [32, 40, 32, 32]


def test_matrix_picture_of_no_rows():
    pic = charts.matrix_picture([charts.MatrixColumn("a", "build-a", True)], [])
    assert (pic["left"], pic["width"], pic["height"], pic["rows"]) == (46.0, 82, 25, [])


def test_summary_and_charts(plain):
    conn, ctx = plain
    page = overview.summary_page(conn, ctx, Links())
    v1, v2 = page["rows"]
    assert (v1.full, v2.full, v1.collisions, v1.duplicates, v1.transformed, v1.structs) == (1, 2, 1, 1, 1, 1)
    assert v1.plain == v1.functions - v1.full - v1.selective - v1.declared
    bar = page["chart"]["bars"][0]
    assert [p["title"] for p in bar["parts"]][2] == "v1: Full inline 1"
    assert bar["parts"][0]["x"] == 170 and bar["end"] == round(170 + sum(p["w"] for p in bar["parts"]) + 6, 1)
    assert page["bars"]["max"] == max(getattr(r, k) for r in (v1, v2) for k, _, _ in charts.BAR_SERIES)
    assert [c["label"] for c in v1.surfaces][:3] == ["kprobe ✓", "fentry ✓", "notrace"]
    assert v1.surfaces[1]["count"] == 0  # no BTF: nothing fentry-able
    assert page["links"]["json"] == "/kernels/builds_summary.json"


def test_search(plain):
    conn, ctx = plain
    page = overview.search_page(conn, ctx, Links(), "OPS")
    # the struct, and the kernel variable `struct fe_ops fe_default_ops` (tests/fixtures/frontend)
    assert [(r["name"], r["types"], r["functions"], r["variable"]) for r in page["results"]] == [
        ("fe_ops", ["struct"], 0, False),
        ("fe_default_ops", [], 0, True),
    ]
    page = overview.search_page(conn, ctx, Links(), "fe", limit=2)
    assert [r["name"] for r in page["results"]] == ["fe_map", "fe_ops"] and page["more"] is True
    assert page["indexed"] is True and page["builds"] == 2


def test_diff_page(grouped):
    conn, ctx = grouped
    page = diff.diff_page(conn, ctx, Links(), "v2", "v1", ChangeFilter(), 1)
    assert page["computed"] and page["reversed"] and page["total"] == 3
    assert [(g.item, g.total) for g in page["count_groups"]] == [("function", 2), ("struct", 1)]
    assert [(r["name"], r["old"]) for r in page["rows"]][:2] == [
        ("fe_map", None),
        ("fe_removed", "int fe_removed(int x);"),  # not stored: change_list joins it from build A
    ]
    page = diff.diff_page(conn, ctx, Links(), "v1", "v2", ChangeFilter(name="ops"), 1)
    assert page["total"] == 1 and page["links"]["json"].endswith("&name=ops")
    assert diff.page_number("x") == 1 and diff.page_number("-3") == 1 and diff.page_number("4") == 4


def test_check_form_and_report(plain):
    conn, _ = plain
    out, deps = check.check_form(
        "kprobe:fe_map\n# a comment\nstruct:fe_ops\nbogus", None, check.parse_objects([("x.o", b"not elf")])
    )
    assert [check.check.spec(d) for d in deps] == ["kprobe:fe_map", "struct:fe_ops"]
    assert len(out["errors"]) == 2 and "bogus" in out["errors"][1]
    assert out["link"] == "/check?deps=kprobe%3Afe_map%0Astruct%3Afe_ops" and out["objects"] == ["x.o"]
    report = check.check_report(conn, deps, None)
    assert report["heads"] == [{"group": "Other builds", "span": 2}]
    assert [r["url"] for r in report["rows"]] == ["/function/fe_map", "/struct/fe_ops"]
    assert report["counts"]["ok"] + report["counts"]["warn"] + report["counts"]["fail"] == 4


# --------------------------------------------------------------------------- forms


def test_multipart_of_a_real_body():
    request = httpx.Request(
        "POST",
        "http://localhost/check",
        data={"deps": "kprobe:vmap\nfentry:vfs_read", "group": "Regular"},
        files=[
            ("object", ("a.bpf.o", b"\x7fELF\r\n--not-a-boundary\r\n\x00")),
            ("object", ("b.bpf.o", b"second")),
            ("object", ("empty.o", b"")),
        ],
    )
    form = forms.multipart(request.headers["content-type"], request.read())
    assert forms.texts(form) == {"deps": "kprobe:vmap\nfentry:vfs_read", "group": "Regular"}
    assert forms.uploads(form) == [
        ("a.bpf.o", b"\x7fELF\r\n--not-a-boundary\r\n\x00"),
        ("b.bpf.o", b"second"),
        ("empty.o", b""),  # kept, for the check to say it is empty
    ]
    assert set(form) == {"deps", "group", "object", "object#2", "object#3"}
    assert forms.multipart("application/x-www-form-urlencoded", b"deps=x") == {}
    assert forms.too_large(str(forms.MAX_UPLOAD)) is None
    assert forms.too_large(str(forms.MAX_UPLOAD + 1)).startswith("upload too large")


# --------------------------------------------------------------------------- the status decision table


@pytest.mark.parametrize(
    "collision, inline, suffixes, line, cell",
    [
        (classify.UNIQUE_GLOBAL, classify.INLINE_NO, (), "✅", ("", "ok")),
        (classify.STATIC_DUPLICATION, classify.INLINE_FULL, (), "Duplicate, Full Inline ⚠️", ("DF", "F")),
        (classify.STATIC_STATIC, classify.INLINE_SELECTIVE, (), "Collision, Selective Inline ⚠️", ("CS", "C")),
        (
            classify.STATIC_GLOBAL,
            classify.DECLARED_ONLY,
            ("isra",),
            "Collision, Declared Only, Transformation ⚠️",
            ("COT", "O"),
        ),
        (
            classify.UNIQUE_STATIC,
            classify.INLINE_SELECTIVE,
            ("cold",),
            "Selective Inline, Transformation ⚠️",
            ("ST", "S"),
        ),
        (
            classify.STATIC_DUPLICATION,
            classify.INLINE_NO,
            ("part",),
            "Duplicate, Transformation ⚠️",
            ("DT", "D"),
        ),
        (None, None, ("constprop",), "Transformation ⚠️", ("T", "T")),
    ],
)
def test_status_table(collision, inline, suffixes, line, cell):
    assert classify.status_line(collision, inline, suffixes) == line
    assert classify.build_status(collision, inline, suffixes, True, True) == line
    assert classify.strip_cell(collision, inline, suffixes, True, True) == cell


def test_status_without_dwarf_or_absent():
    assert (
        classify.build_status("x", classify.INLINE_FULL, (), True, False) == "✅ (no DWARF: inlining unknown)"
    )
    assert classify.strip_cell("x", classify.INLINE_FULL, ("isra",), True, False) == ("?T", "nodwarf")
    assert (
        classify.build_status(None, None, (), False, False)
        == "not in BTF or symbols (no DWARF: inlining unknown)"
    )
    assert classify.build_status(None, None, (), False, True) == "Absent ⚠️"
    assert classify.strip_cell(None, None, (), False, True) == ("", "absent")
