"""File names from a .debug_line program header (DWARF 2-5).

Only the header is read: the walker needs DW_AT_decl_file -> path, never the
line rows. Parsing it directly is ~10x faster than a generic parser, which
matters with thousands of units.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

from ingest.readers.dwarf_forms import BadDwarf

#: A string section lookup by offset (dwarf.Strings.strp, .line_strp).
StringAt = Callable[[int], str]

DW_LNCT_path, DW_LNCT_directory_index = 1, 2


class _Reader:
    __slots__ = ("d", "p", "endian")

    def __init__(self, data: bytes, pos: int, endian: str) -> None:
        self.d, self.p = data, pos
        self.endian: Literal["little", "big"] = "big" if endian == "big" else "little"

    def u(self, n: int) -> int:
        v = int.from_bytes(self.d[self.p : self.p + n], self.endian)
        self.p += n
        return v

    def uleb(self) -> int:
        v = s = 0
        while True:
            b = self.d[self.p]
            self.p += 1
            v |= (b & 0x7F) << s
            s += 7
            if b < 0x80:
                return v

    def cstr(self) -> str:
        end = self.d.index(0, self.p)
        s = self.d[self.p : end].decode("utf-8", "replace")
        self.p = end + 1
        return s


def _form_value(
    r: _Reader, form: int, offset_size: int, strp: StringAt, line_strp: StringAt
) -> int | str | None:
    if form == 0x08:
        return r.cstr()
    if form == 0x1F:
        return line_strp(r.u(offset_size))
    if form == 0x0E:
        return strp(r.u(offset_size))
    if form == 0x0F:
        return r.uleb()
    if form in (0x0B, 0x05, 0x06, 0x07):
        return r.u({0x0B: 1, 0x05: 2, 0x06: 4, 0x07: 8}[form])
    if form == 0x1E:  # data16 (MD5)
        r.p += 16
        return None
    if form == 0x09:
        r.p += r.uleb()
        return None
    raise BadDwarf(f"unsupported form 0x{form:x} in a line table header")


def file_names(
    data: bytes, offset: int, endian: str, comp_dir: str | None, strp: StringAt, line_strp: StringAt
) -> list[str]:
    """Paths indexed like DW_AT_decl_file (DWARF 2-4 count from 1: index 0 repeats file 1)."""
    try:
        r = _Reader(data, offset, endian)
        length = r.u(4)
        offset_size = 4
        if length == 0xFFFFFFFF:
            r.u(8)
            offset_size = 8
        version = r.u(2)
        if version >= 5:
            r.p += 2  # address_size, segment_selector_size
        r.u(offset_size)  # header_length
        r.p += 4 if version >= 4 else 3  # min_inst_length, [max_ops], default_is_stmt, line_base
        r.p += 1  # line_range
        opcode_base = r.u(1)
        r.p += opcode_base - 1
        if version >= 5:
            dirs = [str(x) for x, _ in _entries(r, offset_size, strp, line_strp)]
            files = []
            for name, index in _entries(r, offset_size, strp, line_strp):
                directory = dirs[index] if index < len(dirs) else ""
                files.append(_join(directory, str(name), comp_dir))
            return files
        dirs = [comp_dir or ""]
        while r.d[r.p] != 0:
            dirs.append(r.cstr())
        r.p += 1
        files = []
        while r.d[r.p] != 0:
            name = r.cstr()
            index = r.uleb()
            r.uleb()
            r.uleb()
            files.append(_join(dirs[index] if index < len(dirs) else "", name, comp_dir))
        return files[:1] + files
    except (IndexError, ValueError):
        raise BadDwarf(f"line table header at 0x{offset:x} runs past .debug_line") from None


def _entries(
    r: _Reader, offset_size: int, strp: StringAt, line_strp: StringAt
) -> list[tuple[int | str | None, int]]:
    """(path, directory index) of each directory or file entry of a DWARF 5 header."""
    formats = [(r.uleb(), r.uleb()) for _ in range(r.u(1))]
    out = []
    for _ in range(r.uleb()):
        path: int | str | None = None
        index = 0
        for content, form in formats:
            value = _form_value(r, form, offset_size, strp, line_strp)
            if content == DW_LNCT_path:
                path = value
            elif content == DW_LNCT_directory_index and isinstance(value, int):
                index = value
        out.append((path, index))
    return out


def _join(directory: str, name: str, comp_dir: str | None) -> str:
    path = os.path.join(directory, name) if directory else name
    if comp_dir and path.startswith(".."):  # relative to the compilation directory
        path = os.path.join(comp_dir, path)
    return path
