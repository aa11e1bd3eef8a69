"""`kernsurf ingest --running`: the running system as a build.

Real: this machine's /sys/kernel/btf/vmlinux, /proc/kallsyms, /proc/version,
/sys/kernel/notes and config (skipped without kernel BTF), cross-checked with
bpftool and the machine's own config. Fixture: a /sys + /proc tree the test
writes, whose BTF pahole makes from compiled C (vmlinux and one module's split
BTF over it), with [module] tags, /proc/modules, tracefs and the kprobe blacklist.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile

from ingest.cli import cli
from ingest.origins import running
from ingest.readers import procfs
from tests.support.tools import build, require

SYS_BTF = Path("/sys/kernel/btf/vmlinux")

VMLINUX_C = r"""
struct task { int pid; long state; struct task *parent; };
int vfs_read(struct task *t, long n) { return t->pid + (int)n; }
int blocked_fn(int x) { return x * 3; }
static int notrace_fn(int x) { return x + 1; }
int caller(struct task *t) { return notrace_fn(t->pid); }
struct task init_task;
"""
MODULE_C = r"""
struct task { int pid; long state; struct task *parent; };
struct mod_state { struct task *owner; unsigned long count; };
int mod_open(struct mod_state *s) { return s->owner->pid + (int)s->count; }
"""
SCHED_FORMAT = """name: sched_switch
ID: 316
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;

print fmt: "prev_comm=%s prev_pid=%d", REC->prev_comm, REC->prev_pid
"""
OPENAT_FORMAT = """name: sys_enter_openat
ID: 700
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;

