"""The case numbers of an x86-64 syscall dispatch switch (`ia32_sys_call`,
`x32_sys_call`, `x64_sys_call`: arch/x86/entry/syscall_*.c since 6.9 and the
stable backports, e.g. 6.1.85): which entry function each number reaches.

GCC compiles `switch (nr) { case N: return __ia32_sys_x(regs); ... }` with
-fno-jump-tables (retpoline builds) into a tree of `cmp $N, %esi` (`test %esi, %esi`
for 0) and conditional jumps whose leaves tail-call (`jmp`) or call (noreturn exit,
exit_group) the entry functions. This walks every path of that tree keeping
the range of `nr` the path allows, and reads a leaf's number from it. Only
the instructions such trees are made of are decoded: a path meeting another
instruction is abandoned (its cases are then missing, never wrong).
"""

from __future__ import annotations

from typing import NamedTuple

from ingest.readers.vaddr import ElfSymbol, ImageMemory

_U32 = 0xFFFFFFFF
_MAX_STEPS = 400_000  # instructions over all paths: bounds a misread
_MAX_CASES = 64  # a leaf reached by more numbers is the default case, not read


class _Path(NamedTuple):
    pc: int
    lo: int  # nr in [lo, hi], not in `skip`
    hi: int
    skip: frozenset[int]
    last: int | None  # the immediate of the last `cmp` (the flags' source)


def switch_cases(mem: ImageMemory, function: ElfSymbol) -> dict[int, int]:
    """Case number -> address of the function that case calls or jumps to,
    for the dispatch switch `function` (an x86-64 function symbol)."""
    start, end = function.address, function.address + function.size
    cases: dict[int, int] = {}
    register: list[int] = []  # the modrm register of the first cmp
    stack = [_Path(start, 0, _U32, frozenset(), None)]
    steps = 0
    while stack and steps < _MAX_STEPS:
        path = stack.pop()
        while steps < _MAX_STEPS:
            steps += 1
            code = mem.read(path.pc, 16) or mem.read(path.pc, max(0, end - path.pc))
            if not code:
                break
            step = _step(mem, code, path, register, start, end)
            if step is None:
                break
            following, leaf = step
            if leaf is not None:
                _record(cases, *leaf)
            if not following:
                break
            path, *more = following
            stack.extend(more)
    return cases


def _record(cases: dict[int, int], path: _Path, target: int) -> None:
    if path.hi - path.lo >= _MAX_CASES + len(path.skip):
        return
    for nr in range(path.lo, path.hi + 1):
        if nr not in path.skip:
            cases.setdefault(nr, target)


Leaf = tuple[_Path, int]  # a path ending in a call or jump to a function, and that function


def _step(
    mem: ImageMemory, code: bytes, path: _Path, register: list[int], start: int, end: int
) -> tuple[list[_Path], Leaf | None] | None:
    """The paths after the instruction at path.pc and the leaf it makes
    (None: not a leaf); None when the instruction is not one of ours."""
    pc, b0 = path.pc, code[0]
    if code[:4] == b"\xf3\x0f\x1e\xfa":  # endbr64
        return [path._replace(pc=pc + 4)], None
    if b0 == 0x90:
        return [path._replace(pc=pc + 1)], None
    nop = _nop_length(code)
    if nop:
        return [path._replace(pc=pc + nop)], None
    if b0 in (0x81, 0x83) and len(code) >= 3 and code[1] & 0xF8 == 0xF8:  # cmp $imm, %r32
        reg = code[1] & 7
        if register and register[0] != reg:
            return None
        register[:] = [reg]
        if b0 == 0x81:
            imm, size = int.from_bytes(code[2:6], "little"), 6
        else:
            imm, size = int.from_bytes(code[2:3], "little", signed=True) & _U32, 3
        return [path._replace(pc=pc + size, last=imm)], None
    if b0 == 0x85 and len(code) >= 2 and code[1] >> 6 == 3 and (code[1] >> 3) & 7 == code[1] & 7:
        if register and register[0] != code[1] & 7:  # test %r, %r: the flags of cmp $0
            return None
        return [path._replace(pc=pc + 2, last=0)], None
    if b0 == 0xE8 and len(code) >= 5:  # call: __fentry__, or a noreturn entry (exit)
        target = (pc + 5 + int.from_bytes(code[1:5], "little", signed=True)) & ((1 << 64) - 1)
        sym = mem.function_at(target)
        if sym is not None and sym.name.startswith("__") and "sys_" in sym.name:
            return [], (path, target)
        return [path._replace(pc=pc + 5)], None
    if b0 in (0xE9, 0xEB):  # jmp
        size = 5 if b0 == 0xE9 else 2
        target = pc + size + int.from_bytes(code[1:size], "little", signed=True)
        if start <= target < end:
            return [path._replace(pc=target)], None
        return [], (path, target)
    if b0 in (0xC3, 0xCC):
        return [], None
    if 0x70 <= b0 <= 0x7F or (b0 == 0x0F and len(code) >= 6 and 0x80 <= code[1] <= 0x8F):
        cond = b0 & 0xF if b0 != 0x0F else code[1] & 0xF
        size = 2 if b0 != 0x0F else 6
        target = pc + size + int.from_bytes(code[1 if b0 != 0x0F else 2 : size], "little", signed=True)
        branches = _branch(path._replace(pc=pc + size), cond)
        if branches is None:
            return None
        taken, fall = branches
        following = [fall] if fall is not None else []
        if taken is not None and not start <= target < end:  # a conditional tail call
            return following, (taken, target)
        if taken is not None:
            following.append(taken._replace(pc=target))
        return following, None
    return None


def _branch(path: _Path, cond: int) -> tuple[_Path | None, _Path | None] | None:
    """(taken, not taken) after `cmp $k` then the jcc `cond`; None for
    conditions a switch tree does not use here (signed, parity, ...)."""
    k = path.last
    if k is None:
        return None
    lo, hi, skip = path.lo, path.hi, path.skip

    def within(a: int, b: int, s: frozenset[int] = skip) -> _Path | None:
        a, b = max(a, lo), min(b, hi)
        return path._replace(lo=a, hi=b, skip=s) if a <= b else None

    eq, ne = within(k, k, frozenset()), within(lo, hi, skip | {k})
    below, at_or_above = within(lo, k - 1), within(k, hi)
    at_or_below, above = within(lo, k), within(k + 1, hi)
    table = {
        0x4: (eq, ne),  # je
        0x5: (ne, eq),  # jne
        0x2: (below, at_or_above),  # jb
        0x3: (at_or_above, below),  # jae
        0x6: (at_or_below, above),  # jbe
        0x7: (above, at_or_below),  # ja
    }
    got = table.get(cond)
    if got is None:
        return None
    if eq is not None and k in skip:  # nr == k was already excluded
        got = tuple(None if p is eq else p for p in got)  # type: ignore[assignment]
    return got


def _nop_length(code: bytes) -> int:
    """Length of a multi-byte NOP (`[66|2e]* 0f 1f /0`), 0 when not one."""
    i = 0
    while i < len(code) and code[i] in (0x66, 0x2E):
        i += 1
    if len(code) < i + 3 or code[i] != 0x0F or code[i + 1] != 0x1F:
        return 0
    modrm = code[i + 2]
    mod, rm = modrm >> 6, modrm & 7
    size = i + 3 + (rm == 4 and mod != 3)
    return size + {0: 0, 1: 1, 2: 4, 3: 0}[mod]
