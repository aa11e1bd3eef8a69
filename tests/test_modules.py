"""Loadable modules as part of a build (docs/concepts.md#modules): the
module-like fixtures of tests/test_modules_readers.py (gcc -c -g -O2, then
ld -r; tests/fixtures/modules) in a tree beside the fixture program as the
"vmlinux", ingested by the real pipeline. Expected rows come from the C
source; real modules of Debian's 6.1.0-56 package at the end."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import pipeline
from ingest.bpf import check
from ingest.cli import cli
from tests.support import FIXTURES
from tests.support.kernel import REAL_KERNEL, module_subset, real_module
from tests.support.modules import build_modules
from tests.support.programs import compile_bpf, compile_program


def _tree(tmp: Path, modules: dict[str, Path]) -> Path:
    """lib/modules/<release>/kernel-like tree: a/alpha.ko, b/beta.ko (path order: alpha first)."""
    tree = tmp / "kernel"
    for sub, name in (("a", "alpha"), ("b", "beta")):
        (tree / sub).mkdir(parents=True)
        shutil.copy(modules[name], tree / sub / f"{name}.ko")
    return tree


@pytest.fixture(scope="module")
def fixture_modules(tmp_path_factory) -> dict[str, Path]:
    return build_modules("amd64", tmp_path_factory.mktemp("kos"))


@pytest.fixture(scope="module")
def module_db(tmp_path_factory, fixture_modules) -> Path:
    tmp = tmp_path_factory.mktemp("moddb")
    program = compile_program(tmp, "dwarf5")
    tree = _tree(tmp, fixture_modules)
    (tree / "c").mkdir()
    (tree / "c" / "broken.ko").write_bytes(fixture_modules["beta"].read_bytes()[:3000])  # truncated
    path = tmp / "kernels.db"
    pipeline.ingest(program, path, pipeline.Identity(label="fixture"), jobs=1, modules=tree)
    return path


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_the_modules_table(module_db):
    got = rows(
        module_db,
        "SELECT n.name, m.path, m.license, m.description, m.depends, m.vermagic, m.error IS NULL"
        " FROM modules m JOIN names n ON n.id = m.name_id ORDER BY m.path",
    )
    # .modinfo of alpha_main.c and beta_main.c; broken.ko is cut at byte 3000
    assert got == [
        ("alpha", "a/alpha.ko", "GPL", "alpha fixture", "beta,gamma", "6.1.0-test SMP mod_unload", 1),
        ("beta", "b/beta.ko", "Dual MIT/GPL", None, None, "6.1.0-test SMP mod_unload", 1),
        ("broken", "c/broken.ko", None, None, None, None, 0),
    ]
    (error,) = rows(module_db, "SELECT error FROM modules WHERE path = 'c/broken.ko'")[0]
    assert "truncated" in error
    assert rows(module_db, "SELECT n_modules FROM builds") == [(3,)]


def test_every_stored_reference_resolves(module_db, tmp_path, fixture_modules):
    """store_build inserts with foreign keys unchecked (ingest.db.store._foreign_keys_unchecked):
    every reference it wrote must still find its row, also after a --replace."""
    assert rows(module_db, "PRAGMA foreign_key_check") == []
    copy = tmp_path / "copy.db"
    shutil.copy(module_db, copy)
    program = compile_program(tmp_path, "dwarf5")
    tree = _tree(tmp_path, fixture_modules)
    for replace in (False, True):  # a second build, then that build again in place
        pipeline.ingest(
            program, copy, pipeline.Identity(label="again"), replace=replace, jobs=1, modules=tree
        )
    assert rows(copy, "SELECT count(*) FROM builds") == [(2,)]
    assert rows(copy, "PRAGMA foreign_key_check") == []
    assert rows(copy, "PRAGMA foreign_keys") == [(0,)]  # a fresh connection: SQLite's default


def test_module_functions_are_tagged(module_db):
    got = dict(
        rows(
            module_db,
            "SELECT n.name, coalesce(mn.name, 'vmlinux') FROM functions f JOIN names n ON n.id = f.name_id"
            " LEFT JOIN modules m ON m.id = f.module_id LEFT JOIN names mn ON mn.id = m.name_id",
        )
    )
    # alpha_main.c / alpha_util.c define alpha_entry, alpha_util, alpha_twice, alpha_init;
    # beta_main.c beta_entry; the program's own functions stay in vmlinux
    assert {k: got[k] for k in ("alpha_entry", "alpha_util", "alpha_twice", "beta_entry", "entry_a")} == {
        "alpha_entry": "alpha",
        "alpha_util": "alpha",
        "alpha_twice": "alpha",
        "beta_entry": "beta",
        "entry_a": "vmlinux",
    }
    # instances and symbols carry their module; nothing of broken.ko is stored
    per_module = rows(
        module_db,
        "SELECT n.name, count(DISTINCT i.id), count(DISTINCT s.id) FROM modules m JOIN names n ON n.id = m.name_id"
        " LEFT JOIN instances i ON i.module_id = m.id LEFT JOIN symbols s ON s.module_id = m.id GROUP BY m.id"
        " ORDER BY m.path",
    )
    assert [name for name, *_ in per_module] == ["alpha", "beta", "broken"]
    assert per_module[2][1:] == (0, 0)
    assert all(i > 0 and s > 0 for _, i, s in per_module[:2])


def test_a_static_name_in_two_modules(module_db):
    # shared_helper: static in alpha_main.c and in beta_main.c, two functions of two modules
    ((collision, n_instances, module),) = rows(
        module_db,
        "SELECT f.collision, f.n_instances, mn.name FROM functions f JOIN names n ON n.id = f.name_id"
        " JOIN modules m ON m.id = f.module_id JOIN names mn ON mn.id = m.name_id WHERE n.name = 'shared_helper'",
    )
    assert (collision, n_instances, module) == ("Static-Static Collision", 2, "alpha")  # first by path
    got = rows(
        module_db,
        "SELECT mn.name, p.path FROM instances i JOIN names n ON n.id = i.name_id JOIN modules m ON m.id = i.module_id"
        " JOIN names mn ON mn.id = m.name_id JOIN paths p ON p.id = i.cu_path_id WHERE n.name = 'shared_helper'"
        " ORDER BY 1",
    )
    assert [m for m, _ in got] == ["alpha", "beta"]
    assert got[0][1].endswith("alpha_main.c") and got[1][1].endswith("beta_main.c")


def test_check_says_the_module_and_its_chain(module_db):
    report = check.check_objects(
        module_db,
        dep_texts=["kprobe:alpha_entry", "kprobe:shared_helper", "kprobe:entry_a", "kprobe:nowhere"],
    )
    got = {
        check.spec(d): (row[0].level, row[0].text, row[0].reason)
        for d, row in zip(report.dependencies, report.cells)
    }
    assert got["kprobe:alpha_entry"] == ("ok", "in module alpha (must be loaded: alpha, beta, gamma)", "ok")
    # shared_helper: a static symbol in alpha.ko and one in beta.ko: which to load for which copy
    assert got["kprobe:shared_helper"] == (
        "warn",
        "ambiguous: Static-Static Collision; in modules alpha, beta"
        " (must be loaded: alpha, beta, gamma for alpha's copy; beta for beta's copy)",
        "ambiguous",
    )
    assert got["kprobe:entry_a"][0] == "ok" and "module" not in got["kprobe:entry_a"][1]
    assert got["kprobe:nowhere"][2] == "absent_everywhere"


def test_vermagic_of_another_kernel_is_unreadable(tmp_path, fixture_modules):
    program = compile_program(tmp_path, "dwarf5")
    tree = _tree(tmp_path, fixture_modules)
    beta = tree / "b" / "beta.ko"
    beta.write_bytes(beta.read_bytes().replace(b"vermagic=6.1.0-test", b"vermagic=6.1.0-tesX"))
    path = tmp_path / "k.db"
    pipeline.ingest(program, path, pipeline.Identity(release="6.1.0-test"), jobs=1, modules=tree)
    got = rows(path, "SELECT path, error FROM modules ORDER BY path")
    assert got[0] == ("a/alpha.ko", None)
    assert (
        got[1][0] == "b/beta.ko"
        and "vermagic '6.1.0-tesX' is not the image's release '6.1.0-test'" in got[1][1]
    )


def test_cli_modules_option(tmp_path, fixture_modules):
    program = compile_program(tmp_path, "dwarf5")
    tree = _tree(tmp_path, fixture_modules)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["ingest", str(program), "--db", str(tmp_path / "a.db"), "--modules", str(tree)]
    )
    assert result.exit_code == 0, result.output
    assert ", 2 modules in " in result.output
    result = runner.invoke(cli, ["ingest", str(program), "--db", str(tmp_path / "b.db"), "--modules", "none"])
    assert result.exit_code == 0 and " modules in " not in result.output
    assert rows(tmp_path / "b.db", "SELECT n_modules FROM builds") == [(None,)]
    bad = runner.invoke(
        cli, ["ingest", str(program), "--db", str(tmp_path / "c.db"), "--modules", str(tmp_path / "x")]
    )
    assert bad.exit_code == 1 and "not a directory" in bad.output
    assert not (tmp_path / "c.db").exists()


# --------------------------------------------------------------------------- real modules


@pytest.fixture(scope="module")
def real_db(tmp_path_factory) -> Path:
    """6.1.0-56's vmlinux with five real modules of its package (and what they depend on)."""
    tree = module_subset(
        tmp_path_factory.mktemp("real-tree"),
        (
            "fs/ext4/ext4.ko",
            "fs/jbd2/jbd2.ko",
            "fs/mbcache.ko",
            "lib/crc16.ko",
            "fs/xfs/xfs.ko",
            "arch/x86/kvm/kvm.ko",
            "virt/lib/irqbypass.ko",
            "drivers/md/md-mod.ko",
            "drivers/vfio/vfio_iommu_type1.ko",
            "drivers/vfio/vfio.ko",
            # kfuncs in a module (tests/test_kfuncs_modules.py); depends=nf_defrag_ipv4,nf_defrag_ipv6,libcrc32c
            "net/netfilter/nf_conntrack.ko",
            "net/ipv4/netfilter/nf_defrag_ipv4.ko",
            "net/ipv6/netfilter/nf_defrag_ipv6.ko",
            "lib/libcrc32c.ko",
        ),
    )
    path = tmp_path_factory.mktemp("real-db") / "k.db"
    pipeline.ingest(REAL_KERNEL, path, pipeline.Identity(distro="debian"), modules=tree)
    return path


