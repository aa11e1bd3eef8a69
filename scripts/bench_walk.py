#!/usr/bin/env python3
"""DWARF walk benchmark: the walk of each module (as ingest.modules.module.read_module
runs it: relocated sections, DWARF prototypes of the names its split BTF has no
FUNC for; read_module also leaves out those vmlinux gives) by the Python walk and by the C walk (ingest/readers/_dwarfwalk.c),
one process, CPU seconds of each; with --check, the two walks' UnitFacts must
be equal. --skip-types walks without type DIEs at all: the DIE walk's floor.

Usage: bench_walk.py [--tree TREE] [--vmlinux VMLINUX] [--check] [--skip-types] [MODULE...]

MODULE is a path in the tree without its compression suffix ("fs/ext4/ext4.ko");
none: every module of the tree. TREE and VMLINUX default to the 6.1.0-56 amd64
package the cache keeps (`make fetch-test-kernel`)."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.archive import store  # noqa: E402 (after the sys.path line)
from ingest.modules.module import MODULE_BASE  # noqa: E402
from ingest.readers import dwarf, dwarf_forms, elf, kmod  # noqa: E402
from ingest.readers.btf import BtfInfo, read_btf  # noqa: E402

VMLINUX = Path.home() / ".cache/kernsurf/debian/linux-image-6.1.0-56-amd64-dbg_6.1.192-2_amd64/vmlinux"


def _walks(path: Path, base: BtfInfo | None, types: bool) -> tuple[float, float, bool]:
    """CPU seconds of the Python and the C walk of one module, and whether they agree."""
    opened = kmod.open_module(path, base=MODULE_BASE["amd64"])
    image = opened.image
    if not image.has(".debug_info"):
        return 0.0, 0.0, True
    raw_btf = image.section(".BTF")
    funcs = frozenset(read_btf(raw_btf, base=base).funcs) if raw_btf and base is not None else frozenset()
    sections = opened.linked.relocate([n for n in dwarf.DEBUG_SECTIONS if image.has(n)])
    units = dwarf.units_from_bytes(sections[".debug_info"], image.endian)
    config = dwarf.WalkConfig(funcs, want_layouts=False, want_types=types)
    out = []
    for mode in ("python", "c"):
        # Each walk keeps its own abbreviation caches, as a worker process would.
        dwarf._tables, dwarf_forms._decoders = _CACHES[mode]
        dwarf._accel = _ACCEL if mode == "c" else None
        start = time.process_time()
        facts = list(dwarf.walk(units, sections, image.endian, config, jobs=1))
        out.append((time.process_time() - start, facts))
    (py_s, py_facts), (c_s, c_facts) = out
    return py_s, c_s, py_facts == c_facts


_ACCEL = dwarf._accel
_CACHES: dict[str, tuple[dict, dict]] = {"python": ({}, {}), "c": ({}, {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*")
    parser.add_argument("--tree", type=Path)
    parser.add_argument("--vmlinux", type=Path, default=VMLINUX)
    parser.add_argument("--check", action="store_true", help="require equal UnitFacts")
    parser.add_argument("--skip-types", action="store_true", help="walk without type DIEs (the floor)")
    args = parser.parse_args()
    if _ACCEL is None:
        print("the C walk is not built (pip install -e . builds it) or KERNSURF_NO_ACCEL is set")
        return 1
    tree = args.tree or store.modules_dir(args.vmlinux)
    with open(args.vmlinux, "rb") as f:
        raw = elf.open_image(f).section(".BTF")
    base = read_btf(raw) if raw else None
    names = kmod.list_modules(tree)
    if args.modules:
        wanted = set(args.modules)
        names = [n for n in names if n.split(".ko")[0] + ".ko" in wanted]
    gc.disable()  # as the workers run
    total_py = total_c = 0.0
    differ = []
    for i, rel in enumerate(names, 1):
        py_s, c_s, same = _walks(tree / rel, base, not args.skip_types)
        total_py += py_s
        total_c += c_s
        if not same:
            differ.append(rel)
        if args.modules:
            print(f"{rel}: python {py_s:.3f} s, C {c_s:.3f} s ({py_s / max(c_s, 1e-9):.1f}x)")
        elif i % 500 == 0:
            print(f"{i}/{len(names)}: python {total_py:.1f} s, C {total_c:.1f} s", flush=True)
    print(
        f"{len(names)} modules: walk CPU python {total_py:.2f} s, C {total_c:.2f} s "
        f"({total_py / max(total_c, 1e-9):.1f}x)"
    )
    if args.check:
        print(f"UnitFacts differ in {len(differ)} modules" + (f": {differ[:10]}" if differ else ""))
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
