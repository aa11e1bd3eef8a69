"""The C DIE walk (ingest/readers/_dwarfwalk.c) against its oracle, the
Python walk: without types (WalkConfig want_types=False), with types
(vmlinux or a module with BTF, whose DWARF prototypes are printed) and with
layouts (want_layouts=True: an image without BTF, whose struct, union and
enum layouts come from DWARF), both must give equal UnitFacts on every
fixture (the program in all its compiler variants: DWARF 4 and 5,
zlib-compressed sections, 32-bit armhf, big-endian s390x; the module objects
for x86-64, armhf and s390x) and on real modules. The C walk must take every
unit of these itself, and on damaged DWARF it must never give other rows than
the Python walk: it hands the unit back, and the Python walk reads it or
raises its error. Layouts are also compared on every 40th unit of the two
vmlinux images without BTF (6.1 i386, 6.12 armhf).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import BadDwarf
from ingest.readers import dwarf, elf, kmod
from tests.support.kernel import REAL_KERNEL, module_file, real_module
from tests.support.modules import ARCHES, build_modules, debug_names
from tests.support.programs import VARIANTS, compile_program

NO_TYPES = dwarf.WalkConfig(btf_funcs=frozenset(), want_layouts=False, want_types=False)
TYPES = dwarf.WalkConfig(btf_funcs=frozenset(), want_layouts=False, want_types=True)
LAYOUTS = dwarf.WalkConfig(btf_funcs=frozenset(), want_layouts=True)
CONFIGS = {"no-types": NO_TYPES, "types": TYPES, "layouts": LAYOUTS}
needs_accel = pytest.mark.skipif(
    dwarf._accel is None, reason="the C walk is not built (pip install -e . builds it) or KERNSURF_NO_ACCEL"
)
Walk = tuple[list[dwarf.Unit], dict[str, bytes], str]


def _program(variant: str, tmp: Path) -> Walk:
    image = elf.open_image(compile_program(tmp, variant).open("rb"))
    names = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_line", ".debug_line_str")
    sections = {n: data for n in names if (data := image.section(n)) is not None}
    return dwarf.units(image.elf.get_dwarf_info(), image.endian), sections, image.endian


def _module(path: Path, base: int) -> Walk:
    module = kmod.open_module(path, base=base)
    sections = module.linked.relocate(debug_names(module.linked))
    endian = module.image.endian
    return dwarf.units_from_bytes(sections[".debug_info"], endian), sections, endian


def _both(monkeypatch: pytest.MonkeyPatch, walk: Walk, config: dwarf.WalkConfig = NO_TYPES) -> tuple:
    """(C walk's facts, how many units it took itself, Python walk's facts)."""
    units, sections, endian = walk
    taken = []
    c_walk = dwarf._walk_unit_c

    def counted(*args: Any) -> Any:
        facts = c_walk(*args)
        taken.append(facts is not None)
        return facts

    python_files = dwarf._file_names

    def files(*args: Any) -> Any:
        taken.append(False)  # the C reader handed a line table back
        return python_files(*args)

    with monkeypatch.context() as m:
        m.setattr(dwarf, "_walk_unit_c", counted)
        m.setattr(dwarf, "_file_names", files)
        accel = list(dwarf.walk(units, sections, endian, config, jobs=1))
    with monkeypatch.context() as m:
        m.setattr(dwarf, "_accel", None)
        python = list(dwarf.walk(units, sections, endian, config, jobs=1))
    return accel, sum(taken) if all(taken) else -1, python


def _check(
    monkeypatch: pytest.MonkeyPatch, walk: Walk, config: dwarf.WalkConfig = NO_TYPES
) -> list[dwarf.UnitFacts]:
    accel, taken, python = _both(monkeypatch, walk, config)
    assert taken == len(walk[0]) > 0  # the C walk read every unit and line table itself
    assert accel == python
    assert any(f.subs for f in python) and any(f.edges for f in python)
    assert any(f.layouts for f in python) == config.want_layouts
    return python


@needs_accel
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_program_variants(variant, config, tmp_path, monkeypatch):
    facts = _check(monkeypatch, _program(variant, tmp_path), CONFIGS[config])
    names = {s.name for f in facts for s in f.subs}
    assert "main" in names


@needs_accel
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_module_objects(arch, config, tmp_path, monkeypatch):
    built = build_modules(arch, tmp_path)
    base = 0xBF000000 if arch == "armhf" else 0xFFFFFFFFA0000000
    for path in built.values():
        _check(monkeypatch, _module(path, base), CONFIGS[config])


@needs_accel
def test_prototypes_and_seen_follow_the_python_walk(tmp_path, monkeypatch):
    """Without types only void(void)-like prototypes can be printed; the C walk
    gives the same ones, and skips the same BTF names."""
    walk = _program("dwarf5", tmp_path)
    accel, _, python = _both(monkeypatch, walk)
    protos = {n for f in python for n in f.prototypes}
    assert protos == {n for f in accel for n in f.prototypes}
    config = dwarf.WalkConfig(frozenset(protos), want_layouts=False, want_types=False)
    accel, _, python = _both(monkeypatch, walk, config)
    assert accel == python and not any(f.prototypes for f in python)


@needs_accel
def test_typed_prototypes_follow_the_python_walk(tmp_path, monkeypatch):
    """With types, the C walk hands _finish only the type DIEs the unit's
    prototypes reach: the same prototypes as the Python walk (pointers,
    qualifiers, arrays, function pointers, "..."), and the same names skipped
    through btf_funcs and through prototyped."""
    walk = _program("dwarf5", tmp_path)
    accel, _, python = _both(monkeypatch, walk, TYPES)
    protos = {n: p.prototype.text for f in python for n, p in f.prototypes.items()}
    assert accel == python
    assert protos["log_message"] == "int log_message(const char *fmt, ...);"
    assert protos["main"] == "int main(int argc, char **argv);"
    some = frozenset(sorted(protos)[::2])
    for config in (
        dwarf.WalkConfig(some, want_layouts=False),
        dwarf.WalkConfig(frozenset(), want_layouts=False, prototyped=some),
    ):
        accel, _, python = _both(monkeypatch, walk, config)
        assert accel == python
        assert {n for f in python for n in f.prototypes} == set(protos) - some


def _outcome(walk: Walk, config: dwarf.WalkConfig) -> object:
    try:
        return list(dwarf.walk(*walk, config, jobs=1))
    except (BadDwarf, KeyError) as exc:  # KeyError: a parameter under a skipped subroutine type
        return (type(exc), str(exc))


@needs_accel
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_damaged_dwarf_gives_the_python_outcome(config, tmp_path, monkeypatch):
    """Flipped and truncated .debug_info, truncated .debug_abbrev: the same facts or the same error."""
    units, sections, endian = _module(build_modules("amd64", tmp_path)["alpha"], 0xFFFFFFFFA0000000)
    rng = random.Random(14)
    info = sections[".debug_info"]
    damaged = []
    for _ in range(60):
        data = bytearray(info)
        for at in rng.sample(range(len(data)), 3):
            data[at] ^= 1 << rng.randrange(8)
        damaged.append({**sections, ".debug_info": bytes(data)})
    for cut in (len(info) // 3, len(info) - 5):
        damaged.append({**sections, ".debug_info": info[:cut]})
    damaged.append({**sections, ".debug_abbrev": sections[".debug_abbrev"][:-7]})
    for secs in damaged:
        walk = (units, secs, endian)
        accel = _outcome(walk, CONFIGS[config])
        with monkeypatch.context() as m:
            m.setattr(dwarf, "_accel", None)
            assert accel == _outcome(walk, CONFIGS[config])


def test_python_walk_when_the_extension_is_absent(tmp_path, monkeypatch):
    """No extension (or KERNSURF_NO_ACCEL=1): the C walk is never asked."""
    walk = _module(build_modules("amd64", tmp_path)["beta"], 0xFFFFFFFFA0000000)
    monkeypatch.setattr(dwarf, "_accel", None)
    monkeypatch.setattr(dwarf, "_walk_unit_c", lambda *a: pytest.fail("the C walk was called"))
    facts = list(dwarf.walk(*walk, NO_TYPES, jobs=1))
    assert facts and any(f.subs for f in facts)


def test_no_accel_environment(monkeypatch):
    monkeypatch.setenv("KERNSURF_NO_ACCEL", "1")
    assert dwarf._load_accel() is None


@needs_accel
@pytest.mark.parametrize("variant", ["dwarf2", "dwarf4", "dwarf5"])
def test_layouts_follow_the_python_walk(variant, tmp_path, monkeypatch):
    """With layouts the C walk hands _finish every type DIE, members and
    enumerators included: the same layouts (bitfields, anonymous members,
    enums) and the same prototypes as the Python walk. DWARF 2 places members
    with DW_OP_plus_uconst blocks and bitfields with DW_AT_bit_offset
    (`readelf --debug-dump=info`: "2 byte block: 23 4", "DW_AT_bit_offset")."""
    monkeypatch.setitem(VARIANTS, "dwarf2", ("gcc", ["-gdwarf-2"]))
    walk = _program(variant, tmp_path)
    accel, taken, python = _both(monkeypatch, walk, LAYOUTS)
    assert taken == len(walk[0]) and accel == python
    layouts = {(lay.kind, lay.name): lay for f in python for lay in f.layouts}
    assert any(f.bit_size for lay in layouts.values() for f in lay.fields)
    assert any(lay.kind == "enum" for lay in layouts.values())


@pytest.mark.slow
@pytest.mark.real_kernel
@needs_accel
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("rel", ["fs/ext4/ext4.ko", "fs/xfs/xfs.ko", "arch/x86/kvm/kvm.ko"])
def test_real_modules(rel, config, monkeypatch):
    facts = _check(monkeypatch, _module(real_module(rel), 0xFFFFFFFFC0000000), CONFIGS[config])
    assert sum(len(f.subs) for f in facts) > 1000
    if config == "types":
        assert sum(len(f.prototypes) for f in facts) > 1000


@pytest.mark.slow
@pytest.mark.real_kernel
@needs_accel
def test_real_vmlinux_units(monkeypatch):
    """Every 40th unit of 6.1's vmlinux, walked as the build walks it (BTF FUNCs skipped)."""
    if not REAL_KERNEL.exists():
        pytest.skip(f"{REAL_KERNEL} is not cached: `make fetch-test-kernel`")
    from ingest.readers.btf import read_btf

    image = elf.open_image(REAL_KERNEL.open("rb"))
    sections = {n: data for n in dwarf.DEBUG_SECTIONS if (data := image.section(n)) is not None}
    units = dwarf.units_from_bytes(sections[".debug_info"], image.endian)[::40]
    btf = read_btf(image.section(".BTF"))
    config = dwarf.WalkConfig(frozenset(btf.funcs), want_layouts=False)
    facts = _check(monkeypatch, (units, sections, image.endian), config)
    assert len(units) > 50 and sum(len(f.prototypes) for f in facts) > 500


