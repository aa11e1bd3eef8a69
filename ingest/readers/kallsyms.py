"""/proc/kallsyms and System.map files ("address type name" lines): the
symbols of a build read from BTF alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ingest.errors import IngestError
from ingest.model import Symbol, Variable
from ingest.readers import elf


def release_from_map_name(path: Path) -> str | None:
    """The release a System.map's file name carries (/boot/System.map-6.1.0-56-amd64);
    /proc/kallsyms and the map's contents never say it."""
    m = re.fullmatch(r"System\.map-(\d\S*)", path.name)
    return m.group(1) if m else None


def _entries(path: Path, types: str) -> Iterator[tuple[int, str, str]]:
    """(address, type letter, name) of the lines of a kallsyms/System.map whose type is in `types`."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read ({exc.strerror})") from None
    for line in lines:
        parts = line.split()
        if len(parts) < 3 or len(parts[1]) != 1 or parts[1] not in types or len(parts) > 3:
            continue  # a [module]-tagged line of /proc/kallsyms is not vmlinux's (read_entries keeps them)
        try:
            address = int(parts[0], 16)
        except ValueError:
            raise IngestError(f"{path}: not a kallsyms/System.map file (bad line {line[:60]!r})") from None
        yield address, parts[1], parts[2]


class Entry(NamedTuple):
    """One line of /proc/kallsyms, its [module] tag included."""

    address: int  # 0 for every line unless read as root
    kind: str  # the type letter: t, T, d, ...
    name: str
    module: str | None  # the [module] tag; None: vmlinux


def read_entries(path: Path) -> list[Entry]:
    """Every line of /proc/kallsyms, module ones tagged; empty when unreadable."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or len(parts[1]) != 1:
            continue
        try:
            address = int(parts[0], 16)
        except ValueError:
            raise IngestError(f"{path}: not a kallsyms file (bad line {line[:60]!r})") from None
        out.append(Entry(address, parts[1], parts[2], parts[3].strip("[]") if len(parts) > 3 else None))
    return out


def read_variables(path: Path) -> list[Variable]:
    """Data symbols (d, b, r, g, v types) of a kallsyms/System.map, as variables of unknown size."""
    return [
        Variable(
            name=name,
            address=address,
            size=None,
            binding="STB_LOCAL" if kind.islower() else "STB_GLOBAL",
            section=None,
            per_cpu=False,
            btf_var=False,
        )  # fmt: skip
        for address, kind, name in _entries(path, "dDbBrRgGvV")
    ]


def read_functions(path: Path) -> list[Symbol]:
    """Function symbols from /proc/kallsyms or a System.map ("addr type name")."""
    out = []
    for address, kind, name in _entries(path, "tTwW"):
        if name.startswith("__pfx_"):
            continue
        stem, suffixes = elf.split_symbol(name)
        binding = "STB_GLOBAL" if kind == "T" else "STB_WEAK" if kind in "wW" else "STB_LOCAL"
        out.append(
            Symbol(
                name=name,
                stem=stem,
                suffixes=suffixes,
                address=address,
                size=0,
                binding=binding,
                section=".text",
            )
        )
    return out
