"""The C fixtures under tests/fixtures/, compiled the way a kernel build compiles them."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support import FIXTURES
from tests.support.tools import build

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
_PROGRAM = ("unit_a.c", "unit_b.c", "main.c", "asm_part.S")
#: Link options that make the `_ftrace_events` section bounds the kernel's linker script gives.
FTRACE_EVENTS = [f"-Wl,--defsym=__{e}_ftrace_events=__{e}__ftrace_events" for e in ("start", "stop")]


def kernel_tree(
    dest: Path, name: str, sources: Path, kernel: tuple[str, ...], include: tuple[str, ...]
) -> Path:
    """`sources` laid out as a kernel tree (kernel/, include/) under dest/linux-<name>;
    returns its build directory, debian/build/build_<name>/ (compiled from there
    with relative paths, as Debian builds, paths normalise to kernel/<file>)."""
    tree = dest / f"linux-{name}"
    (tree / "kernel").mkdir(parents=True)
    (tree / "include").mkdir()
    for file in kernel:
        shutil.copy(sources / file, tree / "kernel" / file)
    for file in include:
        shutil.copy(sources / file, tree / "include" / file)
    out = tree / "debian" / "build" / f"build_{name}"
    out.mkdir(parents=True)
    return out


def compile_program(dest: Path, variant: str) -> Path:
    """Build tests/fixtures/program the way Debian builds a kernel: sources in a
    tree (kernel/, include/), compiled from debian/build/build_<v>/ with
    relative paths, linked into one executable. Returns its path."""
    cc, flags = VARIANTS[variant]
    cross = variant in ("s390x", "armhf")
    skip_if = ("", f"cannot build the {variant} variant here") if cross else None
    work = kernel_tree(dest, variant, FIXTURES / "program", _PROGRAM, ("common.h",))
    objects = []
    for name in _PROGRAM:
        obj = name.rsplit(".", 1)[0] + ".o"
        debug = ["-g", "-O2"] + flags if name.endswith(".c") else [f for f in flags if f.startswith("-m")]
        build(
            [cc, *debug, "-I../../../include", "-c", f"../../../kernel/{name}", "-o", obj],
            cwd=work,
            skip_if=skip_if,
        )
        objects.append(obj)
    link = [f for f in flags if f.startswith(("-m", "-gz"))]
    static = ["-nostdlib", "-static", "-Wl,-e,main"] if cross else []
    build([cc, *link, "-O2", "-o", "prog", *objects, *static], cwd=work, skip_if=skip_if)
    return work / "prog"


def compile_version(dest: Path, version: str) -> Path:
    """tests/fixtures/frontend laid out like a kernel tree and compiled from
    debian/build/build_<version>/ (paths normalise to kernel/fe_a.c); "v2"
    is the same source with -DV2, the "small source edit"."""
    work = kernel_tree(dest, version, FIXTURES / "frontend", ("fe_a.c", "fe_b.c"), ("fe.h",))
    flags = ["-DV2"] if version == "v2" else []
    for name in ("fe_a.c", "fe_b.c"):
        build(["gcc", "-g", "-O2", *flags, "-I../../../include", "-c", f"../../../kernel/{name}", "-o", name[:-2] + ".o"], cwd=work)  # fmt: skip
    build(["gcc", "-O2", "-o", "prog", "fe_a.o", "fe_b.o"], cwd=work)
    return work / "prog"


def compile_pair(dest: Path) -> tuple[Path, Path]:
    """tests/fixtures/diff/pair.c as build "a" and, with -DB, build "b"."""
    shutil.copy(FIXTURES / "diff" / "pair.c", dest / "pair.c")
    for label, flags in (("a", []), ("b", ["-DB"])):
        build(["gcc", "-O2", "-g", *flags, "-o", label, "pair.c"], cwd=dest)
    return dest / "a", dest / "b"


def compile_traced(source: Path, out: Path, *flags: str) -> Path:
    """A fixture with trace events (tests/fixtures/surfaces, syscall_events) linked
    as the kernel links them: -fno-toplevel-reorder keeps the `_ftrace_events`
    pointers in source order, FTRACE_EVENTS bounds their section."""
    build(["gcc", "-g", "-O2", "-fno-toplevel-reorder", *flags, source, "-o", out, *FTRACE_EVENTS])
    return out


def compile_syscall_events(dest: Path) -> Path:
    """tests/fixtures/syscall_events linked as the kernel links `_ftrace_events`,
    its per-CPU section renamed to the kernel's .data..percpu."""
    out = compile_traced(FIXTURES / "syscall_events" / "syscall_events.c", dest / "syscall_events")
    build(["objcopy", "--rename-section", "percpu_area=.data..percpu", out])
    return out


def compile_bpf(source: Path, out: Path, *, target: str = "bpf", debug: bool = True) -> Path:
    """A BPF object (clang -target bpf|bpfeb -O2, with -g unless debug is False)."""
    build(
        ["clang", "-target", target, *(["-g"] if debug else []), "-O2", "-c", source, "-o", out],
        skip_if=("bpf/bpf_helpers.h", "libbpf headers are missing (apt-get install libbpf-dev)"),
    )
    return out