@pytest.mark.slow
@pytest.mark.real_kernel
def test_real_dependencies_in_modules(real_db):
    report = check.check_objects(
        real_db,
        dep_texts=[
            "kprobe:ext4_file_write_iter",
            "fentry:xfs_file_fsync",
            "tracepoint:kvm/kvm_exit",
            "fentry:md_flush_request",
        ],
    )
    got = {check.spec(d): (row[0].level, row[0].text) for d, row in zip(report.dependencies, report.cells)}
    # the path the package ships, whether the tree holds .ko or the cache's .ko.zst
    assert ("fs/ext4/ext4.ko",) in rows(real_db, "SELECT path FROM modules")
    # ext4.ko: depends=jbd2,mbcache,crc16 (readelf -p .modinfo); jbd2 depends on nothing more
    assert got["kprobe:ext4_file_write_iter"] == (
        "ok",
        "in module ext4 (must be loaded: ext4, jbd2, mbcache, crc16)",
    )
    assert got["fentry:xfs_file_fsync"][0] == "ok" and got["fentry:xfs_file_fsync"][1].startswith(
        "in module xfs"
    )
    assert got["tracepoint:kvm/kvm_exit"] == ("ok", "in module kvm (must be loaded: kvm, irqbypass)")
    assert got["fentry:md_flush_request"][1].startswith("in module md_mod")


