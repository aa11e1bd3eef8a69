"""Split BTF (a module's .BTF over vmlinux's): a hand-made base + split pair
with exact expected types, and the real 6.1 ext4/xfs/kvm/nf_conntrack modules
over the real vmlinux BTF against `bpftool btf dump ... -B` (oracle at test time)."""

from __future__ import annotations

import random
import re
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from ingest.model import CType, Member
from ingest.readers.btf import BadBtf, BtfDecl, BtfInfo, DatasecEntry, Overlay, read_btf
from ingest.types import cdecl
from ingest.types.layouts import LayoutChannel
from tests.support.btf import BtfWriter
from tests.support.kernel import REAL_KERNEL, module_tree, real_module
from tests.support.tools import require

# ---------------------------------------------------------------------------
# Fixture: a base and a split blob over it
# ---------------------------------------------------------------------------


def _base() -> BtfWriter:
    """ids 1..8: int, long unsigned int, list_head *, struct list_head,
    size_t, const int, int (size_t a), FUNC base_fn."""
    w = BtfWriter()
    w.int_("int", 4, 1)  # 1
    w.int_("long unsigned int", 8)  # 2
    w.ptr(4)  # 3
    w.aggregate("struct", "list_head", 16, [("next", 3, 0, 0), ("prev", 3, 64, 0)])  # 4
    w.typedef("size_t", 2)  # 5
    w.qualifier("const", 1)  # 6
    w.proto(1, [("a", 5)])  # 7
    w.func("base_fn", 7)  # 8
    return w


def _split(base: BtfWriter) -> BtfWriter:
    """ids 9..21 over _base(): module types referring to base ids and names."""
    m = BtfWriter(base)
    assert m.first_id == 9
    m.aggregate(  # 9: "list", "next" and "size_t"-typed "count" reuse base names/types
        "struct",
        "mod_state",
        48,
        [
            ("list", 4, 0, 0),
            ("owner", 11, 128, 0),
            ("count", 5, 192, 0),
            ("flags", 1, 256, 3),
            ("mode", 1, 259, 5),
            ("next", 10, 320, 0),
        ],
    )
    m.ptr(9)  # 10
    m.ptr(6)  # 11: const int *
    m.enum("mod_kind", 4, [("MOD_A", 0), ("MOD_B", -1)], signed=True)  # 12
    m.proto(10, [("st", 10), ("n", 5), (None, 0)])  # 13: variadic
    m.func("mod_init", 13)  # 14
    m.type_tag("user", 4)  # 15: a tag on a base struct
    m.ptr(15)  # 16
    m.var("mod_counter", 1)  # 17
    m.datasec(".data..percpu", 4, [(17, 0, 4)])  # 18
    m.decl_tag("bpf_kfunc", 14)  # 19
    m.aggregate("union", "mod_u", 8, [("a", 2, 0, 0), ("b", 16, 0, 0)])  # 20
    m.func("base_fn", 7, linkage=0)  # 21: a static FUNC sharing a base FUNC's name and proto
    return m


def _pair(order: str = "<") -> tuple[BtfInfo, BtfInfo]:
    base = _base()
    split = _split(base)
    b = read_btf(base.blob(order))
    return b, read_btf(split.blob(order), b)


