"""Bounded property-based fuzz of the ELF/DWARF/BTF readers, plus the fixed bad
inputs the issue lists that test_bad_input.py does not cover yet.

Every mutated copy of the fixture program must either read or raise
pipeline.IngestError (never another exception, never a hang), and a damaged
BTF blob must raise btf.BadBtf. Derandomized so CI runs the same inputs."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import pipeline
from ingest.pipeline import Identity, IngestError
from ingest.readers import btf as btf_reader
from tests.support.btf import BtfWriter
from tests.support.cli import ingest_fails

FUZZ = settings(
    max_examples=int(os.environ.get("KERNSURF_FUZZ_EXAMPLES", "300")),
    deadline=5000,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_line", ".symtab", ".strtab")
TRIED: dict[str, int] = {}


@pytest.fixture(scope="module")
def target(program):
    """(bytes of the fixture, {section: (offset, size)}, section header table layout)."""
    data = program.read_bytes()
    with open(program, "rb") as f:
        elf = ELFFile(f)
        sections = {s.name: (s["sh_offset"], s["sh_size"]) for s in elf.iter_sections() if s.name in SECTIONS}
        shdr = (elf["e_shoff"], elf["e_shentsize"], elf["e_shnum"])
    return _Target((data, sections, shdr))


class _Target(tuple):
    """The fixture's bytes and layout, with a short repr for Hypothesis' reports."""

    def __repr__(self) -> str:
        return "<fixture ELF>"


def read_or_ingest_error(tmp_path: Path, data: bytes, kind: str) -> None:
    """The property: read_image succeeds or raises IngestError, in bounded time."""
    TRIED[kind] = TRIED.get(kind, 0) + 1
    path = tmp_path / f"mutant-{kind}"
    path.write_bytes(data)
    start = time.monotonic()
    try:
        pipeline.read_image(path, Identity(), jobs=1)
    except IngestError as exc:
        assert str(path) in str(exc)
    assert time.monotonic() - start < 5


@pytest.mark.slow
@given(cut=st.integers(min_value=0, max_value=1 << 30))
@FUZZ
def test_truncated_anywhere(tmp_path_factory, target, cut):
    data = target[0]
    read_or_ingest_error(tmp_path_factory.getbasetemp(), data[: cut % (len(data) + 1)], "truncate")


@pytest.mark.slow
@pytest.mark.parametrize("section", SECTIONS)
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=8))
@FUZZ
def test_byte_flips_in_section(tmp_path_factory, target, section, flips):
    data, sections, _ = target
    off, size = sections[section]
    buf = bytearray(data)
    for where, mask in flips:
        buf[off + where % size] ^= mask
    read_or_ingest_error(tmp_path_factory.getbasetemp(), bytes(buf), section)


@pytest.mark.slow
@given(
    index=st.integers(0, 1 << 16),
    field=st.sampled_from(["offset", "size"]),
    value=st.one_of(
        st.integers(0, (1 << 64) - 1), st.sampled_from([2**63, 2**64 - 1, 2**44, 2**32, 2**31 - 1])
    ),
)
@FUZZ
def test_section_header_out_of_file(tmp_path_factory, target, index, field, value):
    """ELF64 section headers: sh_offset at +24, sh_size at +32 (8 bytes each)."""
    data, _, (shoff, shentsize, shnum) = target
    buf = bytearray(data)
    at = shoff + (index % shnum) * shentsize + (24 if field == "offset" else 32)
    buf[at : at + 8] = struct.pack("<Q", value % (1 << 64))
    read_or_ingest_error(tmp_path_factory.getbasetemp(), bytes(buf), "shdr")


def _btf_blob() -> bytes:
    w = BtfWriter()
    i = w.int_("int", 4, 1)
    p = w.ptr(i)
    s = w.aggregate("struct", "pair", 16, [("a", i, 0, 0), ("p", p, 64, 0)])
    proto = w.proto(i, [("x", s), ("y", p)])
    w.func("f", proto)
    w.enum("colour", 4, [("RED", 0), ("GREEN", 1)])
    w.typedef("pair_t", s)
    return w.blob()


@pytest.mark.slow
@given(
    flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1, max_size=6),
    header_only=st.booleans(),
    cut=st.none() | st.integers(0, 1 << 16),
)
@FUZZ
def test_btf_blob_damage(flips, header_only, cut):
    """A damaged BTF blob: parsed or BadBtf, nothing else."""
    TRIED["btf"] = TRIED.get("btf", 0) + 1
    buf = bytearray(_btf_blob())
    span = 24 if header_only else len(buf)
    for where, mask in flips:
        buf[where % span] ^= mask
    if cut is not None:
        buf = buf[: cut % (len(buf) + 1)]
    start = time.monotonic()
    try:
        btf_reader.read_btf(bytes(buf))
    except btf_reader.BadBtf:
        pass
    assert time.monotonic() - start < 5


@pytest.mark.slow
def test_report_examples_tried():
    """Not a check: prints how many inputs the fuzz targets tried (pytest -s)."""
    print(f"\nfuzz inputs tried: {sum(TRIED.values())} {TRIED}")


# ---------------------------------------------------------------------------
# Fixed cases the issue lists, through the CLI (one line, exit 1, DB unchanged)
# ---------------------------------------------------------------------------


@pytest.fixture()
def db_copy(tmp_path, program_db) -> Path:
    db = tmp_path / "k.db"
    db.write_bytes(program_db.read_bytes())
    return db


def test_unreadable_file(tmp_path, db_copy, program):
    bad = tmp_path / "secret"
    bad.write_bytes(program.read_bytes())
    bad.chmod(0)
    try:
        try:
            open(bad, "rb").close()
        except PermissionError:
            pass
        else:
            pytest.skip("running as root: a chmod 000 file is still readable")
        ingest_fails(bad, db_copy, "cannot open")
    finally:
        bad.chmod(0o644)


def test_pe_file(tmp_path, db_copy):
    bad = tmp_path / "bzImage.efi"
    pe = bytearray(512)
    pe[:2] = b"MZ"
    pe[0x3C:0x40] = struct.pack("<I", 0x80)
    pe[0x80:0x84] = b"PE\0\0"
    bad.write_bytes(bytes(pe))
    ingest_fails(bad, db_copy, "not an ELF")


@pytest.mark.parametrize("damage", ["version", "hdr_len", "str_off", "truncated"])
def test_btf_blob_bad_header_cli(tmp_path, db_copy, damage):
    buf = bytearray(_btf_blob())
    if damage == "version":
        buf[2] = 9
    elif damage == "hdr_len":
        buf[4:8] = struct.pack("<I", 0xFFFFFF)
    elif damage == "str_off":
        buf[16:20] = struct.pack("<I", 0x7FFFFFFF)
    else:
        buf = buf[:12]
    bad = tmp_path / "btf"
    bad.write_bytes(bytes(buf))
    ingest_fails(bad, db_copy, "bad BTF")


# ---------------------------------------------------------------------------
# Crashes the fuzzing found, and resource limits (bounded by the data's size)
# ---------------------------------------------------------------------------


def _dies(program: Path):
    """(.debug_info file offset, [(cu offset, die, sibling attribute or None)])."""
    with open(program, "rb") as f:
        elf = ELFFile(f)
        info_off = elf.get_section_by_name(".debug_info")["sh_offset"]
        out = []
        for cu in elf.get_dwarf_info().iter_CUs():
            for die in cu.iter_DIEs():
                out.append(
                    (
                        cu.cu_offset,
                        cu.cu_die_offset,
                        cu.cu_offset + cu["unit_length"] + 4,
                        die.offset,
                        die.tag,
                        die.has_children,
                        die.attributes.get("DW_AT_sibling"),
                        die.size,
                    )
                )
        return info_off, out


def _expect_ingest_error(path: Path, *words: str) -> None:
    start = time.monotonic()
    with pytest.raises(IngestError) as err:
        pipeline.read_image(path, Identity(), jobs=1)
    assert time.monotonic() - start < 10
    assert str(path) in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_sibling_pointing_back_does_not_hang(tmp_path, program):
    """Found by fuzzing DW_AT_sibling: a DW_TAG_call_site whose sibling points to
    itself made the walk loop forever; now BadDwarf."""
    data = bytearray(program.read_bytes())
    info_off, dies = _dies(program)
    cu, _, _, die, tag, _, sib, _ = next(
        d for d in dies if d[4] == "DW_TAG_call_site" and d[6] is not None and d[6].form == "DW_FORM_ref4"
    )
    data[info_off + sib.offset : info_off + sib.offset + 4] = (die - cu).to_bytes(4, "little")
    bad = tmp_path / "sibling-loop"
    bad.write_bytes(bytes(data))
    _expect_ingest_error(bad, "DW_AT_sibling", "backwards")


def test_uleb_that_never_ends(tmp_path, program):
    """Every byte after the first unit's header has the continuation bit set."""
    data = bytearray(program.read_bytes())
    info_off, dies = _dies(program)
    cu, cu_die, end = dies[0][:3]
    data[info_off + cu_die : info_off + end] = b"\x80" * (end - cu_die)
    bad = tmp_path / "endless-uleb"
    bad.write_bytes(bytes(data))
    _expect_ingest_error(bad)