@pytest.mark.slow
@pytest.mark.real_kernel
def test_real_kfuncs_of_a_module(real_db, tmp_path):
    """A program calling nf_conntrack.ko's kfuncs (tests/fixtures/check/conntrack.bpf.c;
    the module's set8 members are verified in tests/test_kfuncs_modules.py)."""

    obj = compile_bpf(FIXTURES / "check" / "conntrack.bpf.c", tmp_path / "conntrack.o")
    report = check.check_objects(real_db, [obj], dep_texts=["kfunc:bpf_lookup_user_key"])
    got = {check.spec(d): (row[0].level, row[0].text) for d, row in zip(report.dependencies, report.cells)}
    assert got["kfunc:bpf_lookup_user_key"] == ("ok", "ok")  # vmlinux's key_sig_kfunc_set
    chain = "in module nf_conntrack (must be loaded: nf_conntrack, nf_defrag_ipv4, nf_defrag_ipv6, libcrc32c)"
    assert got["kfunc:bpf_skb_ct_lookup"] == ("ok", chain)
    assert got["kfunc:bpf_ct_release"] == ("ok", chain)
    level, text = got["kfunc:bpf_no_such_kfunc"]
    assert level == "fail" and text.startswith("absent (not a kfunc of vmlinux or its ")
    # vmlinux's own kfuncs stay vmlinux's; the module's are tagged
    assert rows(real_db, "SELECT module FROM kfunc_list WHERE name = 'bpf_lookup_user_key'") == [(None,)]
    assert rows(real_db, "SELECT module FROM kfunc_list WHERE name = 'bpf_xdp_ct_lookup'") == [
        ("nf_conntrack",)
    ]