@pytest.mark.parametrize("order", ["<", ">"])
def test_split_fixture_exact(order: str) -> None:
    base, mod = _pair(order)
    assert (base.first_id, base.last_id, mod.first_id, mod.last_id) == (1, 8, 9, 21)
    assert mod.base is base and mod.byte_order == base.byte_order
    g = mod.graph
    # Own types only; the TYPE_TAG on a base struct (15) is looked up, not listed.
    assert isinstance(g, Overlay) and list(g) == [9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21]
    assert g.hidden == {15: base.graph[4]}
    assert g[9] == CType(
        "struct",
        "mod_state",
        size=48,
        members=[
            Member("list", 4, 0),
            Member("owner", 11, 128),
            Member("count", 5, 192),
            Member(name="flags", type=1, bit_offset=256, bit_size=3),
            Member(name="mode", type=1, bit_offset=259, bit_size=5),
            Member("next", 10, 320),
        ],
    )
    assert g[10] == CType("ptr", ref=9) and g[11] == CType("ptr", ref=6)
    assert g[12] == CType("enum", "mod_kind", size=4, enumerators=[("MOD_A", 0), ("MOD_B", -1)])
    assert g[13] == CType("func", ref=10, params=[("st", 10), ("n", 5)], variadic=True)
    assert g[15] is base.graph[4]  # TYPE_TAG aliases its (base) target
    assert g[16] == CType("ptr", ref=15)
    assert g[20] == CType("union", "mod_u", size=8, members=[Member("a", 2, 0), Member("b", 16, 0)])
    for tid in (14, 17, 18, 19, 21):
        assert g[tid] is base.graph[0]  # FUNC, VAR, DATASEC, DECL_TAG: void placeholders
    # Base ids resolve through the split graph; the base is left as it was.
    assert g[4] is base.graph[4] and 1 in g and g.get(2) is base.graph[2] and 99 not in g
    assert g.get(99) is None
    assert len(base.graph) == 9 and base.funcs == {"base_fn": [7]}

    assert mod.funcs == {"mod_init": [13], "base_fn": [7]}
    assert mod.func_linkage == {"mod_init": 1, "base_fn": 0}
    assert dict(mod.func_ids) == {14: BtfDecl("mod_init", 1, 13), 21: BtfDecl("base_fn", 0, 7)}
    assert mod.func_ids.get(8) == BtfDecl("base_fn", 1, 7)  # kfunc sets may list base FUNCs
    assert dict(mod.var_ids) == {17: BtfDecl("mod_counter", 1, 1)}
    assert mod.variables == {"mod_counter": [1]}
    assert mod.datasecs == {".data..percpu": [DatasecEntry(17, 0, 4)]}
    assert mod.decl_tags == {"bpf_kfunc": ["mod_init"]}
    assert mod.string_at(base.strings_end) == "list" and mod.string_at(1) == "int"


def test_split_fixture_through_cdecl() -> None:
    """Prototypes and layouts of the module print over base types; pointer
    sizes come from the base's `long` (the module has none)."""
    _, mod = _pair()
    proto = cdecl.prototype(mod.graph, 13, "mod_init", "btf")
    assert proto.text == "struct mod_state *mod_init(struct mod_state *st, size_t n, ...);"
    assert cdecl.prototype(mod.graph, 7, "base_fn", "btf").text == "int base_fn(size_t a);"
    lays = cdecl.layouts(mod.graph)
    assert [(lay.kind, lay.name, lay.size) for lay in lays] == [
        ("struct", "mod_state", 48),
        ("enum", "mod_kind", 4),
        ("union", "mod_u", 8),
    ]
    rows = [(f.decl, f.bit_offset, f.bit_size, f.byte_size, f.parent) for f in lays[0].fields]
    assert rows == [
        ("struct list_head list", 0, 0, 16, None),
        ("const int *owner", 128, 0, 8, None),
        ("size_t count", 192, 0, 8, None),
        ("int flags:3", 256, 3, 4, None),
        ("int mode:5", 259, 5, 4, None),
        ("struct mod_state *next", 320, 0, 8, None),
    ]
    held = lays[0].fields[0].type_layout
    assert held is not None and (held.name, [f.decl for f in held.fields]) == (
        "list_head",
        ["struct list_head *next", "struct list_head *prev"],
    )
    assert [f.decl for f in lays[2].fields] == ["long unsigned int a", "struct list_head *b"]
    assert lays[1].values == [("MOD_A", 0), ("MOD_B", -1)]


def test_overlay() -> None:
    o: Overlay[int, str] = Overlay({1: "base", 2: "shadowed"})
    o[2], o[3] = "own", "own3"
    assert (o[1], o[2], o[3], o.get(1), o.get(4, "d"), len(o), sorted(o)) == (
        "base",
        "own",
        "own3",
        "base",
        "d",
        2,
        [2, 3],
    )
    assert 1 in o and 4 not in o and {**o} == {2: "own", 3: "own3"}
    with pytest.raises(KeyError):
        o[4]


def test_split_without_strings() -> None:
    """A split blob may have an empty string section (all names in the base)."""
    base = _base()
    m = BtfWriter(base)
    m.ptr(4)
    m.typedef("size_t", 9)
    blob = m.blob()
    assert struct.unpack_from("<I", blob, 20)[0] == 0  # str_len
    mod = read_btf(blob, read_btf(base.blob()))
    assert mod.graph[10] == CType("typedef", "size_t", ref=9)


