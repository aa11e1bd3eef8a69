"""Loadable modules as linked images: layout, relocation (readers.relocate),
module files and .modinfo (readers.kmod), DWARF units from relocated bytes.

Fixtures: tests/fixtures/modules/*.c compiled at test time with `-c -g -O2` and
combined with `ld -r` like kbuild does (alpha.ko: 2 units, beta.ko: 1) for
x86-64 (RELA), armhf (REL) and s390x (big-endian RELA). The oracle for every
relocated debug section is pyelftools' own (slow) relocation.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import subprocess
from pathlib import Path

import pytest
import zstandard
from elftools.elf.elffile import ELFFile

from ingest.errors import BadModule
from ingest.readers import dwarf, elf, kmod
from ingest.readers.relocate import Relocatable
from ingest.readers.vaddr import MODULE_TABLES, ImageMemory
from tests.support.kernel import real_module
from tests.support.modules import ARCHES, SRC, build_modules, debug_names
from tests.support.tools import build

BASE64, BASE32 = 0xFFFFFFFFA0000000, 0xBF000000  # MODULES_VADDR on x86-64 and arm
REAL_MODULES = {
    "ext4": "fs/ext4/ext4.ko",
    "xfs": "fs/xfs/xfs.ko",
    "kvm": "arch/x86/kvm/kvm.ko",
    "md_mod": "drivers/md/md-mod.ko",
    "vfio_iommu_type1": "drivers/vfio/vfio_iommu_type1.ko",
}


@pytest.fixture(scope="module", params=sorted(ARCHES))
def built(request, tmp_path_factory) -> tuple[str, dict[str, Path]]:
    return request.param, build_modules(request.param, tmp_path_factory.mktemp("modules"))


def _base(arch: str) -> int:
    return BASE32 if arch == "armhf" else BASE64


def _pyelftools_debug(data: bytes) -> dict[str, bytes]:
    """The oracle: pyelftools' relocation of each debug section (sections at 0)."""
    info = ELFFile(io.BytesIO(data)).get_dwarf_info(relocate_dwarf_sections=True)
    out = {}
    for attr in dir(info):
        sec = getattr(info, attr)
        if attr.endswith("_sec") and sec is not None and hasattr(sec, "name"):
            out[sec.name] = sec.stream.getvalue()
    return out


def _walk(module: kmod.Module) -> list[dwarf.UnitFacts]:
    image = module.image
    sections = module.linked.relocate(debug_names(module.linked))
    units = dwarf.units_from_bytes(sections[".debug_info"], image.endian)
    config = dwarf.WalkConfig(btf_funcs=frozenset(), want_layouts=False)
    return list(dwarf.walk(units, sections, image.endian, config, jobs=1))


def _functions(module: kmod.Module) -> dict[str, elf.Symbol]:
    return {s.name: s for s in elf.function_symbols(module.image)}


# -- relocation against the oracle ----------------------------------------------


def test_debug_sections_equal_pyelftools(built):
    arch, paths = built
    for path in paths.values():
        data = path.read_bytes()
        obj = Relocatable(data, layout=False)
        theirs = _pyelftools_debug(data)
        names = debug_names(obj)
        assert {".debug_info", ".debug_line", ".debug_abbrev", ".debug_str"} <= set(names)
        compared = 0
        for name in names:
            if name in theirs:
                assert obj.section(name) == theirs[name], (arch, path.name, name)
                compared += 1
        assert compared >= 6
        assert obj.counts.applied > 0 and obj.counts.unknown == {}
        relocated_in = [h.name for h in obj.headers if h.type in (4, 9) and ".debug_" in h.name]
        assert ".rela.debug_info" in relocated_in or ".rel.debug_info" in relocated_in


def test_units_equal_pyelftools_units(built):
    _, paths = built
    data = paths["alpha"].read_bytes()
    obj = Relocatable(data, layout=False)
    info = ELFFile(io.BytesIO(data)).get_dwarf_info(relocate_dwarf_sections=True)
    endian = obj.endian
    mine = dwarf.units_from_bytes(obj.section(".debug_info") or b"", endian)
    theirs = dwarf.units(info, endian)
    assert len(mine) == 2  # alpha_main.c and alpha_util.c
    key = lambda u: (u.offset, u.die_offset, u.end, u.abbrev_offset, u.shape.key(), u.shape.version)
    assert [key(u) for u in mine] == [key(u) for u in theirs]
    assert mine[1].abbrev_offset > 0  # relocated: the second unit's abbreviations follow the first's


# -- the linked view --------------------------------------------------------------


