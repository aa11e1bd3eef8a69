"""Gaps found by ingesting Debian's 6.12.113 images of every architecture
(amd64, arm64, armhf, ppc64el, riscv64, s390x), each reproduced on a small
program compiled here the way the kernel builds the construct in question."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest import pipeline
from ingest.readers import elf
from tests.support.tools import build


def gcc(cwd: Path, *args: str) -> None:
    build(["gcc", *args], cwd=cwd)


# An x86 vmlinux has one .notes section where Xen's ELF notes
# (ELFNOTE(Xen, XEN_ELFNOTE_VIRT_BASE = 3, ...)) come before the GNU build-id
# note, which also has type 3 (NT_GNU_BUILD_ID): taking the first note of type 3
# gave every Debian amd64 kernel the same "build-id" (00000080ffffffff), so the
# second amd64 kernel of a manifest was skipped as already stored.
XEN_NOTES = r"""
struct xen_note { unsigned int namesz, descsz, type; char name[4]; unsigned char desc[8]; };
struct gnu_note { unsigned int namesz, descsz, type; char name[4]; unsigned char desc[20]; };
__attribute__((section(".notes"), aligned(4), used))
static const struct { struct xen_note xen; struct gnu_note gnu; } notes = {
    {4, 8, 3, "Xen", {0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff}},
    {4, 20, 3, "GNU", {BUILD_ID}},
};
int main(void) { return 0; }
"""


def test_build_id_skips_xen_notes_of_the_same_type(tmp_path):
    (tmp_path / "x.c").write_text(XEN_NOTES)
    ids = []
    for n in (1, 2):
        gcc(
            tmp_path,
            "-g",
            "-O1",
            "-Wl,--build-id=none",
            f"-DBUILD_ID={', '.join([str(n)] * 20)}",
            "x.c",
            "-o",
            f"x{n}",
        )
        with open(tmp_path / f"x{n}", "rb") as f:
            ids.append(elf.build_id(elf.open_image(f)))
    assert ids == [f"{n:02x}" * 20 for n in (1, 2)]
    db = tmp_path / "k.db"
    for n in (1, 2):
        assert not pipeline.ingest(tmp_path / f"x{n}", db, pipeline.Identity(label=f"x{n}"), jobs=1).skipped


# arm64 and riscv64 link copies of code under prefixed symbols: the EFI stub
# (`objcopy --prefix-symbols=__efistub_`, drivers/firmware/efi/libstub/Makefile),
# arm64's nVHE hypervisor (`__kvm_nvhe_`, arch/arm64/kvm/hyp/nvhe/Makefile) and
# the position-independent early code (`__pi_`, arch/{arm64,riscv}/kernel/pi/Makefile).
# DWARF names the function `handle_cmdline_files`, the only symbol is
# `__efistub_handle_cmdline_files`: the function has an out-of-line copy, so it is
# not "Full" inline. Debian 6.12.113: 234 such functions on arm64, 71 on riscv64.
PREFIXED = {
    "stub.c": "__attribute__((noinline)) int stub_helper(int x) { return x * 7 + 1; }\n"
    "int stub_entry(int x) { return stub_helper(x) + stub_helper(x + 1); }\n",
    "main.c": "int __efistub_stub_entry(int x);\nint main(int argc, char **argv) { return __efistub_stub_entry(argc); }\n",
}


@pytest.mark.xfail(
    strict=True,
    reason="gap: symbols under __efistub_/__kvm_nvhe_/__pi_ prefixes are not tied "
    "to their DWARF function (arm64, riscv64)",
)
def test_prefixed_symbol_copies_are_not_full_inline(tmp_path):
    for name, text in PREFIXED.items():
        (tmp_path / name).write_text(text)
    gcc(tmp_path, "-g", "-O2", "-c", "stub.c", "-o", "stub.o")
    build(["objcopy", "--prefix-symbols=__efistub_", "stub.o"], cwd=tmp_path)
    gcc(tmp_path, "-g", "-O2", "main.c", "stub.o", "-o", "prog")
    db = tmp_path / "k.db"
    pipeline.ingest(tmp_path / "prog", db, pipeline.Identity(label="prefixed"), jobs=1)
    rows = dict(
        (name, inline)
        for name, inline in sqlite3.connect(db).execute(
            "SELECT name, inline FROM function_status WHERE name IN ('stub_helper', 'stub_entry')"
        )
    )
    assert rows == {"stub_helper": "No", "stub_entry": "No"}


# Debian's banners carry no build number after '#': "... 2.44) # SMP
# PREEMPT_DYNAMIC Debian 6.12.113-1 (2026-10-15)", so `kernsurf ingest` without
# --version stored no package version for any Debian image.
@pytest.mark.parametrize(
    "banner, version",
    [
        (
            "Linux version 6.12.113+deb13-s390x (debian-kernel@lists.debian.org) (s390x-linux-gnu-gcc-14 (Debian "
            "14.2.0-19) 14.2.0, GNU ld (GNU Binutils for Debian) 2.44) # SMP Debian 6.12.113-1 (2026-10-15)",
            "6.12.113-1",
        ),
        (
            "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, "
            "GNU ld (GNU Binutils for Debian) 2.40) # SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)",
            "6.1.192-2",
        ),
    ],
)
def test_debian_banner_without_build_number(banner, version):
    assert elf.package_version(banner) == version


# Debian builds featuresets (rt) from a patched copy of the tree: the CUs of
# 6.12.113+deb13-rt-amd64 are named "debian/build/source_rt/init/main.c" with
# DW_AT_comp_dir "debian/build/build_amd64_rt_amd64". Only debian/build/build_*/
# is stripped, so 181 245 of its 181 310 instances keep "debian/build/source_rt/"
# in their paths (4 011 such rows in `paths`), and the Flavor group's rt variant
# shares no paths with its baseline.
def test_debian_featureset_source_dir_is_stripped(tmp_path):
    top = tmp_path / "top"
    source, build = top / "debian/build/source_rt", top / "debian/build/build_amd64_rt_amd64"
    for d in (source / "kernel", source / "include", build):
        d.mkdir(parents=True)
    (source / "include/h.h").write_text("static inline int twice(int x) { return 2 * x; }\n")
    (source / "kernel/main.c").write_text(
        '#include "h.h"\n__attribute__((noinline)) int rt_helper(int x) '
        "{ return twice(x) + 1; }\nint main(int argc, char **argv) "
        "{ return rt_helper(argc); }\n"
    )
    # As Debian's rules do: compile in the build dir, map the package top dir away.
    gcc(
        build,
        "-g",
        "-O1",
        f"-I{source}/include",
        f"-fdebug-prefix-map={top}/=",
        "-c",
        f"{source}/kernel/main.c",
        "-o",
        "main.o",
    )
    gcc(build, "main.o", "-o", "prog")
    db = tmp_path / "k.db"
    pipeline.ingest(build / "prog", db, pipeline.Identity(label="rt"), jobs=1)
    paths = {p for (p,) in sqlite3.connect(db).execute("SELECT path FROM paths")}
    assert paths == {"kernel/main.c", "include/h.h"}