def _damaged(edit: Any) -> tuple[BtfInfo, bytes]:
    """The base and a split blob over it after `edit(split_writer)`."""
    base = _base()
    m = BtfWriter(base)
    edit(m)
    return read_btf(base.blob()), m.blob()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.ptr(10), "out of range"),  # refers past its own last id (9)
        (lambda m: m.types.append((10_000, 2 << 24, 1, "", ())), "string offset"),
        (lambda m: (m.ptr(10), m.qualifier("const", 9)), "refers to itself"),
        (lambda m: m.func("f", 5), "does not refer to a FUNC_PROTO"),  # a base typedef
    ],
)
def test_split_damage(edit: Any, message: str) -> None:
    base, blob = _damaged(edit)
    with pytest.raises(BadBtf, match=message):
        read_btf(blob, base)


def test_split_needs_its_base() -> None:
    base, mod = _base(), None
    split = _split(base)
    with pytest.raises(BadBtf, match="empty string"):  # split strings do not start with ""
        read_btf(split.blob())
    with pytest.raises(BadBtf, match="endian"):
        read_btf(split.blob(">"), read_btf(base.blob("<")))
    assert mod is None


def _damage_loop(base: BtfInfo, blob: bytes, tries: int, seed: int) -> int:
    """Flip bytes / truncate `blob` `tries` times: each read parses or raises BadBtf
    and leaves the base as it was. Returns how many parsed."""
    rng, parsed, size = random.Random(seed), 0, len(base.graph)
    for _ in range(tries):
        buf = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] ^= rng.randint(1, 255)
        if rng.random() < 0.2:
            buf = buf[: rng.randrange(len(buf) + 1)]
        try:
            read_btf(bytes(buf), base)
            parsed += 1
        except BadBtf:
            pass
    assert len(base.graph) == size
    return parsed


def test_split_damage_fuzz() -> None:
    base = _base()
    b = read_btf(base.blob())
    parsed = _damage_loop(b, _split(base).blob(), 3000, 14)
    assert 0 < parsed < 3000


# ---------------------------------------------------------------------------
# Real: 6.1 modules over the 6.1 vmlinux BTF, oracle bpftool
# ---------------------------------------------------------------------------

_HEAD = re.compile(r"\[(\d+)\] (\w+) '(.*?)'(.*)$")
_ATTR = re.compile(r"(\w+)=(-?\w+)")
_SUB = re.compile(r"\t(?:'(.*?)' )?(.*)$")
_LINKAGE = {"static": 0, "global": 1, "extern": 2}


class RawType:
    """One type of `bpftool btf dump ... format raw`: kind, name, attributes
    and one (name, attributes) per following tab-indented line."""

    def __init__(self, kind: str, name: str, attrs: dict[str, str]) -> None:
        self.kind, self.name, self.attrs = kind, None if name == "(anon)" else name, attrs
        self.subs: list[tuple[str | None, dict[str, str]]] = []

    def int(self, key: str) -> int:
        return int(self.attrs[key], 0)


def parse_raw(text: str) -> dict[int, RawType]:
    out: dict[int, RawType] = {}
    last: RawType | None = None
    for line in text.splitlines():
        head = _HEAD.match(line)
        if head:
            last = out[int(head[1])] = RawType(head[2], head[3], dict(_ATTR.findall(head[4])))
        elif line.startswith("\t") and last is not None:
            sub = _SUB.match(line)
            assert sub is not None, line
            name = sub[1]
            last.subs.append((None if name in (None, "(anon)") else name, dict(_ATTR.findall(sub[2]))))
    return out


