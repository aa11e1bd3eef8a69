"""`kernsurf check` against real Debian kernels. Every expected cell was
verified by hand on the images (readelf -s, the kernel sources):
- tcp_tx_timestamp: a LOCAL FUNC symbol in 6.1.0-56, no symbol at all in 6.12.113;
- tcp_options_write: a symbol in 6.1, only tcp_options_write.isra.0 in 6.12;
- do_int3 is NOKPROBE_SYMBOL, exc_int3 is noinstr (no __mcount_loc record);
- inet_csk_accept lost flags/err/kern for a struct proto_accept_arg * in 6.10;
- listmount is syscall 458 from 6.8; bpf_task_acquire is a kfunc of vmlinux from 6.2
  (the 6.1 database is ingested without modules, so there it is not recorded);
- file.f_owner became a pointer in 6.12 (`struct fown_struct *f_owner`); on 6.1 it
  is an embedded `struct fown_struct` (pahole -C file on the 6.1.0-56 vmlinux), and
  the program reads it as `void *`: libbpf's bpf_core_fields_are_compat() refuses a
  pointer against a struct, so the relocation fails there (kind_mismatch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import db, pipeline
from ingest.changes import diff
from ingest.cli import cli
from tests.support import FIXTURES
from tests.support.kernel import KERNEL_612
from tests.support.programs import compile_bpf

pytestmark = [pytest.mark.real_kernel, pytest.mark.slow]

# spec -> (6.1.0-56 cell, 6.12.113 cell compared with 6.1)
EXPECTED = {
    "kprobe:do_int3": ("✗ not attachable: NOKPROBE_SYMBOL", "✗ not attachable: NOKPROBE_SYMBOL"),
    "fentry:exc_int3": ("✗ not attachable: notrace", "✗ not attachable: notrace"),
    "kprobe:inet_csk_accept": ("✓ ok", "⚠ changed: param removed flags and 3 more"),
    "kprobe:tcp_options_write": ("✓ ok", "✗ transformed: only isra copies"),
    "kprobe:tcp_tx_timestamp": ("✓ ok", "✗ inlined (Full): no symbol"),
    "fentry:vfs_read": ("✓ ok", "✓ ok"),
    "kprobe:vmap": ("✓ ok", "✓ ok"),
    "lsm:file_open": ("✓ ok", "✓ ok"),
    "tp_btf:sched_switch": ("✓ ok", "✓ ok"),
    "ksyscall:listmount": ("✗ absent", "✓ nr 458"),
    "ksyscall:openat": ("✓ nr 257", "✓ nr 257"),
    "tracepoint:sched/sched_switch": ("✓ ok", "✓ ok"),
    "field:dma_buf_ops.vmap": ("✓ ok", "✓ ok"),
    "field:file.f_owner": (
        "✗ file.f_owner is struct fown_struct, the program reads ptr",
        "⚠ changed: field type changed f_owner (struct fown_struct → struct fown_struct *)",
    ),
    "field:task_struct.pid": ("✓ ok", "✓ ok"),
    "helper:bpf_probe_read_kernel": ("✓ ok", "✓ ok"),
    "kfunc?:bpf_task_acquire": ("? not a kfunc of vmlinux; modules not read", "✓ ok"),
    "kfunc?:bpf_task_release": ("? not a kfunc of vmlinux; modules not read", "✓ ok"),
    "struct:dma_buf_ops": ("✓ ok", "✓ ok"),
    "struct:file": ("✓ ok", "✓ ok"),
    "struct:task_struct": ("✓ ok", "✓ ok"),
}
MARK = {"ok": "✓", "warn": "⚠", "fail": "✗", "unknown": "?"}


def run_check(obj: Path, database: Path) -> dict[str, tuple[str, ...]]:
    result = CliRunner().invoke(cli, ["check", str(obj), "--db", str(database), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    builds = [b["build"] for b in data["builds"]]
    return {
        d["spec"]: tuple(f"{MARK[d['results'][b]['level']]} {d['results'][b]['text']}" for b in builds)
        for d in data["dependencies"]
    }


@pytest.fixture(scope="module")
def real_obj(tmp_path_factory) -> Path:
    return compile_bpf(FIXTURES / "check" / "real.bpf.c", tmp_path_factory.mktemp("bpf") / "real.o")


def test_program_on_debian_6_1(real_obj, kernel_db):
    assert run_check(real_obj, kernel_db) == {spec: (cells[0],) for spec, cells in EXPECTED.items()}


@pytest.fixture(scope="module")
def two_kernel_db(tmp_path_factory, kernel_db) -> Path:
    if not KERNEL_612.exists():
        pytest.skip(
            f"no cached 6.12.113 image at {KERNEL_612} (kernsurf fetch debian 6.12.113+deb13-amd64 --suite trixie)"
        )
    path = tmp_path_factory.mktemp("real2") / "two.db"
    path.write_bytes(kernel_db.read_bytes())
    pipeline.ingest(KERNEL_612, path, pipeline.Identity(distro="debian"))
    conn = db.connect(path)
    db.store_groups(conn, [("Regular", "series", [(1, "6.1"), (2, "6.12")])])
    diff.compute_group_diffs(conn)
    conn.close()
    return path


def test_program_on_debian_6_1_and_6_12(real_obj, two_kernel_db):
    assert run_check(real_obj, two_kernel_db) == EXPECTED


def test_init_text_is_not_attachable_by_fentry_either(kernel_db):
    """__e820__range_add is __init (arch/x86/kernel/e820.c): the kprobe
    blacklist says "init text", and ftrace frees init text's records after
    boot, so fentry cannot attach either."""
    result = CliRunner().invoke(
        cli,
        [
            "check",
            "--db",
            str(kernel_db),
            "--dep",
            "kprobe:__e820__range_add",
            "--dep",
            "fentry:__e820__range_add",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    got = [next(iter(d["results"].values())) for d in json.loads(result.stdout)["dependencies"]]
    assert [(r["level"], r["text"], r["reason"]) for r in got] == [
        ("fail", "not attachable: init text (freed after boot)", "not_attachable")
    ] * 2


def test_syscall_events_are_trace_events_not_tracepoints(kernel_db):
    """sys_enter_openat is a trace event of the syscalls system (available_events
    of the booted 6.1.0-56 kernel lists syscalls:sys_enter_openat), generated from
    syscall metadata on top of the raw_syscalls sys_enter tracepoint: there is no
    __tracepoint_sys_enter_openat, so raw_tp/sys_enter_openat cannot attach."""
    result = CliRunner().invoke(
        cli,
        [
            "check",
            "--db",
            str(kernel_db),
            "--dep",
            "tracepoint:syscalls/sys_enter_openat",
            "--dep",
            "raw_tp:sys_enter_openat",
            "--dep",
            "raw_tp:sys_enter",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    got = {d["spec"]: next(iter(d["results"].values())) for d in json.loads(result.stdout)["dependencies"]}
    assert {spec: (r["level"], r["reason"]) for spec, r in got.items()} == {
        "tracepoint:syscalls/sys_enter_openat": ("ok", "ok"),
        "raw_tracepoint:sys_enter_openat": ("fail", "not_attachable"),
        "raw_tracepoint:sys_enter": ("ok", "ok"),
    }