def test_deep_nesting_is_bounded(tmp_path, program):
    """The first unit's children replaced by copies of a DIE that opens a level
    and never closes it: as deep as the unit's bytes allow, then an error or a
    read, never a hang or a RecursionError."""
    data = bytearray(program.read_bytes())
    info_off, dies = _dies(program)
    cu, cu_die, end = dies[0][:3]
    opener = next(d for d in dies if d[0] == cu and d[5] and d[6] is None and d[3] != cu_die)
    raw = bytes(data[info_off + opener[3] : info_off + opener[3] + opener[7]])
    first_child = next(d[3] for d in dies if d[0] == cu and d[3] != cu_die)
    span = end - first_child
    data[info_off + first_child : info_off + end] = (raw * (span // len(raw) + 1))[:span]
    bad = tmp_path / "deep"
    bad.write_bytes(bytes(data))
    start = time.monotonic()
    try:
        pipeline.read_image(bad, Identity(), jobs=1)
    except IngestError:
        pass
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("field,value", [(8, 0x7FFFFFF0), (12, 0xFFFFFFFF), (20, 0xFFFFFFFF)])
def test_btf_header_claims_huge_sections(field, value):
    buf = bytearray(_btf_blob())
    buf[field : field + 4] = struct.pack("<I", value)
    with pytest.raises(btf_reader.BadBtf):
        btf_reader.read_btf(bytes(buf))


def test_btf_huge_vlen(tmp_path):
    """A struct claiming 65535 members in a tiny type section."""
    w = BtfWriter()
    i = w.int_("int", 4, 1)
    w.add(4, "big", 8, vlen=0xFFFF, fmt="III", extra=(w.s("a"), i, 0))
    with pytest.raises(btf_reader.BadBtf):
        btf_reader.read_btf(w.blob())


def _uleb_at(data: bytes, p: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[p]
        p += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, p


def _abbrev_form_offset(program: Path, attr: int, forms: set[int]) -> int:
    """File offset of the form byte of the first abbreviation spec (attr, form in forms)."""
    with open(program, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".debug_abbrev")
        base, data = sec["sh_offset"], sec.data()
    p = 0
    while p < len(data):
        code, p = _uleb_at(data, p)
        if code == 0:
            continue
        _, p = _uleb_at(data, p)
        p += 1
        while True:
            a, p = _uleb_at(data, p)
            form_at = p
            form, p = _uleb_at(data, p)
            if form == 0x21:
                _, p = _uleb_at(data, p)
            if a == 0 and form == 0:
                break
            if a == attr and form in forms:
                return base + form_at
    raise AssertionError("no such abbreviation spec")


@pytest.mark.parametrize(
    "attr,forms,new_form,word",
    [
        (0x03, {0x0E, 0x1F}, 0x06, "wrong class"),  # DW_AT_name: strp -> data4: a name that is an int
        (0x3A, {0x0B}, 0x0A, ""),  # DW_AT_decl_file: data1 -> block1: a file index that is bytes
    ],
)
def test_attribute_of_wrong_form_class(tmp_path, program, attr, forms, new_form, word):
    """Found by fuzzing .debug_abbrev: one flipped form byte turned a DW_AT_name
    into an integer (TypeError sorting names in the join) or a
    DW_AT_decl_file into bytes (TypeError in the walk); now BadDwarf."""
    data = bytearray(program.read_bytes())
    data[_abbrev_form_offset(program, attr, forms)] = new_form
    bad = tmp_path / "wrong-form"
    bad.write_bytes(bytes(data))
    _expect_ingest_error(bad, word)


def test_section_name_table_far_outside_the_file(tmp_path, program):
    """Found by fuzzing section headers: the section-name table's sh_offset set to
    0x100000001691 made pyelftools' seek fail with OSError (EINVAL) out of
    elf.open_image; now an IngestError."""
    data = bytearray(program.read_bytes())
    with open(program, "rb") as f:
        elf = ELFFile(f)
        shoff, shentsize, shstrndx = elf["e_shoff"], elf["e_shentsize"], elf["e_shstrndx"]
    at = shoff + shstrndx * shentsize + 24
    data[at : at + 8] = struct.pack("<Q", 17_592_186_039_953)
    bad = tmp_path / "shstrtab-far"
    bad.write_bytes(bytes(data))
    _expect_ingest_error(bad, "unreadable ELF headers")