@pytest.mark.slow
@pytest.mark.real_kernel
def test_real_symbols_and_events_equal_the_modules(real_db):
    for name, rel in (("ext4", "fs/ext4/ext4.ko"), ("kvm", "arch/x86/kvm/kvm.ko"), ("xfs", "fs/xfs/xfs.ko")):
        out = subprocess.run(
            ["readelf", "-sW", str(real_module(rel))], capture_output=True, text=True, check=True
        ).stdout
        funcs = {
            f[7]
            for f in (line.split() for line in out.splitlines())
            if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND" and not f[7].startswith("__pfx_")
        }
        stored = {
            n
            for (n,) in rows(
                real_db,
                "SELECT n.name FROM symbols s JOIN names n ON n.id = s.name_id JOIN modules m ON m.id = s.module_id"
                f" JOIN names mn ON mn.id = m.name_id WHERE mn.name = '{name}'",
            )
        }
        assert stored == funcs, name
        # one pointer per trace event in _ftrace_events (readelf -SW: its size / 8)
        sections = subprocess.run(
            ["readelf", "-SW", str(real_module(rel))], capture_output=True, text=True
        ).stdout
        size = next(int(line.split()[5], 16) for line in sections.splitlines() if " _ftrace_events " in line)
        (events,) = rows(
            real_db,
            "SELECT count(*) FROM tracepoints t JOIN modules m ON m.id = t.module_id JOIN names mn ON mn.id = m.name_id"
            f" WHERE mn.name = '{name}' AND t.system IS NOT NULL",
        )[0]
        assert events == size // 8, name


