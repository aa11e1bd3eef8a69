#!/usr/bin/env python3
"""DWARF walk benchmark: the walk of each module (as ingest.modules.module.read_module
runs it: relocated sections, DWARF prototypes of the names its split BTF has no
FUNC for; read_module also leaves out those vmlinux gives) by the Python walk and by the C walk (ingest/readers/_dwarfwalk.c),
one process, CPU seconds of each; with --check, the two walks' UnitFacts must
be equal. --skip-types walks without type DIEs at all: the DIE walk's floor.
--c-only times the C walk alone; --walk-vmlinux walks VMLINUX itself (as
vmlinux.read.read_vmlinux does: with types, DWARF prototypes of the names its BTF has no
FUNC for) instead of the modules.

Usage: bench_walk.py [--tree TREE] [--vmlinux VMLINUX] [--check] [--skip-types] [--c-only] [--walk-vmlinux] [MODULE...]

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


def _walks(
    path: Path, base: BtfInfo | None, types: bool, modes: tuple[str, ...]
) -> tuple[float, float, bool]:
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
    return _timed(units, sections, image.endian, config, modes)


def _timed(
    units: list[dwarf.Unit],
    sections: dict[str, bytes],
    endian: str,
    config: dwarf.WalkConfig,
    modes: tuple[str, ...],
) -> tuple[float, float, bool]:
    """CPU seconds of the walks `modes` ("python", "c") of the units (0 for one not run), and whether they agree."""
    out: dict[str, tuple[float, list[dwarf.UnitFacts] | None]] = {"python": (0.0, None), "c": (0.0, None)}
    for mode in modes:
        # Each walk keeps its own abbreviation caches, as a worker process would.
        dwarf._tables, dwarf_forms._decoders = _CACHES[mode]
        dwarf._accel = _ACCEL if mode == "c" else None
        start = time.process_time()
        facts = list(dwarf.walk(units, sections, endian, config, jobs=1))
        out[mode] = (time.process_time() - start, facts)
    (py_s, py_facts), (c_s, c_facts) = out["python"], out["c"]
    return py_s, c_s, py_facts == c_facts


def _figures(py_s: float, c_s: float, modes: tuple[str, ...]) -> str:
    """The CPU seconds of the walks that ran."""
    if modes == ("c",):
        return f"C {c_s:.2f} s"
    return f"python {py_s:.2f} s, C {c_s:.2f} s ({py_s / max(c_s, 1e-9):.1f}x)"


def _walk_vmlinux(path: Path, btf: BtfInfo | None, modes: tuple[str, ...]) -> int:
    """Times the walk of the vmlinux itself, as vmlinux.read.read_vmlinux configures it."""
    with open(path, "rb") as f:
        image = elf.open_image(f)
        sections = {n: data for n in dwarf.DEBUG_SECTIONS if (data := image.section(n)) is not None}
        units = dwarf.units_from_bytes(sections[".debug_info"], image.endian)  # pyelftools' list, faster
    config = dwarf.WalkConfig(frozenset(btf.funcs) if btf else frozenset(), btf is None)
    py_s, c_s, same = _timed(units, sections, image.endian, config, modes)
    print(f"{path.name} ({len(units)} units): walk CPU {_figures(py_s, c_s, modes)}")
    return 0 if same or len(modes) == 1 else 1


_ACCEL = dwarf._accel
_CACHES: dict[str, tuple[dict, dict]] = {"python": ({}, {}), "c": ({}, {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*")
    parser.add_argument("--tree", type=Path)
    parser.add_argument("--vmlinux", type=Path, default=VMLINUX)
    parser.add_argument("--check", action="store_true", help="require equal UnitFacts")
    parser.add_argument("--skip-types", action="store_true", help="walk without type DIEs (the floor)")
    parser.add_argument("--c-only", action="store_true", help="time the C walk alone")
    parser.add_argument("--walk-vmlinux", action="store_true", help="walk VMLINUX instead of the modules")
    args = parser.parse_args()
    if args.check and args.c_only:
        parser.error("--check compares the two walks: not with --c-only")
    if _ACCEL is None:
        print("the C walk is not built (pip install -e . builds it) or KERNSURF_NO_ACCEL is set")
        return 1
    tree = args.tree or store.modules_dir(args.vmlinux)
    with open(args.vmlinux, "rb") as f:
        raw = elf.open_image(f).section(".BTF")
    base = read_btf(raw) if raw else None
    modes = ("c",) if args.c_only else ("python", "c")
    if args.walk_vmlinux:
        gc.disable()
        return _walk_vmlinux(args.vmlinux, base, modes)
    names = kmod.list_modules(tree)
    if args.modules:
        wanted = set(args.modules)
        names = [n for n in names if n.split(".ko")[0] + ".ko" in wanted]
    gc.disable()  # as the workers run
    total_py = total_c = 0.0
    differ = []
    for i, rel in enumerate(names, 1):
        py_s, c_s, same = _walks(tree / rel, base, not args.skip_types, modes)
        total_py += py_s
        total_c += c_s
        if not same:
            differ.append(rel)
        if args.modules:
            print(f"{rel}: python {py_s:.3f} s, C {c_s:.3f} s ({py_s / max(c_s, 1e-9):.1f}x)")
        elif i % 500 == 0:
            print(f"{i}/{len(names)}: python {total_py:.1f} s, C {total_c:.1f} s", flush=True)
    print(f"{len(names)} modules: walk CPU {_figures(total_py, total_c, modes)}")
    if args.check:
        print(f"UnitFacts differ in {len(differ)} modules" + (f": {differ[:10]}" if differ else ""))
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
