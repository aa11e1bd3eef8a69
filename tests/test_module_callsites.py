"""A module's ftrace call sites, read from the table its build's module loader
reads (FTRACE_CALLSITE_SECTION): `__patchable_function_entries` with
CONFIG_FTRACE_MCOUNT_USE_PATCHABLE_FUNCTION_ENTRY (Debian's arm64), else
`__mcount_loc` (ingest/surfaces/attach.py, docs/concepts.md#attachability).

Fixtures: tests/fixtures/callsites/callsites.c compiled at test time (`gcc -c
-O2`, then `ld -r` as kbuild links a module) for aarch64 with
`-fpatchable-function-entry=4,2` (arm64's CALL_OPS: 2 NOPs before the entry,
the record points at func-8) and for x86-64 with both `-mrecord-mcount` and
`-fpatchable-function-entry=16,16` (x86's CONFIG_CALL_PADDING). The oracle is
`readelf -r` of each table: every record is `section + addend`, owned by the
function starting at most the pre-entry bytes after it. Then the real arm64
xfs.ko of Debian's 6.12.113 package against `readelf -r` of its
`__patchable_function_entries`.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from ingest import pipeline
from ingest.bpf import check
from ingest.modules.module import MODULE_BASE
from ingest.readers import kmod
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces import attach
from ingest.surfaces.kconfig import read_config

SRC = Path(__file__).parent / "fixtures" / "callsites" / "callsites.c"
ARM64_VMLINUX = (
    Path.home() / ".cache/kernsurf/debian/linux-image-6.12.113+deb13-arm64-dbg_6.12.113-1_arm64/vmlinux"
)
AMD64_VMLINUX = Path.home() / ".cache/kernsurf/debian/linux-image-6.1.0-56-amd64-dbg_6.1.192-2_amd64/vmlinux"

#: What the C source says: traced_entry, traced_static and traced_caller are
#: instrumented; notrace_helper is `notrace`; callsites_init is in .init.text,
#: which the kernel frees (with its ftrace records) once the module is loaded.
TRACED = {"traced_entry", "traced_static", "traced_caller"}
FUNCTIONS = TRACED | {"notrace_helper", "callsites_init"}


def _compile(dest: Path, cc: str, ld: str, flags: list[str]) -> Path:
    if shutil.which(cc) is None or shutil.which(ld) is None:
        pytest.skip(f"{cc} / {ld} not installed")
    obj, ko = dest / f"{cc}.o", dest / f"{cc}.ko"
    subprocess.run([cc, "-c", "-O2", *flags, "-o", obj, SRC], check=True)
    subprocess.run([ld, "-r", "-o", ko, obj], check=True)
    return ko


@pytest.fixture(scope="module")
def arm64_ko(tmp_path_factory) -> Path:
    flags = ["-DPATCHABLE", "-fpatchable-function-entry=4,2"]
    return _compile(tmp_path_factory.mktemp("a64"), "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ld", flags)


@pytest.fixture(scope="module")
def amd64_ko(tmp_path_factory) -> Path:
    flags = ["-fno-pic", "-mcmodel=kernel", "-pg", "-mfentry", "-mrecord-mcount"]
    flags.append("-fpatchable-function-entry=16,16")
    return _compile(tmp_path_factory.mktemp("x64"), "gcc", "ld", flags)


def readelf_owners(ko: Path, table: str, pre_entry: int) -> set[str]:
    """Functions owning a record of `table` by `readelf -r` and `readelf -s`:
    the record `section + addend` lies in the function or at most
    `pre_entry` bytes before its start."""
    syms = subprocess.run(["readelf", "-sW", ko], capture_output=True, text=True, check=True).stdout
    heads = subprocess.run(["readelf", "-SW", ko], capture_output=True, text=True, check=True).stdout
    sections = {}
    for line in heads.splitlines():
        if line.lstrip().startswith("[") and "]" in line:
            number, rest = line.split("[", 1)[1].split("]", 1)
            if rest.split():
                sections[rest.split()[0]] = number.strip()
    funcs: dict[str, list[tuple[int, int, str]]] = {}
    named: dict[str, tuple[str, int]] = {}  # symbol -> (section number, value)
    for line in syms.splitlines():
        f = line.split()
        if len(f) == 8 and f[6].isdigit():
            named.setdefault(f[7], (f[6], int(f[1], 16)))
            if f[3] == "FUNC":
                funcs.setdefault(f[6], []).append((int(f[1], 16), int(f[2]), f[7]))
    relocs = subprocess.run(["readelf", "-rW", ko], capture_output=True, text=True, check=True).stdout
    owners, inside = set(), False
    for line in relocs.splitlines():
        if line.startswith("Relocation section"):
            inside = f"'.rela{table}'" in line
            continue
        f = line.split()
        if not inside or len(f) < 7 or f[-2] != "+" or f[0] == "Offset":
            continue
        # against a section symbol (".text + 20") or a named one ("xfs_foo + 0")
        section, addend = sections.get(f[-3]), int(f[-1], 16)
        if section is None and f[-3] in named:
            section, value = named[f[-3]]
            addend += value
        for value, size, name in funcs.get(section or "", []):
            if value - pre_entry <= addend < value + max(size, 1):
                owners.add(name)
                break
    return owners


def readelf_functions_in(ko: Path, prefix: str) -> set[str]:
    """Names of the FUNC symbols of the sections whose names start with `prefix` (readelf -sW, -SW)."""
    heads = subprocess.run(["readelf", "-SW", ko], capture_output=True, text=True, check=True).stdout
    wanted = {
        line.split("[", 1)[1].split("]", 1)[0].strip()
        for line in heads.splitlines()
        if line.lstrip().startswith("[")
        and line.split("]", 1)[1].split()[:1] != []
        and line.split("]", 1)[1].split()[0].startswith(prefix)
    }
    syms = subprocess.run(["readelf", "-sW", ko], capture_output=True, text=True, check=True).stdout
    return {
        f[7] for f in map(str.split, syms.splitlines()) if len(f) == 8 and f[3] == "FUNC" and f[6] in wanted
    }


def traced(ko: Path, callsites: str | None) -> dict[str, bool]:
    """kernsurf's ftrace verdict per function of the module, the call-site table
    decided as for a build whose config says `callsites` (None: it does not)."""
    opened = kmod.open_module(ko, base=MODULE_BASE[kmod.open_module(ko).image.arch])
    memory = ImageMemory(opened.image)
    facts = attach.read_attach(memory, attach.module_callsite_table(memory, callsites))
    return {name: f.ftrace for name, f in facts.items()}


def test_arm64_patchable_entries_are_the_call_sites(arm64_ko):
    # readelf -rW: .rela__patchable_function_entries holds .text+0x0, +0x20, +0x70 and
    # .init.text+0: func-8 of traced_static (0x8), traced_entry (0x28), traced_caller (0x78)
    # and callsites_init; notrace_helper (patchable_function_entry(0, 0)) has none.
    assert readelf_owners(arm64_ko, "__patchable_function_entries", 8) == TRACED | {"callsites_init"}
    for decided in (attach.PATCHABLE_ENTRIES, None):  # by the config, and from the module's sections
        got = traced(arm64_ko, decided)
        assert {n for n in FUNCTIONS if got[n]} == TRACED, decided
    # A loader reading __mcount_loc (the config says so) finds no call site in this module.
    assert not any(traced(arm64_ko, attach.MCOUNT_LOC).values())


def test_init_text_of_a_module_is_freed(arm64_ko):
    opened = kmod.open_module(arm64_ko, base=MODULE_BASE["arm64"])
    facts = attach.read_attach(ImageMemory(opened.image), attach.PATCHABLE_ENTRIES)
    assert facts["callsites_init"].ftrace is False
    assert facts["callsites_init"].kprobe_blocked == "init text"
    assert facts["traced_entry"].kprobe_blocked is None


def test_amd64_reads_mcount_loc_beside_patchable_entries(amd64_ko):
    # readelf -rW: __mcount_loc has the -mfentry call of traced_static, traced_entry,
    # traced_caller and callsites_init (func+0); __patchable_function_entries (call padding,
    # func-16) also has notrace_helper, which no_instrument_function keeps out of __mcount_loc.
    assert readelf_owners(amd64_ko, "__mcount_loc", 0) == TRACED | {"callsites_init"}
    assert "notrace_helper" in readelf_owners(amd64_ko, "__patchable_function_entries", 16)
    for decided in (attach.MCOUNT_LOC, None):
        got = traced(amd64_ko, decided)
        assert {n for n in FUNCTIONS if got[n]} == TRACED, decided


def test_the_config_decides_the_table(tmp_path):
    assert attach.callsite_table({"CONFIG_FTRACE_MCOUNT_USE_PATCHABLE_FUNCTION_ENTRY": "y"}) == (
        attach.PATCHABLE_ENTRIES
    )
    assert attach.callsite_table({"CONFIG_FTRACE_MCOUNT_USE_CC": "y"}) == attach.MCOUNT_LOC
    assert attach.callsite_table({"CONFIG_FTRACE_MCOUNT_USE_RECORDMCOUNT": "y"}) == attach.MCOUNT_LOC
    assert attach.callsite_table({"CONFIG_FTRACE_MCOUNT_USE_OBJTOOL": "y"}) == attach.MCOUNT_LOC
    assert attach.callsite_table({}) is None  # no config, or before 5.10: each module's own sections


@pytest.mark.real_kernel
@pytest.mark.parametrize(
    ("vmlinux", "table"),
    [(ARM64_VMLINUX, attach.PATCHABLE_ENTRIES), (AMD64_VMLINUX, attach.MCOUNT_LOC)],
    ids=["arm64-6.12", "amd64-6.1"],
)
def test_real_configs(vmlinux, table):
    config = vmlinux.parent / "config"
    if not config.exists():
        pytest.skip(f"no cached config at {config}")
    # Debian's arm64 6.12 config: CONFIG_FTRACE_MCOUNT_USE_PATCHABLE_FUNCTION_ENTRY=y;
    # amd64 6.1: CONFIG_FTRACE_MCOUNT_USE_CC=y (gcc's -mrecord-mcount)
    assert attach.callsite_table(read_config(config)) == table


@pytest.fixture(scope="module")
def real_xfs(tmp_path_factory) -> Path:
    found = ARM64_VMLINUX.parent / "modules" / "fs" / "xfs" / "xfs.ko.zst"
    if not found.exists():
        pytest.skip(f"no {found}: kernsurf fetch debian 6.12.113+deb13-arm64 --suite trixie")
    plain = tmp_path_factory.mktemp("xfs") / "xfs.ko"
    plain.write_bytes(kmod.read_module(found))
    return plain


@pytest.mark.real_kernel
def test_real_arm64_xfs_equals_readelf(real_xfs):
    theirs = readelf_owners(real_xfs, "__patchable_function_entries", 8)
    got = traced(real_xfs, attach.PATCHABLE_ENTRIES)
    init = {
        name
        for name, f in attach.read_attach(
            ImageMemory(kmod.open_module(real_xfs, base=MODULE_BASE["arm64"]).image)
        ).items()
        if f.kprobe_blocked == "init text"
    }
    ours = {name for name, ftrace in got.items() if ftrace}
    assert ours == theirs - init
    # the FUNC symbols of .init.text by readelf -sW: init_xfs_fs (module_init) and the
    # __init helpers it calls (xfs_init_workqueues, xfs_defer_init_item_caches, ...)
    assert init == readelf_functions_in(real_xfs, ".init") and "init_xfs_fs" in init
    assert len(ours) > 3000  # of 3 484 records (readelf -r)
    assert traced(real_xfs, None) == got  # xfs.ko has no __mcount_loc: its own sections say the same


@pytest.fixture(scope="module")
def arm64_db(tmp_path_factory) -> Path:
    """Debian's 6.12.113 arm64 vmlinux with xfs.ko and what it depends on (libcrc32c)."""
    modules = ARM64_VMLINUX.parent / "modules"
    if not ARM64_VMLINUX.exists() or not (modules / "fs/xfs/xfs.ko.zst").exists():
        pytest.skip(
            f"no {ARM64_VMLINUX} with modules: kernsurf fetch debian 6.12.113+deb13-arm64 --suite trixie"
        )
    tree = tmp_path_factory.mktemp("arm64-tree") / "kernel"
    for rel in ("fs/xfs/xfs.ko.zst", "lib/libcrc32c.ko.zst"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).symlink_to(modules / rel)
    path = tmp_path_factory.mktemp("arm64-db") / "k.db"
    pipeline.ingest(ARM64_VMLINUX, path, pipeline.Identity(distro="debian"), modules=tree)
    return path


@pytest.mark.real_kernel
def test_real_arm64_fentry_into_a_module(arm64_db, real_xfs):
    report = check.check_objects(arm64_db, dep_texts=["fentry:xfs_file_fsync", "kprobe:xfs_file_fsync"])
    got = {check.spec(d): (row[0].level, row[0].text) for d, row in zip(report.dependencies, report.cells)}
    # was ✗ "not attachable: notrace" (every arm64 module symbol had ftrace 0); xfs.ko's
    # .modinfo: depends=libcrc32c
    assert got["fentry:xfs_file_fsync"] == ("ok", "in module xfs (must be loaded: xfs, libcrc32c)")
    conn = sqlite3.connect(arm64_db)
    stored = {
        n
        for (n,) in conn.execute(
            "SELECT n.name FROM symbols s JOIN names n ON n.id = s.name_id JOIN modules m ON m.id = s.module_id"
            " JOIN names mn ON mn.id = m.name_id WHERE mn.name = 'xfs' AND s.ftrace = 1"
        )
    }
    conn.close()
    assert stored == {name for name, ftrace in traced(real_xfs, None).items() if ftrace}
