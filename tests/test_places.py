"""Where a function lives when it lives in several modules, the Δ marks and the
Differences section from one source, and the URLs users type (redirects, and
404s that suggest close names). docs/concepts.md#modules, docs/serving.md.

Fixtures: tests/fixtures/places/*.c compiled at test time (`gcc -c -g -O2
-pg -mfentry -mrecord-mcount`, then `ld -r` as kbuild links a module): kvm.ko
(kvm_main.c, kvm_util.c) and kvm-intel.ko (vmx.c, depends=kvm), over the
fixture program as vmlinux. From the C source and `readelf -s`:

- memslots_of, a static inline of slots.h: inlined in kvm_vcpu_memslots and
  kvm_util_slots (kvm.ko: 2 instances, no symbol) and in vmx_only, with an
  out-of-line copy in kvm-intel.ko (its address is taken: `memslots_of`
  LOCAL FUNC, the only symbol of the name);
- twin_helper: a static of kvm_main.c and another of vmx.c, a symbol in each;
- vmx_only: kvm-intel.ko's alone.

Three builds of one series: A (kvm-intel.ko first by path, as
arch/x86/kvm/kvm-intel.ko sorts before kvm.ko), B (the same modules, kvm.ko
first by path: twin_helper's home moves to kvm, which the stored diff does not
call a change since kvm_intel still holds it), C (no kvm-intel.ko: vmx_only
removed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest import db, pipeline
from ingest.bpf import check
from ingest.changes import diff
from ingest.web import items
from ingest.web.context import Links, load_context
from tests.support import FIXTURES
from tests.support.kernel import REAL_KERNEL, module_subset
from tests.support.modules import link_module
from tests.support.programs import compile_program
from tests.support.site import Site

SRC = FIXTURES / "places"
FLAGS = ["-g", "-O2", "-fno-pic", "-mcmodel=kernel", "-pg", "-mfentry", "-mrecord-mcount"]
LAYOUTS = {
    "A": {"kvm": "arch/x86/kvm/kvm.ko", "kvm_intel": "arch/x86/kvm/kvm-intel.ko"},
    "B": {"kvm": "a/kvm.ko", "kvm_intel": "b/kvm-intel.ko"},
    "C": {"kvm": "arch/x86/kvm/kvm.ko"},
}


def _modules(dest: Path) -> dict[str, Path]:
    return {
        name: link_module(dest / f"{name}.ko", [SRC / s for s in sources], FLAGS)
        for name, sources in (("kvm", ["kvm_main.c", "kvm_util.c"]), ("kvm_intel", ["vmx.c"]))
    }


@pytest.fixture(scope="module")
def places_db(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("places")
    kos = _modules(tmp)
    path = tmp / "kernels.db"
    for label, variant in (("A", "dwarf4"), ("B", "dwarf5"), ("C", "zlib")):
        work = tmp / label
        tree = work / "kernel"
        for name, rel in LAYOUTS[label].items():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(kos[name], tree / rel)
        program = compile_program(work, variant)
        pipeline.ingest(program, path, pipeline.Identity(label=label), jobs=1, modules=tree)
    conn = db.connect(path)
    db.store_groups(conn, [("Regular", "series", [(1, "6.1"), (2, "6.12"), (3, "6.13")])])
    diff.compute_group_diffs(conn)
    db.build_search_index(conn)
    conn.commit()
    conn.close()
    return path


def _cells(path: Path, deps: list[str]) -> dict[str, list[tuple[str, str]]]:
    report = check.check_objects(path, dep_texts=deps)
    return {
        check.spec(d): [(c.level, c.text) for c in row] for d, row in zip(report.dependencies, report.cells)
    }


def _page(path: Path, name: str) -> dict:
    conn = db.connect(path)
    try:
        return items.function_page(conn, load_context(conn), Links(lambda q, f: f"/{q}"), name)
    finally:
        conn.close()


def _rows(page: dict) -> dict[str, dict]:
    return {r["label"]: r for g in page["groups"] for r in g["rows"]}


def test_the_page_names_every_module(places_db):
    rows = _rows(_page(places_db, "memslots_of"))
    # kvm: 2 inlined instances (kvm_main.c, kvm_util.c); kvm_intel: vmx.c's, and its symbol
    assert rows["6.1"]["status"].endswith(" · in modules kvm, kvm_intel")
    assert [(m["module"], m["instances"], m["symbols"], m["exact"]) for m in rows["6.1"]["modules"]] == [
        ("kvm", 2, 0, False),
        ("kvm_intel", 1, 1, True),
    ]
    assert rows["6.1"]["module"] == "kvm_intel"  # its attachability: the module with the symbol
    # 6.13 has no kvm-intel.ko: kvm alone, and no symbol left (Full inline)
    assert rows["6.13"]["status"] == "Duplicate, Full Inline ⚠️ · in module kvm"
    # one module: as before
    assert _rows(_page(places_db, "vmx_only"))["6.1"]["status"].endswith(" · in module kvm_intel")


def test_check_says_which_module_to_load_for_which_copy(places_db):
    got = _cells(
        places_db,
        ["kprobe:memslots_of", "kprobe:twin_helper", "function:twin_helper", "kprobe:vmx_only"],
    )
    a = 0  # build A
    # the only symbol is kvm_intel's: that module, and its chain (depends=kvm)
    assert got["kprobe:memslots_of"][a] == (
        "warn",
        "ambiguous: Static Duplication; in module kvm_intel (must be loaded: kvm_intel, kvm); no symbol of that name in kvm",
    )
    twins = (
        "in modules kvm, kvm_intel (must be loaded: kvm for kvm's copy; kvm_intel, kvm for kvm_intel's copy)"
    )
    assert got["kprobe:twin_helper"][a] == ("warn", f"ambiguous: Static-Static Collision; {twins}")
    assert got["function:twin_helper"][a] == ("warn", f"ambiguous: Static-Static Collision; {twins}")
    assert got["kprobe:vmx_only"][a] == ("ok", "in module kvm_intel (must be loaded: kvm_intel, kvm)")
    # C: kvm.ko alone, whose copy of memslots_of is inlined: no symbol to probe
    assert got["kprobe:memslots_of"][2][0] == "fail"


def test_delta_and_differences_agree(places_db):
    page = _page(places_db, "twin_helper")
    rows = _rows(page)
    # B moved twin_helper's home from kvm_intel to kvm (path order): the stored diff of
    # 6.1 -> 6.12 has no change of it (kvm_intel still holds its copy), so no Δ either
    ((pairs,),) = [[g["pairs"] for g in page["differences"]]]
    by_pair = {(p["a"], p["b"]): p for p in pairs}
    assert by_pair[("6.1", "6.12")]["computed"] and by_pair[("6.1", "6.12")]["changes"] == []
    assert rows["6.1"]["module"] == "kvm_intel" and rows["6.12"]["module"] == "kvm"
    assert rows["6.12"]["changed"] is False
    # 6.13 lost kvm_intel's copy: a change stored, and the Δ
    assert by_pair[("6.12", "6.13")]["changes"] and rows["6.13"]["changed"] is True
    for row in rows.values():
        pair = next(p for p in pairs if p["b"] == row["label"]) if row["label"] != "6.1" else None
        assert row["changed"] == bool(pair and pair["changes"])


@pytest.fixture(scope="module")
def site(places_db):
    s = Site(places_db)
    yield s
    s.close()


@pytest.mark.parametrize(
    ("url", "target"),
    [("/diff/6.1/6.12", "/diff/A/B"), ("/diff/6.12/C", "/diff/B/C"), ("/diff/6.1/6.12?item=function", None)],
)
def test_diff_labels_redirect(site, url, target):
    response = site.get(url, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == (target or "/diff/A/B?item=function")
    assert site.get(url).status_code == 200


def test_unknown_diff_stays_404(site):
    response = site.get("/diff/6.1/7.0", follow_redirects=False)
    assert response.status_code == 404 and "<code>A</code>" in response.text


def test_404_suggests_close_names(site):
    response = site.get("/function/memslot_of")
    assert response.status_code == 404
    assert '<a href="/function/memslots_of"><code>memslots_of</code></a>' in response.text
    response = site.get("/module/kvm_intl")
    assert response.status_code == 404 and '<a href="/module/kvm_intel">' in response.text


# --------------------------------------------------------------------------- the real 6.1 image


@pytest.fixture(scope="module")
def kvm_db(tmp_path_factory) -> Path:
    """6.1.0-56's vmlinux with kvm.ko, kvm-intel.ko, kvm-amd.ko and irqbypass.ko of its package."""
    tree = module_subset(
        tmp_path_factory.mktemp("kvm-tree"),
        (
            "arch/x86/kvm/kvm.ko",
            "arch/x86/kvm/kvm-intel.ko",
            "arch/x86/kvm/kvm-amd.ko",
            "virt/lib/irqbypass.ko",
        ),
    )
    path = tmp_path_factory.mktemp("kvm-db") / "k.db"
    pipeline.ingest(REAL_KERNEL, path, pipeline.Identity(distro="debian"), modules=tree)
    return path


