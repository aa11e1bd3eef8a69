"""The kernel as the oracle of attachability: Debian's own 6.1.0-56 kernel
booted under QEMU (software emulation, ~10 s) with a busybox initramfs that
prints tracefs' `available_filter_functions`, `available_events` and debugfs'
`kprobes/blacklist` on the serial console, compared with the database made
from the same build's vmlinux (conftest.kernel_db).

Needs qemu-system-x86_64, busybox-static, cpio and the cached 6.1.0-56
vmlinux; the kernel image comes from linux-image-6.1.0-56-amd64-unsigned
(downloaded once with `apt-get download`, unpacked with the project's
streaming .deb extraction, kept in the cache directory)."""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support.kernel import REAL_KERNEL
from tests.support.qemu import PLACEHOLDER, parse_console, vmlinuz
from tests.support.tools import require

pytestmark = [pytest.mark.real_kernel, pytest.mark.slow, pytest.mark.qemu]

FILES = ("available_filter_functions", "available_events", "kprobes_blacklist")

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
T=/sys/kernel/tracing
echo "@@BEGIN available_filter_functions"
cat $T/available_filter_functions
echo "@@BEGIN available_events"
cat $T/available_events
echo "@@BEGIN kprobes_blacklist"
cat /sys/kernel/debug/kprobes/blacklist
echo "@@END"
poweroff -f
"""


def _initramfs(dest: Path) -> Path:
    """A newc cpio (gzip) of busybox and INIT."""
    busybox = shutil.which("busybox")
    if busybox is None or b"statically linked" not in subprocess.run(
        ["file", "-L", busybox], capture_output=True
    ).stdout.replace(b"static-pie linked", b"statically linked"):
        pytest.skip("busybox-static is needed")
    root = dest / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    (root / "init").write_text(INIT)
    os.chmod(root / "init", 0o755)
    names = "\n".join(["init", "bin", "bin/busybox"]) + "\n"
    cpio = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        cwd=root,
        input=names.encode(),
        capture_output=True,
        check=True,
    )
    out = dest / "initrd.gz"
    out.write_bytes(gzip.compress(cpio.stdout))
    return out


@pytest.fixture(scope="module")
def oracle(tmp_path_factory) -> dict[str, list[str]]:
    require("qemu-system-x86_64", "cpio", "file")
    if not REAL_KERNEL.exists():
        pytest.skip(f"no cached kernel at {REAL_KERNEL}")
    tmp = tmp_path_factory.mktemp("qemu")
    kernel, initrd = vmlinuz(), _initramfs(tmp)
    serial = tmp / "serial.log"
    subprocess.run(
        [
            "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-no-reboot", "-display", "none",
            "-monitor", "none", "-serial", f"file:{serial}", "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "console=ttyS0 quiet loglevel=1 panic=-1",
        ],
        check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    files = parse_console(serial.read_text(errors="replace"))
    assert set(files) == set(FILES), f"serial output incomplete: {sorted(files)}"
    return files


#: Functions kernsurf marks fentry ✓ that the kernel lists under another name:
#: aliases at one address, where available_filter_functions names one record
#: once (by kallsyms' choice). On 6.1.0-56 all 66 such names are aliases of a
#: listed name (checked below), e.g. __x64_sys_getpid = __ia32_sys_getpid
#: (SYSCALL_DEFINE0's alias), thermal_genl_event_tz_delete = ..._tz_enable,
#: devlink_fmsg_u8_pair_put.part.0 = devlink_fmsg_u32_pair_put.part.0.
MAX_ALIAS_EXTRAS = 66


def _db(kernel_db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{kernel_db}?mode=ro", uri=True)


def test_every_listed_function_is_ftrace_able(oracle, kernel_db):
    listed = {line.split()[0] for line in oracle["available_filter_functions"]}
    conn = _db(kernel_db)
    traced = {
        n
        for (n,) in conn.execute(
            "SELECT n.name FROM symbols s JOIN names n ON n.id = s.name_id WHERE s.ftrace = 1"
        )
    }
    missing = listed - traced
    assert all(PLACEHOLDER.match(n) for n in missing), sorted(n for n in missing if not PLACEHOLDER.match(n))[
        :20
    ]


def test_every_fentry_ok_function_is_listed(oracle, kernel_db):
    listed = {line.split()[0] for line in oracle["available_filter_functions"]}
    conn = _db(kernel_db)
    ok = {n for (n,) in conn.execute("SELECT name FROM function_status WHERE fentry = '✓'")}
    extras = ok - listed
    # Each extra shares its address with a listed symbol (an alias).
    addresses = {}
    for name, address in conn.execute(
        "SELECT n.name, s.address FROM symbols s JOIN names n ON n.id = s.name_id"
    ):
        addresses.setdefault(address, set()).add(name)
    by_name = {}
    for names in addresses.values():
        for name in names:
            by_name.setdefault(name, set()).update(names)
    unexplained = sorted(n for n in extras if not (by_name.get(n, set()) - {n}) & listed)
    assert not unexplained, unexplained[:20]
    assert len(extras) <= MAX_ALIAS_EXTRAS
    # No init function is among them any more (2 253 before: ftrace frees init text).
    init = conn.execute(
        "SELECT count(*) FROM function_status WHERE fentry = '✓' AND kprobe_blocked = 'init text'"
    ).fetchone()[0]
    assert init == 0


def test_every_event_matches(oracle, kernel_db):
    conn = _db(kernel_db)
    ours = {
        f"{s}:{n}"
        for s, n in conn.execute("SELECT system, name FROM tracepoint_list WHERE system IS NOT NULL")
    }
    theirs = set(oracle["available_events"])
    assert ours == theirs, (sorted(theirs - ours)[:10], sorted(ours - theirs)[:10])
    assert sum(e.startswith("syscalls:") for e in theirs) == 690  # 6.1.0-56: the per-syscall events


def test_every_blacklisted_function_is_kprobe_blocked(oracle, kernel_db):
    conn = _db(kernel_db)
    functions = {
        n for (n,) in conn.execute("SELECT DISTINCT n.name FROM symbols s JOIN names n ON n.id = s.name_id")
    }
    blocked = {
        n
        for (n,) in conn.execute(
            "SELECT n.name FROM symbols s JOIN names n ON n.id = s.name_id WHERE s.kprobe_blocked IS NOT NULL"
        )
    }
    listed = {line.split("\t")[-1].split()[0] for line in oracle["kprobes_blacklist"]}
    # The blacklist also names non-FUNC symbols (asm labels, NOTYPE): only FUNC symbols are compared.
    wrong = sorted((listed & functions) - blocked)
    assert not wrong, wrong[:20]