_NO_BTF = {
    "6.1-i386": "linux-image-6.1.0-54-686-pae-dbg_6.1.190-1_i386",
    "6.12-armhf": "linux-image-6.12.113+deb13-armmp-dbg_6.12.113-1_armhf",
}


@pytest.mark.real_kernel
@needs_accel
@pytest.mark.parametrize("build", sorted(_NO_BTF))
def test_real_vmlinux_units_without_btf(build, monkeypatch):
    """Every 40th unit of a vmlinux without BTF, walked with layouts as the build walks it."""
    path = Path.home() / ".cache/kernsurf/debian" / _NO_BTF[build] / "vmlinux"
    if not path.exists():
        pytest.skip(f"{path} is not cached: `kernsurf fetch` it")
    image = elf.open_image(path.open("rb"))
    assert image.section(".BTF") is None
    sections = {n: data for n in dwarf.DEBUG_SECTIONS if (data := image.section(n)) is not None}
    units = dwarf.units_from_bytes(sections[".debug_info"], image.endian)[::40]
    facts = _check(monkeypatch, (units, sections, image.endian), LAYOUTS)
    assert len(units) > 50 and sum(len(f.layouts) for f in facts) > 1000


@pytest.mark.slow
@pytest.mark.real_kernel
def test_module_function_without_btf_gets_its_dwarf_prototype():
    """ext4_has_feature_metadata_csum (fs/ext4/ext4.h, EXT4_FEATURE_RO_COMPAT_FUNCS)
    is static inline and always inlined: ext4.ko's split BTF has no FUNC of it
    (bpftool btf dump file ext4.ko -B vmlinux: none), vmlinux has no such name
    (ext4 is a module in Debian). Its prototype is the one its DWARF declares:
    checked by hand with `llvm-dwarfdump --name=ext4_has_feature_metadata_csum
    ext4.ko` (DW_AT_type bool, one parameter sb of type super_block *) and
    `pfunct -F dwarf -P -f ext4_has_feature_metadata_csum ext4.ko` ("inline bool
    ext4_has_feature_metadata_csum(struct super_block * sb);")."""

    from ingest.modules.module import TreeContext, read_module
    from ingest.readers.btf import read_btf

    path = module_file("fs/ext4/ext4.ko")
    if not REAL_KERNEL.exists():
        pytest.skip(f"{REAL_KERNEL} is not cached: `make fetch-test-kernel`")
    base = read_btf(elf.open_image(REAL_KERNEL.open("rb")).section(".BTF"))
    name = "ext4_has_feature_metadata_csum"

    def read(prototyped: frozenset[str]) -> Any:
        return read_module(
            path,
            "fs/ext4/ext4.ko",
            TreeContext(release=None, arch="amd64", btf=base, layouts=[], prototyped=prototyped),
        )

    facts = read(frozenset(base.funcs))
    assert name not in facts.module.btf_funcs and name not in facts.prototypes
    proto = facts.part.prototypes[name]
    assert (proto.text, proto.source) == (
        "bool ext4_has_feature_metadata_csum(struct super_block *sb);",
        "dwarf",
    )
    assert proto.params == [("sb", "struct super_block *")]
    # What vmlinux gives a prototype is not printed again: the join takes vmlinux's first.
    assert name not in read(frozenset([name])).part.prototypes