def _expected(raw: RawType, tid: int, raws: dict[int, RawType]) -> Any:
    """What the reader must hold for `raw`: a CType, a BtfDecl, or a tag."""
    k, name = raw.kind, raw.name
    if k in ("STRUCT", "UNION"):
        members = [
            Member(
                name=n,
                type=int(a["type_id"]),
                bit_offset=int(a["bits_offset"]),
                bit_size=int(a.get("bitfield_size", 0)),
            )
            for n, a in raw.subs
        ]
        return CType(k.lower(), name, size=raw.int("size"), members=members)
    if k in ("ENUM", "ENUM64"):
        values = [(n or "", int(a["val"])) for n, a in raw.subs]
        if not values:
            return CType("fwd", name, size=raw.int("size"), fwd_kind="enum")
        return CType("enum", name, size=raw.int("size"), enumerators=values)
    if k == "FUNC_PROTO":
        params = [(n, int(a["type_id"])) for n, a in raw.subs]
        variadic = bool(params) and params[-1] == (None, 0)
        return CType(
            "func", ref=raw.int("ret_type_id"), params=params[:-1] if variadic else params, variadic=variadic
        )
    simple = {
        "PTR": "ptr",
        "CONST": "const",
        "VOLATILE": "volatile",
        "RESTRICT": "restrict",
        "TYPEDEF": "typedef",
    }
    if k in simple:
        return CType(simple[k], name if k == "TYPEDEF" else None, ref=raw.int("type_id"))
    if k == "ARRAY":
        return CType("array", ref=raw.int("type_id"), count=raw.int("nr_elems") or None)
    if k == "INT":
        return CType("int", name, size=raw.int("size"))
    if k == "FLOAT":
        return CType("float", name, size=raw.int("size"))
    if k == "FWD":
        return CType("fwd", name, fwd_kind=raw.attrs["fwd_kind"])
    if k in ("FUNC", "VAR"):
        return BtfDecl(name or "", _LINKAGE[raw.attrs["linkage"]], raw.int("type_id"))
    if k == "DATASEC":
        return [DatasecEntry(int(a["type_id"]), int(a["offset"]), int(a["size"])) for _, a in raw.subs]
    if k == "TYPE_TAG":
        target = raw.int("type_id")
        while target in raws and raws[target].kind == "TYPE_TAG":
            target = raws[target].int("type_id")
        return ("tag", target)
    if k == "DECL_TAG":
        return ("decl_tag", name, raw.int("type_id"), raw.int("component_idx"))
    raise AssertionError(f"unexpected kind {k} at {tid}")


def _actual(info: BtfInfo, raw: RawType, tid: int, want: Any) -> Any:
    """What the reader holds for id `tid`, in _expected's terms (`want`)."""
    k = raw.kind
    if k == "TYPE_TAG":  # an alias of the very node its tag chain ends at
        return want if info.graph[tid] is info.graph[want[1]] else ("tag", info.graph[tid])
    if k == "FUNC":
        return info.func_ids.get(tid)
    if k == "VAR":
        return info.var_ids.get(tid)
    if k == "DATASEC":
        return info.datasecs.get(raw.name or "")
    if k == "DECL_TAG":
        decl = info.func_ids.get(raw.int("type_id")) or info.var_ids.get(raw.int("type_id"))
        tagged = decl is not None and decl.name in info.decl_tags.get(raw.name or "", ())
        component = raw.int("component_idx")
        return ("decl_tag", raw.name, raw.int("type_id"), component) if tagged or component != -1 else None
    return info.graph[tid]


def mismatches(info: BtfInfo, raws: dict[int, RawType]) -> list[str]:
    """Every own type of `info` against bpftool's raw dump, one line per difference."""
    out = []
    if sorted(raws) != list(range(info.first_id, info.last_id + 1)):
        out.append(f"ids: bpftool {min(raws)}..{max(raws)}, read {info.first_id}..{info.last_id}")
    for tid, raw in raws.items():
        want = _expected(raw, tid, raws)
        got = _actual(info, raw, tid, want)
        if want != got:
            out.append(f"[{tid}] {raw.kind} {raw.name}: bpftool {want!r}, read {got!r}")
    # Prototypes, as vmlinux.prototypes prints them: every FUNC name's proto is a FUNC_PROTO it names.
    for fid, decl in info.func_ids.items():
        try:
            cdecl.prototype(info.graph, decl.type_id, decl.name, "btf")
        except ValueError as e:
            out.append(f"[{fid}] FUNC {decl.name}: {e}")
    return out


def test_split_fixture_against_bpftool(tmp_path: Path) -> None:
    """libbpf reads the fixture pair as this reader does (and so checks BtfWriter)."""
    require("bpftool")
    base_w = _base()
    (tmp_path / "base.btf").write_bytes(base_w.blob())
    (tmp_path / "split.btf").write_bytes(_split(base_w).blob())
    base, mod = _pair()
    raws = parse_raw(_bpftool(tmp_path / "split.btf", tmp_path / "base.btf", "raw"))
    assert sorted(raws) == list(range(9, 22))
    assert mismatches(mod, raws) == []


def _section(path: Path, name: str) -> bytes | None:
    with open(path, "rb") as f:
        sec = ELFFile(f).get_section_by_name(name)
        return None if sec is None else sec.data()


