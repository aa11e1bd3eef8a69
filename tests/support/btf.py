"""BTF blobs compiled from
tests/fixtures/ctypes/types.c by real producers, and a tiny BTF writer for
hand-made blobs (both byte orders, every kind, deliberate damage)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.support import FIXTURES
from tests.support.tools import build

FIXTURE = FIXTURES / "ctypes" / "types.c"
PRODUCERS = ("gcc", "pahole")

_built: dict[str, bytes | str] = {}  # producer (or "dwarf") -> BTF bytes / object path, or skip reason


def _run(cmd: list[str]) -> str | None:
    """Run `cmd`; the error text when it fails, None when it works."""
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return f"{' '.join(cmd)}: {getattr(e, 'stderr', '') or e}".strip()
    return None


def _btf_section(obj: Path) -> bytes | None:
    """The .BTF section of an ELF object, None when it has none."""
    with open(obj, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".BTF")
        return None if sec is None else sec.data()


def build_all(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes | str]:
    """Compile the fixture once per session: "gcc" = `gcc -gbtf`, "pahole" =
    `pahole -J` over `gcc -g` DWARF, "dwarf" = that DWARF object's path.
    Each value is the result or, as a str starting with "skip:", why not."""
    if _built:
        return _built
    out = tmp_path_factory.mktemp("ctypes")
    gcc = shutil.which("gcc")
    if gcc is None:
        _built.update(dict.fromkeys(("gcc", "pahole", "dwarf"), "skip: no gcc"))
        return _built
    obj = out / "types_btf.o"
    err = _run([gcc, "-gbtf", "-O0", "-c", str(FIXTURE), "-o", str(obj)])
    blob = None if err else _btf_section(obj)
    _built["gcc"] = blob if blob else f"skip: gcc -gbtf gave no .BTF ({err or 'empty'})"
    dwarf = out / "types_dwarf.o"
    err = _run([gcc, "-g", "-O0", "-c", str(FIXTURE), "-o", str(dwarf)])
    _built["dwarf"] = f"skip: gcc -g failed: {err}" if err else str(dwarf)
    pahole = shutil.which("pahole")
    if pahole is None:
        _built["pahole"] = "skip: pahole not installed (Debian package dwarves)"
    elif err:
        _built["pahole"] = _built["dwarf"]
    else:
        encoded = out / "types_pahole.o"
        shutil.copy(dwarf, encoded)
        perr = _run([pahole, "-J", "--btf_gen_floats", str(encoded)])  # as the kernel does
        blob = None if perr else _btf_section(encoded)
        _built["pahole"] = blob if blob else f"skip: pahole -J gave no .BTF ({perr or 'empty'})"
    return _built


def btf_only(program: Path, dest: Path) -> tuple[Path, Path]:
    """A BTF-only input like /sys/kernel/btf/vmlinux with /proc/kallsyms: the
    .BTF `pahole -J` makes from a copy of `program`, as dest/vmlinux.btf, and
    `nm -n program` as dest/System.map."""
    elf = dest / "prog"
    shutil.copy(program, elf)
    build(["pahole", "-J", elf])
    blob = _btf_section(elf)
    assert blob, f"pahole -J {elf} wrote no .BTF"
    (dest / "vmlinux.btf").write_bytes(blob)
    (dest / "System.map").write_text(build(["nm", "-n", program]))
    return dest / "vmlinux.btf", dest / "System.map"


def need(value: bytes | str) -> bytes | str:
    """Skip the calling test when a build step was unavailable."""
    if isinstance(value, str) and value.startswith("skip:"):
        pytest.skip(value[5:].strip())
    return value


# ---------------------------------------------------------------------------
# A minimal BTF writer (independent of ingest/btf_format.py on purpose)
# ---------------------------------------------------------------------------


class BtfWriter:
    """Collects types (ids from 1 in order of the calls) and writes a blob.
    With `base` it writes a split blob over the base's: ids continue after the
    base's last id, string offsets after its strings, and names the base holds
    are referenced there (as pahole does for modules). Add nothing to a base
    after making a split writer over it."""

    def __init__(self, base: BtfWriter | None = None) -> None:
        self.base = base
        self.first_id = base.first_id + len(base.types) if base else 1
        self.str_start = base.str_start + len(base.strings) if base else 0
        self.strings = bytearray(b"" if base else b"\0")
        self.offsets: dict[str, int] = {} if base else {"": 0}
        self.types: list[tuple[int, int, int, str, tuple]] = []  # name_off, info, st, fmt, extra

    def known(self, text: str) -> int | None:
        """Offset of `text` in this blob's or a base's strings, None if absent."""
        off = self.offsets.get(text)
        if off is None and self.base is not None:
            return self.base.known(text)
        return off

    def s(self, text: str | None) -> int:
        """Offset of `text` in the string section (added on first use)."""
        text = text or ""
        off = self.known(text)
        if off is None:
            off = self.offsets[text] = self.str_start + len(self.strings)
            self.strings += text.encode() + b"\0"
        return off

    def add(
        self,
        kind: int,
        name: str | None,
        st: int,
        vlen: int = 0,
        kflag: int = 0,
        fmt: str = "",
        extra: tuple = (),
    ) -> int:
        """Append one raw type; returns its id."""
        info = (kflag << 31) | (kind << 24) | vlen
        self.types.append((self.s(name), info, st, fmt, extra))
        return self.first_id + len(self.types) - 1

    # one helper per kind -------------------------------------------------
    def int_(self, name: str, size: int, encoding: int = 0) -> int:
        return self.add(1, name, size, fmt="I", extra=(encoding << 24 | size * 8,))

    def ptr(self, t: int) -> int:
        return self.add(2, None, t)

    def array(self, elem: int, index: int, n: int) -> int:
        return self.add(3, None, 0, fmt="III", extra=(elem, index, n))

    def aggregate(
        self, kind: str, name: str | None, size: int, members: list[tuple[str | None, int, int, int]]
    ) -> int:
        """members: (name, type, bit_offset, bit_size); kind_flag if any bitfield."""
        kflag = int(any(m[3] for m in members))
        extra = []
        for mname, mt, off, bits in members:
            extra += [self.s(mname), mt, (bits << 24 | off) if kflag else off]
        return self.add(
            4 if kind == "struct" else 5, name, size, len(members), kflag, "III" * len(members), tuple(extra)
        )

    def enum(self, name: str | None, size: int, values: list[tuple[str, int]], signed: bool = False) -> int:
        extra = []
        for vname, v in values:
            extra += [self.s(vname), v & 0xFFFFFFFF]
        return self.add(6, name, size, len(values), int(signed), "II" * len(values), tuple(extra))

    def enum64(self, name: str | None, values: list[tuple[str, int]], signed: bool = False) -> int:
        extra = []
        for vname, v in values:
            v &= (1 << 64) - 1
            extra += [self.s(vname), v & 0xFFFFFFFF, v >> 32]
        return self.add(19, name, 8, len(values), int(signed), "III" * len(values), tuple(extra))

    def fwd(self, name: str, union: bool = False) -> int:
        return self.add(7, name, 0, kflag=int(union))

    def typedef(self, name: str, t: int) -> int:
        return self.add(8, name, t)

    def qualifier(self, word: str, t: int) -> int:
        return self.add({"volatile": 9, "const": 10, "restrict": 11}[word], None, t)

    def func(self, name: str, proto: int, linkage: int = 1) -> int:
        return self.add(12, name, proto, vlen=linkage)

    def proto(self, ret: int, params: list[tuple[str | None, int]]) -> int:
        extra = []
        for pname, pt in params:
            extra += [self.s(pname), pt]
        return self.add(13, None, ret, len(params), 0, "II" * len(params), tuple(extra))

    def var(self, name: str, t: int, linkage: int = 1) -> int:
        return self.add(14, name, t, fmt="I", extra=(linkage,))

    def datasec(self, name: str, size: int, entries: list[tuple[int, int, int]]) -> int:
        extra = [x for e in entries for x in e]
        return self.add(15, name, size, len(entries), 0, "III" * len(entries), tuple(extra))

    def float_(self, name: str, size: int) -> int:
        return self.add(16, name, size)

    def decl_tag(self, tag: str, t: int, component: int = -1) -> int:
        return self.add(17, tag, t, fmt="i", extra=(component,))

    def type_tag(self, tag: str, t: int) -> int:
        return self.add(18, tag, t)

    def blob(self, order: str = "<") -> bytes:
        """The whole BTF blob in byte order "<" or ">"."""
        body = b"".join(
            struct.pack(order + "III" + fmt, n, info, st, *extra) for n, info, st, fmt, extra in self.types
        )
        header = struct.pack(order + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(body), len(body), len(self.strings))
        return header + body + bytes(self.strings)
