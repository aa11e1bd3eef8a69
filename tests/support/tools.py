"""Running what builds a test's fixtures (compilers, linkers, pahole, objcopy):
the test skips when the program is not installed, and fails with the program's
error output when it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

import pytest

#: Debian package of each program the tests run (scripts/install-system-deps.sh installs them).
PACKAGES = {
    "gcc": "gcc",
    "arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf",
    "arm-linux-gnueabihf-ld": "binutils-arm-linux-gnueabihf",
    "s390x-linux-gnu-gcc": "gcc-s390x-linux-gnu",
    "s390x-linux-gnu-ld": "binutils-s390x-linux-gnu",
    "clang": "clang",
    "llvm-readelf": "llvm",
    "pahole": "dwarves",
    "bpftool": "bpftool",
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "debuginfod": "debuginfod",
    "rpmbuild": "rpm",
    "createrepo_c": "createrepo-c",
    **dict.fromkeys(("ld", "nm", "objcopy", "objdump", "readelf"), "binutils"),
}


def require(*programs: str) -> None:
    """Skip the calling test unless every program is on PATH."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        packages = " ".join(sorted({PACKAGES.get(p, p) for p in missing}))
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install {packages}; make test installs it)")


def build(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    input: bytes | None = None,
    skip_if: tuple[str, str] | None = None,
) -> str:
    """Run one build step of a fixture and return its standard output. Skips
    when cmd[0] is not installed, or when the step fails with skip_if's first
    text in its error output (a missing header package; "" for any failure, as
    for a cross compiler that cannot link here), giving its second as the
    reason; raises with the error output on any other failure."""
    require(os.fspath(cmd[0]))
    proc = subprocess.run([os.fspath(c) for c in cmd], cwd=cwd, input=input, capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")
        if skip_if is not None and skip_if[0] in err:
            pytest.skip(f"{skip_if[1]}: {err.strip()[:200]}")
        raise RuntimeError(f"{' '.join(os.fspath(c) for c in cmd)} failed: {err}")
    return proc.stdout.decode(errors="replace")