@pytest.fixture(scope="module")
def real_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[BtfInfo, Path]:
    """The 6.1 vmlinux BTF, read, and written raw to a file for bpftool -B."""
    require("bpftool")
    if not REAL_KERNEL.exists():
        pytest.skip(f"no cached kernel at {REAL_KERNEL}; run `make fetch-test-kernel`")
    if module_tree() is None:
        pytest.skip("no 6.1.0-56 module tree: `make fetch-test-kernel`, or set KERNSURF_MODULES_61")
    blob = _section(REAL_KERNEL, ".BTF")
    assert blob is not None
    path = tmp_path_factory.mktemp("btf") / "vmlinux.btf"
    path.write_bytes(blob)
    return read_btf(blob), path


_PATHS = {
    "ext4": "fs/ext4/ext4.ko",
    "xfs": "fs/xfs/xfs.ko",
    "kvm": "arch/x86/kvm/kvm.ko",
    "nf_conntrack": "net/netfilter/nf_conntrack.ko",
}


def _module(name: str) -> Path:
    return real_module(_PATHS[name])


def _bpftool(ko: Path, base: Path, fmt: str) -> str:
    cmd = ["bpftool", "btf", "dump", "file", str(ko), "-B", str(base), "format", fmt]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout


def _read_module(ko: Path, base: BtfInfo) -> BtfInfo:
    blob = _section(ko, ".BTF")
    assert blob is not None, f"{ko} has no .BTF"
    return read_btf(blob, base)


# Named struct/union definitions in bpftool's C, and their top-level members;
# its alignment padding ("long: 64") is not in BTF, and it prints a 0-element
# array as "[0]" where kernsurf prints "[]" (BTF cannot tell them apart).
_C_AGG = re.compile(
    r"^(struct|union) (\w+) \{(?:\};|\n(.*?)^\}(?: __attribute__\(\(\w+\)\))?;$)", re.M | re.S
)
_PADDING = re.compile(r"^[a-z ]+: \d+$")


def _c_members(body: str) -> list[str]:
    """Top-level member declarations of a bpftool C body (nested bodies elided)."""
    out, depth, nested = [], 0, ""
    for line in (body or "").replace("[0];", "[];").splitlines():
        text = line.strip()
        if depth == 0 and not text.endswith("{"):
            out.append(text.rstrip(";"))
        elif text.endswith("{"):
            depth += 1
            nested = nested or text
        elif text.startswith("}"):
            depth -= 1
            if depth == 0:
                out.append(f"{nested[:-1].strip()} {{...}}{text[1:].rstrip(';')}".strip())
                nested = ""
    return [m for m in out if not _PADDING.match(m)]


def _kernsurf_members(lay: Any) -> list[str]:
    """Top-level members of a layout, spelled as bpftool prints them."""
    out = []
    for f in lay.fields:
        if f.parent is None:
            out.append(re.sub(r"(\w|\]):(\d+)$", r"\1: \2", f.decl).replace(" :", ": "))
    return [m for m in out if not _PADDING.match(m)]


def _over_base(base: BtfInfo, mod: BtfInfo) -> tuple[cdecl.LayoutBuilder, list]:
    """The module's layouts built on the base's builder, as module workers do."""
    types = cdecl.LayoutBuilder(base.graph)
    types.named()
    return types, cdecl.LayoutBuilder(mod.graph, base=types).named()


def test_layouts_over_the_base_builder_are_the_same() -> None:
    """A split graph's builder on its base's (ingest.modules.module) makes the layouts
    a builder of its own makes; the base types its members hold are the base
    builder's objects, and cross a LayoutChannel as those objects."""
    base, mod = _pair()
    types, lays = _over_base(base, mod)
    assert lays == cdecl.layouts(mod.graph)
    held = lays[0].fields[0].type_layout  # struct list_head, a base type
    assert held is not None and any(held is x for x in types.built())
    channel = LayoutChannel(types.built())
    sent = channel.dumps(lays)
    again = channel.loads(sent)
    assert again == lays and again[0].fields[0].type_layout is held
    assert again[0] is not lays[0]  # the module's own cross by value the first time
    # Sent again (another module of the same worker): by reference, to the kept objects.
    _, copies = _over_base(base, mod)
    resent = channel.dumps(copies)
    assert len(resent) < len(sent) / 3
    assert all(a is b for a, b in zip(channel.loads(resent), again))


