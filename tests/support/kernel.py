"""The real kernels the tests read when they are cached (`make fetch-test-kernel`;
~/.cache/kernsurf, or $XDG_CACHE_HOME/kernsurf): Debian's 6.1.0-56 amd64 vmlinux
with its modules, and the 6.12.113 amd64 one. Modules are $KERNSURF_MODULES_61
(a tree of .ko files), else the modules/ tree `kernsurf fetch` keeps beside the
vmlinux (.ko.zst, decompressed on demand for the oracles: readelf and bpftool
read plain ELF files)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from ingest.archive import store
from ingest.readers import kmod
from tests.support.tools import require

CACHE = store.cache_root() / "debian"
REAL_KERNEL = CACHE / "linux-image-6.1.0-56-amd64-dbg_6.1.192-2_amd64" / "vmlinux"
KERNEL_612 = CACHE / "linux-image-6.12.113+deb13-amd64-dbg_6.12.113-1_amd64" / "vmlinux"
_PLAIN = Path(tempfile.gettempdir()) / "kernsurf-test-modules-61"


def module_tree() -> Path | None:
    """The 6.1.0-56 module tree, None when neither is there."""
    given = os.environ.get("KERNSURF_MODULES_61")
    if given:
        return Path(given) if Path(given).is_dir() else None
    return store.modules_dir(REAL_KERNEL) if REAL_KERNEL.exists() else None


def module_file(rel: str) -> Path:
    """The file of module `rel` ("fs/ext4/ext4.ko") in the tree, as stored; skips when absent."""
    tree = module_tree()
    if tree is None:
        pytest.skip("no 6.1.0-56 module tree: `make fetch-test-kernel`, or set KERNSURF_MODULES_61")
    for candidate in (tree / rel, tree / f"{rel}.zst", tree / f"{rel}.xz", tree / f"{rel}.gz"):
        if candidate.exists():
            return candidate
    pytest.skip(f"{rel} is not in {tree}")


def module_subset(dest: Path, rels: Sequence[str]) -> Path:
    """dest/kernel: a module tree of links to these modules of the 6.1.0-56 package,
    named as stored (.ko.zst); skips when the image or its module tree is not cached."""
    if not REAL_KERNEL.exists() or module_tree() is None:
        pytest.skip("the 6.1.0-56 image and its module tree are not cached: `make fetch-test-kernel`")
    tree = dest / "kernel"
    for rel in rels:
        found = module_file(rel)
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / (rel + found.name.removeprefix(Path(rel).name))).symlink_to(found)
    return tree


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


def kfunc_sets(ko: Path) -> dict[str, dict[str, int]]:
    """The oracle of a 6.1.0-56 module's kfunc sets: set8 -> {kfunc: flags}, from readelf
    and bpftool over the module file (its split BTF over the cached vmlinux's)."""
    require("bpftool", "readelf")
    syms = subprocess.run(["readelf", "-sW", str(ko)], capture_output=True, text=True, check=True).stdout
    sets = {
        f[7].removeprefix("__BTF_ID__set8__"): int(f[1], 16)
        for f in (line.split() for line in syms.splitlines())
        if len(f) >= 8 and f[7].startswith("__BTF_ID__set8__")
    }
    dump = subprocess.run(
        ["readelf", "-x", ".BTF_ids", str(ko)], capture_output=True, text=True, check=True
    ).stdout
    raw = b"".join(
        bytes.fromhex("".join(m.group(1).split()))
        for m in re.finditer(r"^\s+0x[0-9a-f]+ ((?:[0-9a-f]{2,8} ){1,4})", dump, re.M)
    )
    btf = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(ko), "-B", str(REAL_KERNEL)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    funcs = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\[(\d+)\] FUNC '([^']+)'", btf, re.M)}
    out = {}
    for name, offset in sets.items():
        cnt = int.from_bytes(raw[offset : offset + 4], "little")
        pairs = [raw[offset + 8 + 8 * i : offset + 16 + 8 * i] for i in range(cnt)]
        out[name] = {funcs[int.from_bytes(p[:4], "little")]: int.from_bytes(p[4:], "little") for p in pairs}
    return out
