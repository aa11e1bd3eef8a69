"""Where the real modules of Debian's 6.1.0-56 amd64 package are for the tests:
$KERNSURF_MODULES_61 (a tree of .ko files), else the modules/ tree `kernsurf
fetch` keeps beside the cached vmlinux (.ko.zst, decompressed on demand for
the oracles: readelf and bpftool read plain ELF files)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from ingest.archive import store
from ingest.readers import kmod

VMLINUX_61 = Path.home() / ".cache/kernsurf/debian/linux-image-6.1.0-56-amd64-dbg_6.1.192-2_amd64/vmlinux"
_PLAIN = Path(tempfile.gettempdir()) / "kernsurf-test-modules-61"


def module_tree() -> Path | None:
    """The module tree, None when neither is there."""
    given = os.environ.get("KERNSURF_MODULES_61")
    if given:
        return Path(given) if Path(given).is_dir() else None
    return store.modules_dir(VMLINUX_61) if VMLINUX_61.exists() else None


def module_file(rel: str) -> Path:
    """The file of module `rel` ("fs/ext4/ext4.ko") in the tree, as stored; skips when absent."""
    tree = module_tree()
    if tree is None:
        pytest.skip("no 6.1.0-56 module tree: `make fetch-test-kernel`, or set KERNSURF_MODULES_61")
    for candidate in (tree / rel, tree / f"{rel}.zst", tree / f"{rel}.xz", tree / f"{rel}.gz"):
        if candidate.exists():
            return candidate
    pytest.skip(f"{rel} is not in {tree}")


def real_module(rel: str) -> Path:
    """Module `rel` as a plain .ko file (decompressed once into a temporary directory)."""
    found = module_file(rel)
    if found.suffix == ".ko":
        return found
    plain = _PLAIN / rel
    if not plain.exists():
        plain.parent.mkdir(parents=True, exist_ok=True)
        part = plain.with_suffix(".part")
        part.write_bytes(kmod.read_module(found))
        part.rename(plain)
    return plain
