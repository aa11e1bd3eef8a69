"""ingest/btf.py: reading BTF blobs from real producers and hand-made ones."""

from __future__ import annotations

import random
import struct

import pytest

from ingest.model import CType, Member
from ingest.readers.btf import BadBtf, BtfInfo, read_btf
from ingest.types import cdecl
from tests.support.btf import PRODUCERS, BtfWriter, build_all, need
from tests.support.kernel import REAL_KERNEL


@pytest.fixture(scope="session", params=PRODUCERS)
def blob(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The fixture's .BTF as emitted by each producer (gcc -gbtf, pahole -J)."""
    return need(build_all(tmp_path_factory)[request.param])


@pytest.fixture(scope="session")
def info(blob: bytes) -> BtfInfo:
    return read_btf(blob)


def by_name(info: BtfInfo, kind: str, name: str) -> CType:
    """The one node of `kind` called `name`."""
    found = [t for t in info.graph.values() if t.kind == kind and t.name == name]
    assert len(found) == 1, (kind, name, found)
    return found[0]


# ---------------------------------------------------------------------------
# Real producers
# ---------------------------------------------------------------------------


def test_ids_are_btf_ids(info: BtfInfo) -> None:
    assert list(info.graph) == list(range(len(info.graph)))
    assert info.graph[0].kind == "void"


def test_funcs_map_to_prototypes(info: BtfInfo) -> None:
    assert sorted(info.funcs) == ["log_printf", "lookup", "no_params", "vmap"]
    for ids in info.funcs.values():
        assert len(ids) == 1 and info.graph[ids[0]].kind == "func"
    assert set(info.func_linkage) == set(info.funcs)


def test_int_names_as_the_compiler_spells_them(info: BtfInfo) -> None:
    names = {t.name: t.size for t in info.graph.values() if t.kind == "int"}
    assert names["long unsigned int"] == 8
    assert names["_Bool"] == 1
    assert names["short unsigned int"] == 2
    assert names["signed char"] == 1
    assert names["char"] == 1
    assert by_name(info, "float", "double").size == 8


def test_func_proto_params_have_names(info: BtfInfo) -> None:
    vmap = info.graph[info.funcs["vmap"][0]]
    assert [n for n, _ in vmap.params] == ["pages", "count", "flags", "prot"]
    assert not vmap.variadic
    assert info.graph[vmap.ref].kind == "ptr" and info.graph[vmap.ref].ref == 0


def test_variadic_func_proto(info: BtfInfo) -> None:
    proto = info.graph[info.funcs["log_printf"][0]]
    assert proto.variadic
    assert [n for n, _ in proto.params] == ["fmt"]


def test_bitfield_members(info: BtfInfo) -> None:
    mixed = by_name(info, "struct", "mixed")
    got = [(m.name, m.bit_offset, m.bit_size) for m in mixed.members]
    assert got == [
        ("flags", 0, 0),
        (None, 32, 0),
        ("ready", 64, 1),
        ("mode", 65, 3),
        ("level", 68, 4),
        ("pos", 96, 0),
        ("tail", 192, 0),
    ]
    assert mixed.size == 32


def test_forward_declarations(info: BtfInfo) -> None:
    assert by_name(info, "fwd", "opaque_u").fwd_kind == "union"
    assert by_name(info, "fwd", "page").fwd_kind == "struct"


def test_anonymous_aggregates_have_no_name(info: BtfInfo) -> None:
    mixed = by_name(info, "struct", "mixed")
    union = info.graph[mixed.members[1].type]
    assert union.kind == "union" and union.name is None and union.size == 4


# ---------------------------------------------------------------------------
# Hand-made blobs: every kind, both byte orders
# ---------------------------------------------------------------------------


def every_kind() -> BtfWriter:
    w = BtfWriter()
    w.int_("int", 4, 1)  # 1
    w.int_("long unsigned int", 8)  # 2
    w.int_("_Bool", 1, 4)  # 3
    w.ptr(1)  # 4
    w.array(1, 2, 4)  # 5
    w.aggregate("struct", "s", 16, [("a", 1, 0, 0), ("b", 1, 32, 3), (None, 7, 64, 0)])  # 6
    w.aggregate("union", None, 8, [("x", 1, 0, 0), ("y", 2, 0, 0)])  # 7
    w.enum("color", 4, [("RED", 0), ("NEG", -1)], signed=True)  # 8
    w.enum64("big", [("HUGE", 1 << 40), ("MAXU", 2**64 - 1)])  # 9
    w.enum64("sbig", [("MIN", -(1 << 63))], signed=True)  # 10
    w.fwd("later", union=True)  # 11
    w.fwd("other")  # 12
    w.typedef("u32_t", 1)  # 13
    w.qualifier("volatile", 1)  # 14
    w.qualifier("const", 4)  # 15
    w.qualifier("restrict", 4)  # 16
    w.proto(1, [("fmt", 15), (None, 0)])  # 17
    w.func("log", 17, linkage=1)  # 18
    w.func("helper", 21, linkage=0)  # 19
    w.func("helper", 21, linkage=0)  # 20
    w.proto(0, [])  # 21
    w.var("counter", 1)  # 22
    w.datasec(".data", 4, [(22, 0, 4)])  # 23
    w.float_("double", 8)  # 24
    w.decl_tag("bpf_kfunc", 18)  # 25
    w.decl_tag("arg_tag", 18, component=0)  # 26
    w.type_tag("user", 15)  # 27
    w.ptr(27)  # 28
    w.decl_tag("percpu", 22)  # 29
    w.enum("fwd_enum", 4, [])  # 30
    w.enum("u", 4, [("ALL", 0xFFFFFFFF)])  # 31
    w.type_tag("rcu", 27)  # 32: tag of a tag
    return w


@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
def test_every_kind(order: str) -> None:
    info = read_btf(every_kind().blob(order))
    g = info.graph
    assert info.byte_order == {"<": "little", ">": "big"}[order]
    assert len(g) == 33
    assert g[1] == CType("int", "int", size=4)
    assert g[4] == CType("ptr", ref=1)
    assert g[5] == CType("array", ref=1, count=4)
    assert g[6].members == [
        Member(name="a", type=1, bit_offset=0, bit_size=0),
        Member(name="b", type=1, bit_offset=32, bit_size=3),
        Member(name=None, type=7, bit_offset=64, bit_size=0),
    ]
    assert g[7] == CType("union", None, size=8, members=[Member("x", 1, 0), Member("y", 2, 0)])
    assert g[8].enumerators == [("RED", 0), ("NEG", -1)]
    assert g[9].enumerators == [("HUGE", 1 << 40), ("MAXU", 2**64 - 1)]
    assert g[10].enumerators == [("MIN", -(1 << 63))]
    assert (g[9].kind, g[9].size) == ("enum", 8)
    assert g[11] == CType("fwd", "later", fwd_kind="union")
    assert g[12] == CType("fwd", "other", fwd_kind="struct")
    assert g[13] == CType("typedef", "u32_t", ref=1)
    assert [g[i].kind for i in (14, 15, 16)] == ["volatile", "const", "restrict"]
    assert g[17] == CType("func", ref=1, params=[("fmt", 15)], variadic=True)
    assert g[21] == CType("func", ref=0, params=[])
    assert [g[i].kind for i in (18, 19, 20, 22, 23, 25, 26, 29)] == ["void"] * 8
    assert g[24] == CType("float", "double", size=8)
    assert g[27] is g[15] and g[32] is g[15]  # TYPE_TAG is transparent
    assert g[30] == CType("fwd", "fwd_enum", size=4, fwd_kind="enum")
    assert g[31].enumerators == [("ALL", 0xFFFFFFFF)]
    assert info.funcs == {"log": [17], "helper": [21, 21]}
    assert info.func_linkage == {"log": 1, "helper": 0}
    assert info.variables == {"counter": [1]}
    assert info.decl_tags == {"bpf_kfunc": ["log"], "percpu": ["counter"]}
    assert cdecl.type_name(g, 28) == "int * const *"


def test_big_endian_equals_little_endian() -> None:
    w = every_kind()
    assert read_btf(w.blob(">")).graph == read_btf(w.blob("<")).graph


def test_static_functions_repeat() -> None:
    info = read_btf(every_kind().blob())
    assert info.funcs["helper"] == [21, 21]


# ---------------------------------------------------------------------------
# Malformed input: BadBtf and nothing else
# ---------------------------------------------------------------------------


def small() -> BtfWriter:
    w = BtfWriter()
    w.int_("int", 4, 1)
    w.ptr(1)
    w.aggregate("struct", "s", 8, [("p", 2, 0, 0)])
    return w


def patch_header(blob: bytes, **fields: int) -> bytes:
    names = ["magic", "version", "flags", "hdr_len", "type_off", "type_len", "str_off", "str_len"]
    values = dict(zip(names, struct.unpack_from("<HBBIIIII", blob)))
    values.update(fields)
    return struct.pack("<HBBIIIII", *values.values()) + blob[24:]


def test_small_blob_is_fine() -> None:
    assert read_btf(small().blob()).graph[3].members == [Member("p", 2, 0)]


def test_bad_magic() -> None:
    with pytest.raises(BadBtf, match="magic"):
        read_btf(b"\x00\x00" + small().blob()[2:])


def test_truncated_header() -> None:
    with pytest.raises(BadBtf, match="header"):
        read_btf(small().blob()[:10])


def test_bad_version() -> None:
    with pytest.raises(BadBtf, match="version"):
        read_btf(patch_header(small().blob(), version=2))


def test_bad_header_length() -> None:
    with pytest.raises(BadBtf, match="header length"):
        read_btf(patch_header(small().blob(), hdr_len=4))


def test_type_section_outside_the_blob() -> None:
    with pytest.raises(BadBtf, match="outside"):
        read_btf(patch_header(small().blob(), type_len=1 << 30))


def test_string_section_outside_the_blob() -> None:
    with pytest.raises(BadBtf, match="outside"):
        read_btf(patch_header(small().blob(), str_off=0xFFFFFFF0))


def test_string_offset_out_of_range() -> None:
    w = small()
    name_off, info, st, fmt, extra = w.types[2]
    w.types[2] = (name_off, info, st, fmt, (5000,) + extra[1:])  # member name
    with pytest.raises(BadBtf, match="string offset"):
        read_btf(w.blob())


def test_type_id_out_of_range() -> None:
    w = small()
    w.ptr(99)
    with pytest.raises(BadBtf, match="out of range"):
        read_btf(w.blob())


def test_unknown_kind() -> None:
    w = small()
    w.add(25, None, 0)
    with pytest.raises(BadBtf, match="unknown kind"):
        read_btf(w.blob())


def test_members_outside_the_type_section() -> None:
    w = small()
    w.add(4, "s2", 8, vlen=100)
    with pytest.raises(BadBtf, match="outside the type section"):
        read_btf(w.blob())


def test_pointer_cycle() -> None:
    w = BtfWriter()
    w.ptr(2)
    w.ptr(1)
    with pytest.raises(BadBtf, match="itself"):
        read_btf(w.blob())


def test_typedef_cycle_through_function_params() -> None:
    w = BtfWriter()
    w.typedef("fn_t", 2)
    w.proto(0, [(None, 3)])
    w.ptr(1)
    with pytest.raises(BadBtf, match="itself"):
        read_btf(w.blob())


def test_type_tag_loop() -> None:
    w = BtfWriter()
    w.type_tag("a", 2)
    w.type_tag("b", 1)
    with pytest.raises(BadBtf, match="loops"):
        read_btf(w.blob())


def test_func_without_prototype() -> None:
    w = small()
    w.func("f", 1)
    with pytest.raises(BadBtf, match="FUNC_PROTO"):
        read_btf(w.blob())


def accept_or_reject(data: bytes) -> None:
    """read_btf either works (and the result prints) or raises BadBtf."""
    try:
        info = read_btf(data)
    except BadBtf:
        return
    cdecl.layouts(info.graph)
    for name, ids in info.funcs.items():
        for tid in ids:
            cdecl.prototype(info.graph, tid, name, "btf")


def test_random_truncations(blob: bytes) -> None:
    rng = random.Random(1234)
    for cut in rng.sample(range(len(blob)), 40):
        with pytest.raises(BadBtf):
            read_btf(blob[:cut])
    # Keep the header consistent but end the type section anywhere.
    type_len = struct.unpack_from("<I", blob, 12)[0]
    for cut in rng.sample(range(type_len), 40):
        accept_or_reject(patch_header(blob, type_len=cut))


def test_random_corruption(blob: bytes) -> None:
    rng = random.Random(5678)
    for _ in range(300):
        data = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(24, len(data))] = rng.randrange(256)
        accept_or_reject(bytes(data))