@pytest.mark.slow
@pytest.mark.real_kernel
def test_real_kvm_copies(kvm_db):
    # readelf -sW: kvm-intel.ko has `kvm_register_read_raw` (FUNC LOCAL), kvm-amd.ko only
    # `kvm_register_read_raw.constprop.0`, kvm.ko none (inlined, arch/x86/kvm/kvm_cache_regs.h);
    # trace_kvm_nested_vmenter_failed: a symbol in kvm-intel.ko, inlined in kvm-amd.ko.
    # .modinfo: kvm depends=irqbypass, kvm-intel depends=kvm, kvm-amd depends=kvm,ccp
    got = _cells(
        kvm_db,
        [
            "kprobe:kvm_register_read_raw",
            "kprobe:trace_kvm_nested_vmenter_failed",
            "function:kvm_register_read_raw",
        ],
    )
    assert got["kprobe:kvm_register_read_raw"] == [
        (
            "warn",
            "ambiguous: Static Duplication; in module kvm_intel (must be loaded: kvm_intel, kvm, irqbypass);"
            " no symbol of that name in kvm, kvm_amd",
        )
    ]
    assert got["kprobe:trace_kvm_nested_vmenter_failed"][0][1].endswith(
        "in module kvm_intel (must be loaded: kvm_intel, kvm, irqbypass); no symbol of that name in kvm_amd"
    )
    assert got["function:kvm_register_read_raw"][0][1].endswith(
        "in modules kvm, kvm_amd, kvm_intel (must be loaded: kvm, irqbypass for kvm's copy;"
        " kvm_amd, kvm, ccp, irqbypass for kvm_amd's copy; kvm_intel, kvm, irqbypass for kvm_intel's copy)"
    )
    (row,) = _rows(_page(kvm_db, "kvm_register_read_raw")).values()
    assert row["status"].endswith(" · in modules kvm, kvm_amd, kvm_intel") and row["module"] == "kvm_intel"
    # __kvm_memslots (include/linux/kvm_host.h): all 9 instances in kvm.ko on 6.1, inlined
    (row,) = _rows(_page(kvm_db, "__kvm_memslots")).values()
    assert row["status"].endswith("Full Inline ⚠️ · in module kvm")


@pytest.mark.slow
@pytest.mark.real_kernel
def test_real_tracepoint_spellings(kvm_db):
    conn = db.connect(kvm_db)
    db.build_search_index(conn)
    conn.commit()
    conn.close()
    site = Site(kvm_db)
    try:
        # kvm_exit: a trace event of kvm.ko, system "kvm" (its _ftrace_events)
        for url in ("/tracepoint/kvm:kvm_exit", "/tracepoint/kvm/kvm_exit"):
            response = site.get(url, follow_redirects=False)
            assert (response.status_code, response.headers["location"]) == (302, "/tracepoint/kvm_exit")
        assert "in module kvm" in site.get("/tracepoint/kvm_exit").text
        response = site.get("/tracepoint/kvm_exti")
        assert response.status_code == 404 and '<a href="/tracepoint/kvm_exit">' in response.text
        response = site.get("/function/__kvm_memslot")
        assert response.status_code == 404 and '<a href="/function/__kvm_memslots">' in response.text
    finally:
        site.close()