def test_layout_like_the_loader(built):
    arch, paths = built
    module = kmod.open_module(paths["alpha"], base=_base(arch))
    laid = module.sections
    names = [s.name for s in laid]
    assert names[0] == ".text" and laid[0].address == _base(arch)
    prev_end = _base(arch)
    for s in laid:
        header = module.linked.headers[s.number]
        assert s.address >= prev_end and s.address % max(header.addralign, 1) == 0
        prev_end = s.address + s.size
    core = [s for s in laid if not s.name.startswith(".init")]
    init = next(s for s in laid if s.name == ".init.text")
    assert init.address >= max(s.address + s.size for s in core) and init.address % 4096 == 0
    text_end = laid[0].address + laid[0].size
    first_ro = next(s for s in laid if not module.linked.headers[s.number].flags & 4)
    assert first_ro.address % 4096 == 0 and first_ro.address >= text_end  # pages split text from data
    assert module.size == prev_end - _base(arch)


def test_symbols_equal_low_pc(built):
    arch, paths = built
    for name, path in paths.items():
        module = kmod.open_module(path, base=_base(arch))
        funcs = _functions(module)
        low = {}
        for facts in _walk(module):
            for sub in facts.subs:
                if sub.name and sub.concrete and sub.low_pc is not None:
                    low[sub.name] = sub.low_pc
        want = {"alpha": {"shared_helper", "alpha_entry", "alpha_init", "alpha_util", "alpha_twice"}}.get(
            name, {"shared_helper", "beta_entry"}
        )
        assert want <= set(low) and want <= set(funcs), (arch, name, low, funcs)
        for fn in want:
            assert funcs[fn].address == low[fn], (arch, name, fn)
            assert funcs[fn].address >= _base(arch)
        assert funcs["alpha_init" if name == "alpha" else "beta_entry"].section in (".init.text", ".text")


def test_calls_from_the_c_source(built):
    arch, paths = built
    module = kmod.open_module(paths["alpha"], base=_base(arch))
    facts = _walk(module)
    subs = {s.die: s for f in facts for s in f.subs}

    def name(die: int) -> str | None:
        sub = subs.get(die)
        while sub is not None and sub.name is None and sub.origin is not None:
            sub = subs.get(sub.origin)
        return None if sub is None else sub.name

    calls = {(name(e.caller), name(e.callee)) for f in facts for e in f.edges if e.kind == "direct"}
    assert {
        ("alpha_entry", "shared_helper"),
        ("alpha_entry", "alpha_util"),
        ("shared_helper", "vmlinux_import"),
        ("alpha_init", "alpha_entry"),
        ("alpha_twice", "alpha_util"),
    } <= calls, (arch, calls)
    decl = {s.name: s.decl_file for s in subs.values() if s.name == "shared_helper"}
    assert decl["shared_helper"].endswith("alpha_main.c")


def test_events_mcount_and_pointers(built):
    arch, paths = built
    _, _, _, mcount = ARCHES[arch]
    for name, path in paths.items():
        module = kmod.open_module(path, base=_base(arch))
        mem = ImageMemory(module.image)
        funcs = _functions(module)
        where = {s.name: s for s in module.sections}
        ev = where["_ftrace_events"]
        events = []
        for ptr in mem.pointers(ev.address, ev.address + ev.size):
            system = mem.cstring(mem.pointer(ptr) or 0)
            event = mem.cstring(mem.pointer(ptr + mem.pointer_size) or 0)
            probe = mem.pointer(ptr + 2 * mem.pointer_size)
            events.append((system, event, probe))
        if name == "alpha":
            want = [("alpha", "alpha_entry", "alpha_entry"), ("alpha", "alpha_util", "alpha_util")]
            table = ["shared_helper", "alpha_entry", "alpha_init"]
        else:
            want = [("beta", "beta_entry", "beta_entry")]
            table = ["shared_helper", "beta_entry"]
        assert sorted(events) == sorted((s, e, funcs[f].address) for s, e, f in want), arch
        like = where["__mcount_like"]
        assert mem.pointers(like.address, like.address + like.size) == [funcs[f].address for f in table]
        if mcount and arch == "amd64":  # -mfentry: the call to __fentry__ opens every function
            loc = where["__mcount_loc"]
            entries = mem.pointers(loc.address, loc.address + loc.size)
            assert sorted(entries) == sorted(s.address for s in funcs.values()), arch
        elif mcount:
            loc = where["__mcount_loc"]
            for entry in mem.pointers(loc.address, loc.address + loc.size):
                assert (sym := mem.function_at(entry)) is not None and sym.address <= entry, (arch, entry)
        for sym in funcs.values():
            assert mem.function_at(sym.address) is not None