# ---------------------------------------------------------------------------
# The real kernel (skipped unless the Debian 6.1 vmlinux is cached)
# ---------------------------------------------------------------------------


@pytest.mark.real_kernel
def test_real_kernel_btf() -> None:
    if not REAL_KERNEL.exists():
        pytest.skip(f"{REAL_KERNEL} not cached")
    from elftools.elf.elffile import ELFFile

    with open(REAL_KERNEL, "rb") as f:
        data = ELFFile(f).get_section_by_name(".BTF").data()
    info = read_btf(data)
    assert len(info.graph) > 100_000
    (vmap,) = info.funcs["vmap"]
    assert (
        cdecl.prototype(info.graph, vmap, "vmap", "btf").text
        == "void *vmap(struct page **pages, unsigned int count, long unsigned int flags, pgprot_t prot);"
    )
    (ops,) = [lay for lay in cdecl.layouts(info.graph) if lay.name == "dma_buf_ops"]
    assert ops.size == 104
    # As on the reference struct page for 6.x (which drops the indentation).
    assert (
        cdecl.layout_text(ops, comments=False).replace("\t", "")
        == """\
struct dma_buf_ops {
bool cache_sgt_mapping;
int (*attach)(struct dma_buf *, struct dma_buf_attachment *);
void (*detach)(struct dma_buf *, struct dma_buf_attachment *);
int (*pin)(struct dma_buf_attachment *);
void (*unpin)(struct dma_buf_attachment *);
struct sg_table * (*map_dma_buf)(struct dma_buf_attachment *, enum dma_data_direction);
void (*unmap_dma_buf)(struct dma_buf_attachment *, struct sg_table *, enum dma_data_direction);
void (*release)(struct dma_buf *);
int (*begin_cpu_access)(struct dma_buf *, enum dma_data_direction);
int (*end_cpu_access)(struct dma_buf *, enum dma_data_direction);
int (*mmap)(struct dma_buf *, struct vm_area_struct *);
int (*vmap)(struct dma_buf *, struct iosys_map *);
void (*vunmap)(struct dma_buf *, struct iosys_map *);
};"""
    )


def test_header_is_read_once_for_every_reader() -> None:
    from ingest.readers.btf import read_header, string_section

    blob = small().blob()
    header = read_header(blob)
    assert header.byte_order == "little" and header.hdr_len == 24
    assert blob[header.types] and string_section(blob) == blob[header.strings]
    assert string_section(blob)[:1] == b"\0"
    with pytest.raises(BadBtf, match="header length"):
        read_header(patch_header(blob, hdr_len=4))
