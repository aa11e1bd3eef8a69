"""kfuncs (docs/concepts.md#surfaces): BTF FUNCs tagged `bpf_kfunc` (pahole 1.25+ with kernels
from 6.5 on) and the members of the kernel's kfunc BTF_ID sets.

A set is a `__BTF_ID__set8__<set>` object in `.BTF_ids`: `u32 cnt; u32 flags;`
then `cnt` pairs `u32 id; u32 flags;` (KF_* flags). The image is past
resolve_btfids, so `id` is the kfunc's BTF FUNC id. Each pair was also
labelled by a `__BTF_ID__func__<name>__<n>` symbol, but resolve_btfids sorts
the pairs by id afterwards: the labels give a set's members, not which flags
belong to whom.

Which set8s are kfunc sets: 6.8 added BTF_SET8_KFUNCS (bit 0 of the set's
flags) and uses set8 for other lists too (fmodret sets); when any set in the
image carries the bit, only those are kfunc sets. Before that (6.0-6.7) every
set8 is a kfunc set (checked on Debian 6.1: six sets, all kfunc id lists).

A module (ingest.modules.module) is read the same way, over its relocated image and
its split BTF: resolve_btfids ran over it with vmlinux as base, so a pair's id
names a FUNC of the module's BTF or of vmlinux's (BtfInfo.func_ids resolves
both). The rule above holds per module: every set8 of Debian's 6.12 modules
carries the bit, none of 6.1's can.
"""

from __future__ import annotations

import re

from ingest.model import Kfunc
from ingest.readers.btf import BtfInfo
from ingest.readers.vaddr import ElfSymbol, ImageMemory

SET8_PREFIX = "__BTF_ID__set8__"
BTF_SET8_KFUNCS = 1 << 0
_FUNC_ID = re.compile(r"__BTF_ID__func__(.+)__\d+$")


def read_kfuncs(mem: ImageMemory | None, btf: BtfInfo | None) -> list[Kfunc]:
    """Every kfunc the inputs show, one per name, sorted by name."""
    tagged = set(btf.decl_tags.get("bpf_kfunc", ())) if btf else set()
    members = set8_members(mem, btf) if mem is not None else {}
    out = []
    for name in sorted(tagged | members.keys()):
        sets, flags = members.get(name, ((), None))
        out.append(
            Kfunc(name=name, source="decl_tag" if name in tagged else "btf_id_set8", sets=sets, flags=flags)
        )
    return out


def set8_members(mem: ImageMemory, btf: BtfInfo | None) -> dict[str, tuple[tuple[str, ...], int | None]]:
    """kfunc name -> (sorted kfunc set names, OR of its entry flags; None without BTF)."""
    headers = [(s, *_set8_header(mem, s)) for s in mem.symbols if s.name.startswith(SET8_PREFIX)]
    sets = [(s, cnt, flags) for s, cnt, flags in headers if cnt is not None]
    flagged = any(flags & BTF_SET8_KFUNCS for _, _, flags in sets)
    names: dict[str, set[str]] = {}
    kflags: dict[str, int | None] = {}
    for sym, cnt, flags in sets:
        if flagged and not flags & BTF_SET8_KFUNCS:
            continue
        set_name = sym.name[len(SET8_PREFIX) :]
        for name, entry_flags in _entries(mem, btf, sym, cnt):
            names.setdefault(name, set()).add(set_name)
            kflags[name] = _or(kflags.get(name), entry_flags)
    return {n: (tuple(sorted(s)), kflags[n]) for n, s in names.items()}


def _or(a: int | None, b: int | None) -> int | None:
    """a | b, where None (unknown) gives way to a known value."""
    return b if a is None else a if b is None else a | b


def _set8_header(mem: ImageMemory, sym: ElfSymbol) -> tuple[int | None, int]:
    """(cnt, flags) of a set8, cnt None when unreadable or beyond the symbol."""
    cnt, flags = mem.uint(sym.address, 4), mem.uint(sym.address + 4, 4)
    if cnt is None or flags is None or (sym.size and 8 + 8 * cnt > sym.size):
        return None, 0
    return cnt, flags


def _entries(mem: ImageMemory, btf: BtfInfo | None, sym: ElfSymbol, cnt: int) -> list[tuple[str, int | None]]:
    """(name, flags) of a set8's pairs, named by their resolved BTF FUNC ids.
    resolve_btfids sorts the pairs by id, so the `__BTF_ID__func__` labels no
    longer sit at their pairs: without BTF they give the members, not the flags."""
    raw = mem.read(sym.address + 8, 8 * cnt) or b""
    if btf is None:
        return [(name, None) for name in set_labels(mem, sym, cnt)]
    out: list[tuple[str, int | None]] = []
    for i in range(len(raw) // 8):
        name = _btf_func_name(btf, int.from_bytes(raw[8 * i : 8 * i + 4], mem.endian))
        if name:
            out.append((name, int.from_bytes(raw[8 * i + 4 : 8 * i + 8], mem.endian)))
    return out


def set_labels(mem: ImageMemory, sym: ElfSymbol, cnt: int) -> set[str]:
    """Names of the `__BTF_ID__func__<name>__<n>` labels inside a set8's pairs."""
    out = set()
    for i in range(cnt):
        name = _label(mem, sym.address + 8 + 8 * i)
        if name:
            out.add(name)
    return out


def _btf_func_name(btf: BtfInfo | None, tid: int) -> str | None:
    """The name of BTF FUNC `tid`, None when it is not a FUNC."""
    if btf is None or not tid:
        return None
    entry = btf.func_ids.get(tid)
    return entry[0] if entry else None


def _label(mem: ImageMemory, address: int) -> str | None:
    """`<name>` of a `__BTF_ID__func__<name>__<n>` symbol at `address`."""
    for sym in mem.symbols_at(address):
        m = _FUNC_ID.match(sym.name)
        if m:
            return m.group(1)
    return None
