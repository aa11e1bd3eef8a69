"""The booted kernel as the oracle of module attachability: Debian's own kernel
under QEMU (software emulation: arm64 6.12.113 with qemu-system-aarch64, amd64
6.1.0-56 with qemu-system-x86_64; ~20 s each), whose initramfs loads xfs.ko and
what it needs (crc32c_generic, libcrc32c; the package's debug modules with their
debug sections stripped) and prints the module lines of tracefs'
`available_filter_functions`. The `[xfs]` lines must be exactly the xfs
symbols kernsurf records with an ftrace record, from a database made of the
same build's vmlinux and those modules. tests/test_kernel_oracle.py does the
same for vmlinux.

The initramfs's /init is tests/fixtures/oracle/init.c compiled static for the
arch (no busybox of the target arch needed). The booting kernels come from the
packages' -unsigned image packages: the amd64 one with `apt-get download` (as
test_kernel_oracle does), the arm64 one (trixie-security) streamed by kernsurf's
own archive reader; both kept in the cache directory."""

from __future__ import annotations

import gzip
import sqlite3
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from ingest import pipeline
from ingest.readers import kmod
from tests.support import FIXTURES
from tests.support.kernel import CACHE, REAL_KERNEL
from tests.support.qemu import PLACEHOLDER, parse_console, vmlinuz
from tests.support.tools import require

INIT = FIXTURES / "oracle" / "init.c"
#: xfs and what it needs, in load order (xfs.ko: depends=libcrc32c; libcrc32c asks
#: the crypto API for "crc32c", which CONFIG_CRYPTO_CRC32C=m puts in crc32c_generic.ko)
MODULES = ("crypto/crc32c_generic.ko", "lib/libcrc32c.ko", "fs/xfs/xfs.ko")


class Target(NamedTuple):
    arch: str
    release: str
    suite: str
    vmlinux: Path  # the cached debug image, its modules/ beside it
    qemu: list[str]
    console: str
    cc: str
    strip: str


TARGETS = {
    "arm64": Target(
        arch="arm64",
        release="6.12.113+deb13-arm64",
        suite="trixie",
        vmlinux=CACHE / "linux-image-6.12.113+deb13-arm64-dbg_6.12.113-1_arm64" / "vmlinux",
        qemu=["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57"],
        console="ttyAMA0",
        cc="aarch64-linux-gnu-gcc",
        strip="aarch64-linux-gnu-strip",
    ),
    "amd64": Target(
        arch="amd64",
        release="6.1.0-56-amd64",
        suite="bookworm",
        vmlinux=REAL_KERNEL,
        qemu=["qemu-system-x86_64"],
        console="ttyS0",
        cc="gcc",
        strip="strip",
    ),
}


def _kernel(target: Target) -> Path:
    """The booting kernel (vmlinuz) of `target`'s release."""
    if target.arch == "amd64":
        return vmlinuz()
    from ingest.archive import debian, store
    from ingest.errors import KernsurfError

    dest = CACHE.parent / "boot" / target.release / f"vmlinuz-{target.release}"
    if dest.exists():
        return dest
    try:
        ref = debian.resolve(target.release, suite=target.suite, arch=target.arch)
        (image,) = [c.ref for c in debian.config_sources(ref) if c.ref.name.endswith("-unsigned")]
        dest.parent.mkdir(parents=True, exist_ok=True)
        store.fetch_member(image, lambda p: p == f"boot/vmlinuz-{target.release}", dest)
    except (KernsurfError, ValueError) as exc:
        pytest.skip(f"cannot download the {target.release} kernel: {exc}")
    return dest


def _initramfs(target: Target, dest: Path) -> Path:
    """A newc cpio (gzip): /init, /modules.list and the modules, debug sections stripped."""
    root = dest / "root"
    (root / "m").mkdir(parents=True)
    subprocess.run([target.cc, "-static", "-O2", "-o", root / "init", INIT], check=True)
    order = []
    for rel in MODULES:
        ko = root / "m" / Path(rel).name
        ko.write_bytes(kmod.read_module(target.vmlinux.parent / "modules" / f"{rel}.zst"))
        subprocess.run([target.strip, "--strip-debug", ko], check=True)
        order.append(f"/m/{ko.name}")
    (root / "modules.list").write_text("\n".join(order) + "\n")
    names = "\n".join(["init", "modules.list", "m", *(o.lstrip("/") for o in order)]) + "\n"
    cpio = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        cwd=root,
        input=names.encode(),
        capture_output=True,
        check=True,
    )
    out = dest / "initrd.gz"
    out.write_bytes(gzip.compress(cpio.stdout, 1))
    return out


def _boot(target: Target, tmp: Path) -> list[str]:
    """The module lines of available_filter_functions, after loading MODULES."""
    kernel, initrd = _kernel(target), _initramfs(target, tmp)
    serial = tmp / "serial.log"
    subprocess.run(
        [
            *target.qemu, "-accel", "tcg", "-m", "1024", "-no-reboot", "-display", "none", "-monitor", "none",
            "-serial", f"file:{serial}", "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", f"console={target.console} quiet loglevel=1 panic=-1",
        ],
        check=True, timeout=900, capture_output=True,
    )  # fmt: skip
    text = serial.read_text(errors="replace")
    loads = [line.split() for line in text.replace("\r", "").splitlines() if line.startswith("@@LOAD ")]
    assert [(path, errno) for _, path, errno in loads] == [(f"/m/{Path(r).name}", "0") for r in MODULES], (
        loads
    )
    return parse_console(text)["available_filter_functions"]


def _db(target: Target, tmp: Path) -> Path:
    """The build's vmlinux and MODULES ingested."""
    tree = tmp / "kernel"
    for rel in MODULES:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / f"{rel}.zst").symlink_to(target.vmlinux.parent / "modules" / f"{rel}.zst")
    path = tmp / "k.db"
    pipeline.ingest(target.vmlinux, path, pipeline.Identity(distro="debian"), modules=tree)
    return path


@pytest.fixture(scope="module", params=sorted(TARGETS))
def booted(request, tmp_path_factory) -> tuple[list[str], Path]:
    target = TARGETS[request.param]
    require(target.qemu[0], target.cc, target.strip, "cpio")
    if not all((target.vmlinux.parent / "modules" / f"{rel}.zst").exists() for rel in MODULES):
        pytest.skip(f"no cached {target.release} image with its modules")
    tmp = tmp_path_factory.mktemp(f"oracle-{target.arch}")
    return _boot(target, tmp), _db(target, tmp)


@pytest.mark.slow
@pytest.mark.real_kernel
@pytest.mark.qemu
def test_xfs_lines_equal_the_recorded_ftrace_symbols(booted):
    lines, path = booted
    listed = {line.split()[0] for line in lines if line.endswith(" [xfs]")}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    ours = {
        n
        for (n,) in conn.execute(
            "SELECT n.name FROM symbols s JOIN names n ON n.id = s.name_id JOIN modules m ON m.id = s.module_id"
            " JOIN names mn ON mn.id = m.name_id WHERE mn.name = 'xfs' AND s.ftrace = 1"
        )
    }
    conn.close()
    # Measured: arm64 6.12.113 3 466 listed = 3 466 recorded (0 recorded before: its
    # __patchable_function_entries was not read); amd64 6.1.0-56 2 631 = 2 631. No xfs
    # init function is listed: the kernel frees .init.text, and its records, once loaded.
    assert {n for n in listed - ours if not PLACEHOLDER.match(n)} == set()
    assert ours - listed == set()
    assert len(listed) > 2500