def test_shared_static_name_in_two_modules(built):
    arch, paths = built
    a, b = (kmod.open_module(paths[n], base=_base(arch)) for n in ("alpha", "beta"))
    sa, sb = _functions(a)["shared_helper"], _functions(b)["shared_helper"]
    assert sa.binding == sb.binding == "STB_LOCAL"
    decls = [
        {s.decl_file for f in _walk(m) for s in f.subs if s.name == "shared_helper" and s.decl_file}
        for m in (a, b)
    ]
    assert [os.path.basename(next(iter(d))) for d in decls] == ["alpha_main.c", "beta_main.c"]


def test_modinfo_and_this_module(built):
    _, paths = built
    alpha = kmod.open_module(paths["alpha"])
    info = alpha.info
    assert (alpha.name, info.name, info.license, info.description) == (
        "alpha",
        "alpha",
        "GPL",
        "alpha fixture",
    )
    assert info.depends == ("beta", "gamma") and info.vermagic == "6.1.0-test SMP mod_unload"
    assert sorted(info.rest["alias"]) == ["fixture-a", "fixture-alpha"]  # section order: GCC's
    assert kmod.this_module_name(alpha.linked) == "alpha"
    beta = kmod.open_module(paths["beta"].read_bytes())
    assert (beta.name, beta.info.name, beta.info.depends, beta.info.license) == (
        "beta",
        None,
        (),
        "Dual MIT/GPL",
    )


@pytest.mark.parametrize(
    "target", ["aarch64-linux-gnu", "powerpc64le-linux-gnu", "i386-linux-gnu", "riscv64-linux-gnu"]
)
def test_other_arches_with_clang(target, tmp_path):
    """arm64, ppc64el, i386 against pyelftools; riscv64 (ADD/SUB/SET6/SUB6 pairs in
    .debug_info/.debug_line/.debug_frame, which pyelftools cannot relocate) by its
    symbols equal to DW_AT_low_pc and no type left unknown."""
    obj = tmp_path / "alpha.ko"
    flags = ["-mrelax"] if target.startswith("riscv") else []
    build(["clang", f"--target={target}", "-c", "-g", "-O2", *flags, "-o", obj, SRC / "alpha_main.c"])
    data = obj.read_bytes()
    if not target.startswith("riscv"):
        mine = Relocatable(data, layout=False)
        theirs = _pyelftools_debug(data)
        for name in debug_names(mine):
            if name in theirs:
                assert mine.section(name) == theirs[name], (target, name)
        assert mine.counts.unknown == {}
    base = BASE32 if target.startswith("i386") else BASE64
    module = kmod.open_module(obj, base=base)
    funcs = _functions(module)
    low = {s.name: s.low_pc for f in _walk(module) for s in f.subs if s.name and s.concrete}
    for fn in ("shared_helper", "alpha_entry", "alpha_init"):
        assert funcs[fn].address == low[fn], (target, fn)
    assert module.relocations.unknown == {} and module.relocations.applied > 0


# -- files, compression, bad input ------------------------------------------------