@pytest.mark.slow
@pytest.mark.real_kernel
def test_real_ext4_over_vmlinux(real_base: tuple[BtfInfo, Path]) -> None:
    base, base_path = real_base
    ko = _module("ext4")
    info = _read_module(ko, base)
    raws = parse_raw(_bpftool(ko, base_path, "raw"))
    assert len(raws) == info.last_id - info.first_id + 1 > 2000
    assert mismatches(info, raws) == []
    assert "ext4_sb_info" in {t.name for t in info.graph.values() if t.kind == "struct"}
    assert len(info.func_ids) == sum(r.kind == "FUNC" for r in raws.values())

    # Layouts against bpftool's C: every named struct/union the module defines and
    # bpftool prints under its own name, top-level member declarations in order.
    c_text = _bpftool(ko, base_path, "c")
    c_aggs = {(m[1], m[2]): _c_members(m[3]) for m in _C_AGG.finditer(c_text)}
    lays = {(lay.kind, lay.name): lay for lay in cdecl.layouts(info.graph) if lay.kind != "enum"}
    compared = bad = 0
    for key, lay in lays.items():
        if key in c_aggs:
            compared += 1
            bad += _kernsurf_members(lay) != c_aggs[key]
    assert compared == len(lays) > 250 and bad == 0
    assert cdecl.layouts(info.graph) == _over_base(base, info)[1]  # as module workers build them
    sb = lays[("struct", "ext4_sb_info")]
    assert next(f for f in sb.fields if f.name == "s_sbh").byte_size == 8
    blob = _section(ko, ".BTF")
    assert blob is not None
    _damage_loop(base, blob, 100, 4)


@pytest.mark.real_kernel
@pytest.mark.parametrize("name", ["xfs", "kvm"])
def test_real_module_counts(real_base: tuple[BtfInfo, Path], name: str) -> None:
    base, base_path = real_base
    ko = _module(name)
    info = _read_module(ko, base)
    raws = parse_raw(_bpftool(ko, base_path, "raw"))
    funcs = sum(r.kind == "FUNC" for r in raws.values())
    structs = sum(r.kind == "STRUCT" for r in raws.values())
    assert funcs > 500 and structs > 100
    assert len(info.func_ids) == funcs
    assert sum(t.kind == "struct" for t in info.graph.values()) == structs
    assert len(info.graph) + len(getattr(info.graph, "hidden", ())) == len(raws)
    assert mismatches(info, raws) == []


@pytest.mark.real_kernel
def test_real_kfunc_set_ids(real_base: tuple[BtfInfo, Path]) -> None:
    """nf_conntrack's kfunc set (a BTF_SET8 patched by resolve_btfids over the
    split numbering) names module FUNCs: each id's FUNC matches a label symbol."""
    base, _ = real_base
    ko = _module("nf_conntrack")
    info = _read_module(ko, base)
    with open(ko, "rb") as f:
        elf = ELFFile(f)
        sec = elf.get_section_by_name(".BTF_ids")
        index = elf.get_section_index(".BTF_ids")
        assert sec is not None
        data = sec.data()
        syms = [s for s in elf.get_section_by_name(".symtab").iter_symbols() if s["st_shndx"] == index]
    (set8,) = [s for s in syms if s.name == "__BTF_ID__set8__nf_ct_kfunc_set"]
    cnt = struct.unpack_from("<I", data, set8["st_value"])[0]
    ids = [struct.unpack_from("<I", data, set8["st_value"] + 8 + 8 * i)[0] for i in range(cnt)]
    names = {info.func_ids[i].name for i in ids if i in info.func_ids}
    labels = {m[1] for s in syms if (m := re.match(r"__BTF_ID__func__(.+)__\d+$", s.name))}
    assert cnt == 10 and all(i >= info.first_id for i in ids)
    assert "bpf_ct_release" in names and names <= labels and len(names) == cnt


def _keys_agree(builder: cdecl.LayoutBuilder) -> int:
    """How many named types `builder` has; each one's dedupe key, made without
    its layout (LayoutBuilder.key), must equal the key of its layout (layout_key)."""
    n = 0
    for t in builder.named_nodes():
        lay = builder.layout(t)
        assert lay is not None and builder.key(t) == cdecl.layout_key(lay), t.name
        n += 1
    return n


def test_dedupe_key_without_the_layout_is_the_layouts() -> None:
    base, mod = _pair()
    assert _keys_agree(cdecl.LayoutBuilder(base.graph)) > 0
    assert _keys_agree(cdecl.LayoutBuilder(mod.graph)) > 0


@pytest.mark.real_kernel
def test_dedupe_key_on_the_real_vmlinux(real_base: tuple[BtfInfo, Path]) -> None:
    assert _keys_agree(cdecl.LayoutBuilder(real_base[0].graph)) > 7000
