"""Read the CO-RE relocations of a .BTF.ext section (bytes in, records out).

.BTF.ext sits beside .BTF in a BPF object: func_info, line_info and, since
CO-RE, one bpf_core_relo record per instruction whose offset, size or
existence libbpf must fix up for the running kernel. Section names and
access strings are offsets into the .BTF string section. Only the CO-RE
part is read: func_info and line_info need nothing from the kernel.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from ingest.errors import BadBtf
from ingest.readers import btf_format as F


class CoreRelo(NamedTuple):
    """One CO-RE relocation (struct bpf_core_relo)."""

    section: str  # the ELF section of the instruction
    insn_off: int  # byte offset of the instruction in that section
    type_id: int  # the local BTF type the access starts from
    access: str  # access string: "0:1:2" (member and array indexes), or an enumerator index
    kind: int  # enum bpf_core_relo_kind (F.CORE_RELO_KINDS)


def core_relos(ext: bytes, strings: bytes, byte_order: str) -> Iterator[CoreRelo]:
    """The CO-RE relocations of .BTF.ext `ext`, in order. `strings` is the
    .BTF string section, `byte_order` the BTF's ("little" or "big"). Raises
    BadBtf, with a message saying how to fix the object, when the section is
    malformed; records are read lazily, so a malformed one is found when reached."""
    bo = "<" if byte_order == "little" else ">"
    if len(ext) < F.EXT_PREAMBLE_SIZE:
        raise BadBtf(".BTF.ext is truncated; rebuild the object")
    magic, _version, _flags, hdr_len = struct.unpack_from(bo + F.EXT_PREAMBLE_FMT, ext, 0)
    if magic != F.MAGIC or hdr_len > len(ext):
        raise BadBtf(".BTF.ext has a bad header; rebuild the object")
    if hdr_len < F.EXT_CORE_HEADER_SIZE:
        return  # no core_relo part (objects from before CO-RE)
    core_off, core_len = struct.unpack_from(bo + "II", ext, F.EXT_CORE_RELO_AT)
    pos, end = hdr_len + core_off, hdr_len + core_off + core_len
    if end > len(ext):
        raise BadBtf(".BTF.ext CO-RE relocations run past the section; rebuild it")
    if core_len == 0:
        return
    (rec_size,) = struct.unpack_from(bo + "I", ext, pos)
    if rec_size < F.CORE_RELO_SIZE:
        raise BadBtf(f".BTF.ext CO-RE record size {rec_size} is too small")
    pos += 4
    record = struct.Struct(bo + F.CORE_RELO_FMT).unpack_from
    while pos < end:  # per section: sec_name_off u32, num_info u32, then the records
        sec_name_off, num = struct.unpack_from(bo + "II", ext, pos)
        pos += 8
        section = _string(strings, sec_name_off)
        if pos + num * rec_size > end:
            raise BadBtf(f".BTF.ext CO-RE records for {section} run past the section")
        for i in range(num):
            insn_off, type_id, access_off, kind = record(ext, pos + i * rec_size)
            yield CoreRelo(
                section=section,
                insn_off=insn_off,
                type_id=type_id,
                access=_string(strings, access_off),
                kind=kind,
            )
        pos += num * rec_size


def _string(table: bytes, off: int) -> str:
    """The string at `off` of the BTF string section."""
    end = table.find(b"\0", off)
    if off >= len(table) or end < 0:
        raise BadBtf(f"BTF string offset {off} is out of range; rebuild the object")
    return table[off:end].decode("utf-8", "replace")