def test_compressed_files_and_tree(built, tmp_path):
    _, paths = built
    data = paths["alpha"].read_bytes()
    tree = tmp_path / "kernel"
    (tree / "fs" / "a").mkdir(parents=True)
    (tree / "drivers").mkdir()
    (tree / "fs" / "a" / "plain.ko").write_bytes(data)
    (tree / "fs" / "a" / "x.ko.xz").write_bytes(lzma.compress(data))
    (tree / "drivers" / "z.ko.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    (tree / "drivers" / "g.ko.gz").write_bytes(gzip.compress(data))
    (tree / "drivers" / "notes.txt").write_text("not a module")
    rels = kmod.list_modules(tree)
    assert rels == ["drivers/g.ko.gz", "drivers/z.ko.zst", "fs/a/plain.ko", "fs/a/x.ko.xz"]
    for rel in rels:
        assert kmod.read_module(tree / rel) == data
        assert kmod.open_module(tree / rel).name == "alpha"
    (tree / "bad.ko.xz").write_bytes(b"BZh91AY&SY" + data[:100])
    with pytest.raises(BadModule, match="unknown compression"):
        kmod.read_module(tree / "bad.ko.xz")
    (tree / "cut.ko.xz").write_bytes(lzma.compress(data)[:200])
    with pytest.raises(BadModule, match="corrupt xz"):
        kmod.read_module(tree / "cut.ko.xz")


def test_truncated_module(built):
    _, paths = built
    data = paths["alpha"].read_bytes()
    for cut in (40, len(data) // 2, len(data) - 8):
        with pytest.raises(BadModule, match="truncated") as exc:
            kmod.open_module(data[:cut])
        assert "\n" not in str(exc.value)


def _rel_section(data: bytes, name: str):
    obj = Relocatable(data)
    return obj, obj.headers[obj.by_name[name]]


def test_corrupt_relocation_section(built):
    _, paths = built
    data = paths["alpha"].read_bytes()
    obj, rel = _rel_section(
        data, ".rela.debug_info" if ".rela.debug_info" in Relocatable(data).by_name else ".rel.debug_info"
    )
    word = 8 if obj.wide else 4
    bad = bytearray(data)
    bad[rel.offset : rel.offset + word] = b"\x7f" * word  # r_offset far past the section
    module = kmod.open_module(bytes(bad))
    with pytest.raises(
        BadModule, match=r"corrupt relocation section \.rela?\.debug_info: an offset lies past"
    ):
        module.image.section(".debug_info")
    bad = bytearray(data)
    bad[rel.offset + word : rel.offset + 2 * word] = b"\x7f" * word  # symbol index out of range
    with pytest.raises(BadModule, match="symbol index"):
        kmod.open_module(bytes(bad)).image.section(".debug_info")
    bad = bytearray(data)
    # a size that is not a whole number of entries
    obj2 = Relocatable(data)
    shoff_field = 40 if obj2.wide else 32
    e = "little" if obj2.endian == "little" else "big"
    shoff = int.from_bytes(data[shoff_field : shoff_field + word], e)
    hsize = 64 if obj2.wide else 40
    size_at = shoff + rel.number * hsize + (32 if obj2.wide else 20)
    bad[size_at : size_at + word] = (rel.size - 1).to_bytes(word, e)
    with pytest.raises(BadModule, match="whole number of entries"):
        kmod.open_module(bytes(bad)).image.section(".debug_info")


def test_unknown_type_in_debug_section_is_counted(built):
    arch, paths = built
    data = paths["alpha"].read_bytes()
    obj, rel = _rel_section(
        data, ".rela.debug_info" if ".rela.debug_info" in Relocatable(data).by_name else ".rel.debug_info"
    )
    bad = bytearray(data)
    if obj.wide:  # r_info: symbol << 32 | type; the type is the low word
        at = rel.offset + 8 + (0 if obj.endian == "little" else 4)
        bad[at : at + 4] = (200).to_bytes(4, obj.endian)
    else:  # symbol << 8 | type: the type is the low byte
        at = rel.offset + 4 + (0 if obj.endian == "little" else 3)
        bad[at] = 200
    module = kmod.open_module(bytes(bad))
    assert module.image.section(".debug_info") is not None
    assert module.relocations.unknown == {200: 1}, arch


# -- real modules -------------------------------------------------------------------


def _real(name: str) -> Path:
    return real_module(REAL_MODULES[name])


@pytest.mark.slow
@pytest.mark.real_kernel
def test_real_ext4_debug_sections_equal_pyelftools():
    data = _real("ext4").read_bytes()
    obj = Relocatable(data, layout=False)
    theirs = _pyelftools_debug(data)
    names = [n for n in debug_names(obj) if n in theirs]
    assert {".debug_info", ".debug_line", ".debug_loclists", ".debug_rnglists", ".debug_frame"} <= set(names)
    for name in names:
        assert obj.section(name) == theirs[name], name
    assert obj.counts.unknown == {}


@pytest.mark.real_kernel
@pytest.mark.parametrize("name", sorted(REAL_MODULES))
def test_real_modinfo_and_symbols_equal_readelf(name):
    path = _real(name)
    module = kmod.open_module(path, base=BASE64)
    out = subprocess.run(["readelf", "-p", ".modinfo", str(path)], capture_output=True, text=True, check=True)
    strings = [line.split("]", 1)[1][2:] for line in out.stdout.splitlines() if line.strip().startswith("[")]
    mine = [s.decode() for s in (module.image.section(".modinfo") or b"").split(b"\0") if s]
    assert mine == strings
    assert module.name == name and module.info.name == name
    assert module.info.license == next(s.split("=", 1)[1] for s in strings if s.startswith("license="))
    assert kmod.this_module_name(module.linked) == name
    # readelf -sW: "Num: Value Size Type Bind Vis Ndx Name"
    out = subprocess.run(["readelf", "-sW", str(path)], capture_output=True, text=True, check=True)
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()[:1].isdigit() and ":" in line]
    defined = [r for r in rows if len(r) >= 8 and r[6] != "UND" and r[3] not in ("SECTION", "FILE")]
    funcs = [r for r in defined if r[3] == "FUNC" and not r[7].startswith("__pfx_")]
    mem = ImageMemory(module.image)
    markers = {f"__{edge}_{table}" for table in MODULE_TABLES.values() for edge in ("start", "stop")}
    assert len([s for s in mem.symbols if s.name not in markers]) == len(defined)
    assert len(elf.function_symbols(module.image)) == len(funcs)
    for sym in elf.function_symbols(module.image)[:50]:
        assert sym.address >= BASE64