print fmt: "dfd: 0x%08lx, filename: 0x%08lx", ((unsigned long)(REC->dfd)), ((unsigned long)(REC->filename))
"""
BUILD_ID = bytes(range(1, 21))


def _btf_of(obj: Path) -> bytes:
    with open(obj, "rb") as f:
        return ELFFile(f).get_section_by_name(".BTF").data()


def _note(name: bytes, kind: int, desc: bytes) -> bytes:
    def pad(b: bytes) -> bytes:
        return b + b"\0" * (-len(b) % 4)

    return struct.pack("<III", len(name) + 1, len(desc), kind) + pad(name + b"\0") + pad(desc)


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    """A /sys + /proc + /boot tree of a kernel with one loaded module `mymod` and tracefs mounted."""
    src = tmp_path_factory.mktemp("src")
    root = tmp_path_factory.mktemp("root")
    (src / "vmlinux.c").write_text(VMLINUX_C)
    (src / "mymod.c").write_text(MODULE_C)
    for name in ("vmlinux", "mymod"):
        build(["gcc", "-g", "-O0", "-c", f"{name}.c", "-o", f"{name}.o"], cwd=src)
    build(["pahole", "-J", "vmlinux.o"], cwd=src)
    # Split BTF of the module over vmlinux's, as the kernel build makes for each .ko.
    build(["pahole", "-J", "--btf_base", "vmlinux.o", "mymod.o"], cwd=src)
    btf = root / "sys/kernel/btf"
    btf.mkdir(parents=True)
    (btf / "vmlinux").write_bytes(_btf_of(src / "vmlinux.o"))
    (btf / "mymod").write_bytes(_btf_of(src / "mymod.o"))
    (root / "sys/kernel/notes").write_bytes(_note(b"Xen", 6, b"xen\0") + _note(b"GNU", 3, BUILD_ID))
    proc = root / "proc"
    proc.mkdir()
    (proc / "version").write_text(
        "Linux version 6.9.0-7-fixture (b@h) (gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils) 2.40)"
        " #1 SMP PREEMPT_DYNAMIC Debian 6.9.7-1 (2024-07-01)\n"
    )
    lines = []
    for obj, tag in (("vmlinux.o", ""), ("mymod.o", "\t[mymod]")):
        nm = build(["nm", obj], cwd=src)
        base = 0xFFFFFFFF81000000 if not tag else 0xFFFFFFFFC0000000
        for line in nm.splitlines():
            parts = line.split()
            if len(parts) == 3:
                lines.append(f"{base + int(parts[0], 16):016x} {parts[1]} {parts[2]}{tag}")
    (proc / "kallsyms").write_text("\n".join(lines) + "\n")
    (proc / "modules").write_text("mymod 16384 0 - Live 0xffffffffc0000000\n")
    (root / "boot").mkdir()
    (root / "boot/config-6.9.0-7-fixture").write_text(
        "CONFIG_BPF_SYSCALL=y\nCONFIG_KPROBES=y\nCONFIG_MODULES=y\nCONFIG_DEBUG_INFO_BTF=y\n"
        "CONFIG_DEBUG_INFO_BTF_MODULES=y\nCONFIG_BPF_JIT=y\nCONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y\n"
        "CONFIG_FTRACE_SYSCALLS=y\nCONFIG_KALLSYMS_ALL=y\n"
    )
    tracing = root / "sys/kernel/tracing"
    for system, event, fmt in (
        ("sched", "sched_switch", SCHED_FORMAT),
        ("syscalls", "sys_enter_openat", OPENAT_FORMAT),
    ):
        (tracing / "events" / system / event).mkdir(parents=True)
        (tracing / "events" / system / event / "format").write_text(fmt)
    (tracing / "available_filter_functions").write_text("vfs_read\nblocked_fn\ncaller\nmod_open [mymod]\n")
    kprobes = root / "sys/kernel/debug/kprobes"
    kprobes.mkdir(parents=True)
    (kprobes / "blacklist").write_text("0xffffffff81000010-0xffffffff81000020\tblocked_fn\n")
    return root


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory, fixture_root) -> Path:
    db = tmp_path_factory.mktemp("db") / "running.db"
    result = CliRunner().invoke(cli, ["ingest", "--running", "--root", str(fixture_root), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("6.9.0-7-fixture: ")
    assert "unknown for this build: instances, syscalls\n" in result.output
    return db


def _rows(db: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _check(db: Path, *deps: str) -> dict[str, dict]:
    result = CliRunner().invoke(
        cli, ["check", "--db", str(db), "--format", "json", *(a for d in deps for a in ("--dep", d))]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    return {d["spec"]: next(iter(d["results"].values())) for d in report["dependencies"]}


def test_identity_from_proc_version_and_notes(fixture_db):
    build_id, release, version, compiler = _rows(
        fixture_db, "SELECT build_id, release, version, compiler FROM builds"
    )[0]
    assert build_id == BUILD_ID.hex()  # the GNU note, not the Xen one before it
    assert (release, version, compiler) == ("6.9.0-7-fixture", "6.9.7-1", "gcc (Debian 12.2.0-14) 12.2.0")


def test_the_sources_table(fixture_db):
    sources = dict(_rows(fixture_db, "SELECT fact, source FROM build_sources"))
    assert sources["config"] == "/boot/config-6.9.0-7-fixture"
    assert sources["ftrace"] == "/sys/kernel/tracing/available_filter_functions"
    assert sources["kprobe_blacklist"] == "/sys/kernel/debug/kprobes/blacklist"
    assert sources["trace_events"] == "/sys/kernel/tracing/events"
    assert sources["modules"].startswith("loaded modules")
    assert sources["instances"] is None and sources["syscalls"] is None


def test_module_split_btf_and_tags(fixture_db):
    assert _rows(fixture_db, "SELECT n.name, m.size FROM modules m JOIN names n ON n.id = m.name_id") == [
        ("mymod", 16384)
    ]
    tagged = _rows(
        fixture_db,
        "SELECT n.name, mn.name FROM symbols s JOIN names n ON n.id = s.name_id"
        " LEFT JOIN modules m ON m.id = s.module_id LEFT JOIN names mn ON mn.id = m.name_id ORDER BY 1",
    )
    assert ("mod_open", "mymod") in tagged and ("vfs_read", None) in tagged
    # The module's own struct comes from its split BTF; struct task from vmlinux's.
    types = dict(
        _rows(
            fixture_db,
            "SELECT n.name, t.module_id IS NOT NULL FROM types t JOIN names n ON n.id = t.name_id",
        )
    )
    assert types == {"task": 0, "mod_state": 1}


def test_tracefs_facts_decide_the_verdicts(fixture_db):
    cells = _check(
        fixture_db,
        "kprobe:vfs_read",
        "kprobe:blocked_fn",
        "fentry:vfs_read",
        "fentry:notrace_fn",
        "fentry:mod_open",
        "tracepoint:sched/sched_switch",
        "tracepoint:syscalls/sys_enter_openat",
        "ksym:init_task",
        "syscall:openat",
    )
    assert cells["kprobe:vfs_read"]["level"] == "ok"
    assert cells["ksym:init_task"]["level"] == "ok"  # kallsyms has data symbols: CONFIG_KALLSYMS_ALL
    assert cells["syscall:openat"]["reason"] == "not_recorded"  # no image: no syscall table
    assert cells["kprobe:blocked_fn"]["text"] == "not attachable: kprobe blacklist"
    assert cells["fentry:vfs_read"]["level"] == "ok"
    assert (
        cells["fentry:notrace_fn"]["text"] == "not attachable: notrace"
    )  # not in available_filter_functions
    assert cells["fentry:mod_open"]["level"] == "ok" and "in module mymod" in cells["fentry:mod_open"]["text"]
    assert cells["tracepoint:sched/sched_switch"]["level"] == "ok"
    assert cells["tracepoint:syscalls/sys_enter_openat"]["level"] == "ok"
    fields = _rows(fixture_db, "SELECT fields FROM tracepoint_list WHERE name = 'sys_enter_openat'")
    assert fields == [("int __syscall_nr; int dfd; const char * filename",)]


def test_without_debugfs_the_blacklist_is_unknown(tmp_path, fixture_root):
    root = tmp_path / "root"
    shutil.copytree(fixture_root, root)
    shutil.rmtree(root / "sys/kernel/debug")
    db = tmp_path / "r.db"
    assert (
        CliRunner().invoke(cli, ["ingest", "--running", "--root", str(root), "--db", str(db)]).exit_code == 0
    )
    cells = _check(db, "kprobe:vfs_read", "fentry:vfs_read", "function:nosuch_in_mod")
    assert cells["kprobe:vfs_read"] == {**cells["kprobe:vfs_read"], "level": "warn", "reason": "unverified"}
    assert cells["fentry:vfs_read"]["level"] == "ok"


def test_proc_config_gz_when_boot_has_none(tmp_path, fixture_root):
    root = tmp_path / "root"
    shutil.copytree(fixture_root, root)
    config = root / "boot/config-6.9.0-7-fixture"
    (root / "proc/config.gz").write_bytes(
        gzip.compress(config.read_bytes().replace(b"CONFIG_KPROBES=y\n", b""))
    )
    config.unlink()
    build = running.read_running(root)
    assert build.sources["config"] == "/proc/config.gz" and "CONFIG_KPROBES" not in build.config


def test_no_kernel_btf_is_a_one_line_error(tmp_path):
    (tmp_path / "sys").mkdir()
    result = CliRunner().invoke(
        cli, ["ingest", "--running", "--root", str(tmp_path), "--db", str(tmp_path / "x.db")]
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "CONFIG_DEBUG_INFO_BTF" in result.output
    assert not (tmp_path / "x.db").exists()


def test_path_and_running_exclude_each_other(tmp_path):
    result = CliRunner().invoke(cli, ["ingest", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "either PATH or --running" in result.output


# --------------------------------------------------------------------------- this machine


@pytest.fixture(scope="module")
def machine_db(tmp_path_factory) -> Path:
    if not SYS_BTF.exists():
        pytest.skip("this machine's kernel has no /sys/kernel/btf/vmlinux")
    db = tmp_path_factory.mktemp("machine") / "running.db"
    result = CliRunner().invoke(cli, ["ingest", "--running", "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db


def _machine_config() -> dict[str, str]:
    from ingest.surfaces.kconfig import parse_config

    boot = Path(f"/boot/config-{os.uname().release}")
    if boot.exists():
        return parse_config(boot.read_text())
    if Path("/proc/config.gz").exists():
        return parse_config(gzip.decompress(Path("/proc/config.gz").read_bytes()).decode())
    pytest.skip("this machine exposes no kernel config")


def test_machine_identity(machine_db):
    release, build_id, has_symtab = _rows(machine_db, "SELECT release, build_id, has_symtab FROM builds")[0]
    assert release == os.uname().release
    assert build_id == procfs.read_build_id(Path("/sys/kernel/notes"))
    assert len(build_id) == 40 and has_symtab == 1


def test_machine_btf_and_kallsyms_agree(machine_db):
    """Every BTF FUNC names a function; bpftool counts the same FUNC names, and
    nearly all of them have a text symbol in /proc/kallsyms."""
    require("bpftool")
    out = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(SYS_BTF)], capture_output=True, text=True, check=True
    )
    funcs = {line.split("'")[1] for line in out.stdout.splitlines() if "] FUNC '" in line}
    stored = {n for (n,) in _rows(machine_db, "SELECT name FROM function_status WHERE btf_func = 1")}
    assert stored == funcs
    texts = {
        line.split()[2]
        for line in Path("/proc/kallsyms").read_text().splitlines()
        if line.split()[1] in "tTwW"
    }
    assert len(funcs & texts) / len(funcs) > 0.95


def test_machine_config_decides_kprobes(machine_db):
    """The verdicts follow the machine's own config: kprobes fail for that
    reason when CONFIG_KPROBES is off; fentry never fails for it."""
    config = _machine_config()
    cells = _check(machine_db, "kprobe:vfs_read", "fentry:vfs_read", "syscall:openat", "ksym:init_task")
    assert cells["syscall:openat"]["level"] == "unknown"  # never a ✗ for what the running system cannot tell
    if config.get("CONFIG_KALLSYMS_ALL") != "y":  # kallsyms lists no variables then
        assert cells["ksym:init_task"]["level"] == "unknown"
    if config.get("CONFIG_KPROBES") in ("y", "m"):
        assert cells["kprobe:vfs_read"]["reason"] != "config_missing"
    else:
        assert cells["kprobe:vfs_read"]["level"] == "fail"
        assert cells["kprobe:vfs_read"]["text"].startswith("CONFIG_KPROBES is not set")
    assert cells["fentry:vfs_read"]["level"] != "fail"
    sources = dict(_rows(machine_db, "SELECT fact, source FROM build_sources"))
    assert sources["config"] in (f"/boot/config-{os.uname().release}", "/proc/config.gz")
    if config.get("CONFIG_MODULES") == "n":
        assert sources["modules"] == "CONFIG_MODULES is not set"


def test_kallsyms_option_skips_module_lines(tmp_path):
    """`ingest BLOB --kallsyms /proc/kallsyms`: lines tagged [module] are not vmlinux's functions."""
    from ingest.readers import kallsyms

    path = tmp_path / "kallsyms"
    path.write_text("ffffffff81000000 T vfs_read\nffffffffc0000000 t mod_open\t[mymod]\n")
    assert [s.name for s in kallsyms.read_functions(path)] == ["vfs_read"]
    assert [(e.name, e.module) for e in kallsyms.read_entries(path)] == [
        ("vfs_read", None),
        ("mod_open", "mymod"),
    ]
