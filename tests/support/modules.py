"""Module-like objects built here from tests/fixtures/modules (gcc -c, then ld -r,
as Kbuild makes a .ko), and trees of them laid out like lib/modules/<release>/."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from ingest.readers.relocate import Relocatable
from tests.support import FIXTURES
from tests.support.tools import build, require

SRC = FIXTURES / "modules"
MODULES = {"alpha": ["alpha_main.c", "alpha_util.c"], "beta": ["beta_main.c"]}
#: arch -> (compiler, linker, flags, flags for a real __mcount_loc)
ARCHES = {
    "amd64": ("gcc", "ld", ["-fno-pic", "-mcmodel=kernel"], ["-pg", "-mfentry", "-mrecord-mcount"]),
    "armhf": ("arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-ld", ["-marm"], []),
    "s390x": ("s390x-linux-gnu-gcc", "s390x-linux-gnu-ld", [], ["-pg", "-mfentry", "-mrecord-mcount"]),
}


def build_modules(arch: str, dest: Path) -> dict[str, Path]:
    """alpha.ko and beta.ko for `arch`, by name (with __mcount_loc where the compiler makes one)."""
    cc, ld, flags, mcount = ARCHES[arch]
    require(cc, ld)
    probe = subprocess.run(
        [cc, *mcount, "-x", "c", "-c", "-o", os.devnull, "-"],
        input=b"int f(void){return 0;}",
        capture_output=True,
    )
    if probe.returncode != 0:
        mcount = []
    return {
        name: link_module(
            dest / f"{arch}-{name}.ko", [SRC / s for s in sources], ["-g", "-O2", *flags, *mcount], cc, ld
        )
        for name, sources in MODULES.items()
    }


def link_module(
    out: Path, sources: Sequence[Path], flags: Sequence[str], cc: str = "gcc", ld: str = "ld"
) -> Path:
    """A module-like object as Kbuild makes a .ko: each source compiled with
    `cc -c flags`, the objects linked with `ld -r` into `out`."""
    objs = []
    for src in sources:
        obj = out.with_name(f"{out.stem}-{src.name}.o")
        build([cc, "-c", *flags, "-o", obj, src])
        objs.append(obj)
    build([ld, "-r", "-o", out, *objs])
    return out


def install_modules(dest: Path, kos: dict[str, Path], layout: dict[str, str]) -> Path:
    """A lib/modules/<release>/kernel-like tree: module name -> its path in the tree."""
    tree = dest / "kernel-tree"
    for name, path in layout.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(kos[name], tree / path)
    return tree


def debug_names(obj: Relocatable) -> list[str]:
    """The names of the object's .debug_* sections that hold bytes (not SHT_NOBITS)."""
    return [h.name for h in obj.headers if h.name.startswith(".debug_") and h.type != 8]


#: conftest.module_db's builds: label -> (fixture program variant, module name -> path in the tree)
MODULE_BUILDS = {
    "A": ("dwarf4", {"alpha": "kernel/alpha.ko", "beta": "m/beta.ko"}),
    "B": ("dwarf5", {"beta": "m/beta.ko"}),
}


def module_builds(tmp: Path) -> Iterator[tuple[str, Path, Path]]:
    """(label, program, tree of its modules) of each of MODULE_BUILDS, built under `tmp`."""
    from tests.support.programs import compile_program

    kos = build_modules("amd64", tmp)
    for label, (program, layout) in MODULE_BUILDS.items():
        work = tmp / label
        work.mkdir()
        tree = install_modules(work, kos, layout)
        yield label, compile_program(work, program), tree
