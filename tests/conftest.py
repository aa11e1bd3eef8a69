"""Shared fixtures: C programs compiled at test time with the machine's gcc."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REAL_KERNEL = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "kernsurf"
    / "debian"
    / "linux-image-6.1.0-56-amd64-dbg_6.1.192-2_amd64"
    / "vmlinux"
)

#: Compiler variants of the fixture program: name -> (gcc, extra flags).
VARIANTS = {
    "dwarf5": ("gcc", ["-gdwarf-5"]),
    "dwarf4": ("gcc", ["-gdwarf-4"]),
    "zlib": ("gcc", ["-gdwarf-5", "-gz=zlib"]),
    "armhf": (
        "arm-linux-gnueabihf-gcc",
        ["-gdwarf-5"],
    ),  # 32-bit (gcc-multilib conflicts with cross compilers)
    "s390x": ("s390x-linux-gnu-gcc", ["-gdwarf-5"]),
}


def compile_program(dest: Path, variant: str) -> Path:
    """Build tests/fixtures/program the way Debian builds a kernel: sources in a
    tree (kernel/, include/), compiled from debian/build/build_<v>/ with
    relative paths, linked into one executable. Returns its path."""
    cc, flags = VARIANTS[variant]
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed (make test installs it)")
    tree = dest / f"linux-{variant}"
    (tree / "kernel").mkdir(parents=True)
    (tree / "include").mkdir()
    src = FIXTURES / "program"
    for name in ("unit_a.c", "unit_b.c", "main.c", "asm_part.S"):
        shutil.copy(src / name, tree / "kernel" / name)
    shutil.copy(src / "common.h", tree / "include" / "common.h")
    build = tree / "debian" / "build" / f"build_{variant}"
    build.mkdir(parents=True)
    objects = []
    for name in ("unit_a.c", "unit_b.c", "main.c", "asm_part.S"):
        obj = name.rsplit(".", 1)[0] + ".o"
        debug = ["-g", "-O2"] + flags if name.endswith(".c") else [f for f in flags if f.startswith("-m")]
        run([cc, *debug, "-I../../../include", "-c", f"../../../kernel/{name}", "-o", obj], build, variant)
        objects.append(obj)
    out = build / "prog"
    link = [f for f in flags if f.startswith(("-m", "-gz"))]
    run(
        [cc, *link, "-O2", "-o", "prog", *objects]
        + (["-nostdlib", "-static", "-Wl,-e,main"] if variant in ("s390x", "armhf") else []),
        build,
        variant,
    )
    return out


def run(cmd: list[str], cwd: Path, variant: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        if variant in ("armhf", "s390x"):
            pytest.skip(f"cannot build the {variant} variant here: {proc.stderr.strip()[:200]}")
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr}")


@pytest.fixture(scope="session")
def program(tmp_path_factory) -> Path:
    """The fixture program, x86-64 DWARF 5."""
    return compile_program(tmp_path_factory.mktemp("program"), "dwarf5")


@pytest.fixture(scope="session")
def program_db(tmp_path_factory, program) -> Path:
    """A database holding the fixture program as one build."""
    from ingest import pipeline

    db = tmp_path_factory.mktemp("db") / "fixture.db"
    pipeline.ingest(program, db, pipeline.Identity(label="fixture"), jobs=1)
    return db


@pytest.fixture(scope="session")
def real_kernel() -> Path:
    """The cached Debian 6.1.0-56 amd64 vmlinux (make fetch-test-kernel)."""
    if not REAL_KERNEL.exists():
        pytest.skip(f"no cached kernel at {REAL_KERNEL}; run `make fetch-test-kernel`")
    return REAL_KERNEL


@pytest.fixture(scope="session")
def kernel_db(tmp_path_factory, real_kernel) -> Path:
    """A database holding the real 6.1.0-56 kernel (with its config, when cached), ingested once."""
    from ingest import pipeline

    db = tmp_path_factory.mktemp("real") / "kernel.db"
    config = real_kernel.parent / "config"
    pipeline.ingest(
        real_kernel,
        db,
        pipeline.Identity(distro="debian", version="6.1.192-2"),
        config=config if config.exists() else None,
    )
    return db