@pytest.mark.real_kernel
def test_skipping_type_dies_keeps_instances_and_callers():
    """A walk that skips type DIEs (WalkConfig.want_types False: scripts/bench_walk.py's
    floor) finds exactly the functions and call sites of the walk with types (ext4.ko)."""
    from ingest.readers import dwarf, kmod

    module = kmod.open_module(real_module("fs/ext4/ext4.ko"), base=0xFFFFFFFFC0000000)
    names = [n for n in (".debug_info", ".debug_abbrev", ".debug_str", ".debug_line", ".debug_line_str")]
    sections = module.linked.relocate([n for n in names if module.image.has(n)])
    units = dwarf.units_from_bytes(sections[".debug_info"], module.image.endian)

    def walk(want_types: bool) -> tuple[list, list]:
        config = dwarf.WalkConfig(frozenset(), False, want_types)
        facts = list(dwarf.walk(units, sections, module.image.endian, config, jobs=1))
        return [s for u in facts for s in u.subs], [e for u in facts for e in u.edges]

    full, skipped = walk(True), walk(False)
    assert len(full[0]) > 5000 and len(full[1]) > 10000
    assert skipped == full


def _damage(path: Path, section: str, how: str) -> None:
    """Overwrite part of `section` of the ELF file at `path` in place."""
    from elftools.elf.elffile import ELFFile

    data = bytearray(path.read_bytes())
    with open(path, "rb") as f:
        sec = ELFFile(f).get_section_by_name(section)
        offset, size = sec["sh_offset"], sec["sh_size"]
    if how == "flip":  # the first unit header: an impossible length and version
        data[offset : offset + 16] = b"\xff" * 16
    else:  # every relocation names a symbol the table does not have
        for k in range(offset, offset + size, 24):
            data[k + 12 : k + 16] = b"\xff\xff\xff\x7f"  # Elf64_Rela.r_info, high half: the symbol index
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "section, how, why",
    [(".debug_info", "flip", "unit"), (".rela.debug_info", "symbols", "symbol")],
)
def test_a_corrupt_module_does_not_sink_the_build(tmp_path, fixture_modules, section, how, why):
    program = compile_program(tmp_path, "dwarf5")
    tree = _tree(tmp_path, fixture_modules)
    _damage(tree / "b" / "beta.ko", section, how)
    result = CliRunner().invoke(
        cli, ["ingest", str(program), "--db", str(tmp_path / "k.db"), "--modules", str(tree), "-j", "1"]
    )
    assert result.exit_code == 0, result.output
    warning = next(
        line for line in result.output.splitlines() if line.startswith("warning: module b/beta.ko")
    )
    assert "unreadable" in warning and why in warning
    got = rows(tmp_path / "k.db", "SELECT path, error IS NULL FROM modules ORDER BY path")
    assert got == [("a/alpha.ko", 1), ("b/beta.ko", 0)]
    # nothing of beta is kept: no instance, symbol or function lives there
    assert rows(
        tmp_path / "k.db",
        "SELECT count(*) FROM functions f JOIN names n ON n.id = f.name_id WHERE n.name = 'beta_entry'",
    ) == [(0,)]


def test_facts_cross_from_a_worker_unchanged(fixture_modules, tmp_path):
    """Workers send a module's facts packed as plain tuples; unpacked, they are the same facts."""
    from ingest.modules import module as modules
    from ingest.modules import tree

    context = modules.TreeContext(release=None, arch="amd64", btf=None, layouts=[])
    facts = modules.read_module(fixture_modules["alpha"], "a/alpha.ko", context)
    assert facts.part.instances and facts.part.calls and facts.symbols and facts.part.prototypes
    again = tree._unpacked(tree._packed(facts, context.channel), context.channel)
    assert again.part.instances == facts.part.instances
    assert again.part.calls == facts.part.calls
    assert again.part.prototypes == facts.part.prototypes  # DWARF's: gcc wrote no BTF
    assert again.symbols == facts.symbols
    assert again.prototypes == facts.prototypes and again.tracepoints == facts.tracepoints
    assert again.module == facts.module
