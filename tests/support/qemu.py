"""Booting Debian's own kernel under QEMU as an oracle (tests/test_kernel_oracle.py,
tests/test_module_oracle.py): the amd64 6.1.0-56 booting image, and the serial
console's output read back."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ingest.archive import deb
from tests.support.kernel import CACHE

RELEASE = "6.1.0-56-amd64"
PACKAGE = f"linux-image-{RELEASE}-unsigned"
VERSION = "6.1.192-2"
BOOT_CACHE = CACHE.parent / "boot" / f"{PACKAGE}_{VERSION}_amd64"

#: Names the kernel lists that are no function of the image: ftrace prints a
#: placeholder for each record kallsyms cannot name (kernel/trace/ftrace.c,
#: FTRACE_INVALID_ADDR_BASE: records of overridden weak functions).
PLACEHOLDER = re.compile(r"__ftrace_invalid_address___\d+$")


def vmlinuz() -> Path:
    """The booting kernel of 6.1.0-56 amd64 (PACKAGE), from the cache or downloaded into it."""
    target = BOOT_CACHE / f"vmlinuz-{RELEASE}"
    if target.exists():
        return target
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is needed to download the kernel package")
    BOOT_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            ["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=tmp, capture_output=True, text=True
        )
        debs = list(Path(tmp).glob("*.deb"))
        if proc.returncode != 0 or not debs:
            pytest.skip(f"cannot download {PACKAGE} {VERSION}: {proc.stderr.strip()[:200]}")
        with open(debs[0], "rb") as stream:
            deb.extract(stream, lambda path: path == f"boot/vmlinuz-{RELEASE}", target)
    return target


def parse_console(text: str) -> dict[str, list[str]]:
    """The three files between the @@BEGIN markers of the serial output."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.replace("\r", "").splitlines():
        if line.startswith("@@BEGIN "):
            current = out.setdefault(line.split()[1], [])
        elif line.startswith("@@END"):
            current = None
        elif current is not None and line:
            current.append(line)
    return out
