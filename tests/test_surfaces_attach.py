"""Attachability (ftrace records, kprobe blacklist), kfuncs and LSM hooks:
a gcc-built fixture with the kernel's markers, then cached Debian images
checked against independent oracles (raw instruction bytes, bpftool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.model import AttachFacts, Field, Layout, LsmHook
from ingest.readers.btf import BtfInfo, read_btf
from ingest.readers.elf import open_image
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces import attach, kfuncs, lsm
from ingest.types import cdecl
from tests.support import FIXTURES
from tests.support.kernel import CACHE
from tests.support.tools import build

SRC = FIXTURES / "surfaces_attach"


# ---------------------------------------------------------------------------
# Fixture program: every kind of function the readers tell apart.
# ---------------------------------------------------------------------------


def build_fixture(dest: Path, cf_protection: str) -> Path:
    """markers_start.o, attach.o, twin.o, markers_end.o linked in that order,
    so the marker labels bracket each section as the kernel's linker script does."""
    flags = ["-O2", "-pg", "-mfentry", "-mrecord-mcount", f"-fcf-protection={cf_protection}"]
    steps = [
        ["gcc", "-c", str(SRC / "markers_start.S"), "-o", "ms.o"],
        ["gcc", "-c", str(SRC / "markers_end.S"), "-o", "me.o"],
        ["gcc", *flags, "-c", str(SRC / "attach.c"), "-o", "a.o"],
        ["gcc", *flags, "-c", str(SRC / "twin.c"), "-o", "t.o"],
        ["gcc", "-nostdlib", "-static", "-no-pie", "-Wl,-e,main", "-o", "prog", "ms.o", "a.o", "t.o", "me.o"],
    ]
    for cmd in steps:
        build(cmd, cwd=dest)
    return dest / "prog"


@pytest.fixture(scope="module", params=["none", "full"])
def fixture_memory(request, tmp_path_factory):
    """The fixture program opened; "full" puts an endbr64 before each fentry call."""
    prog = build_fixture(tmp_path_factory.mktemp(f"attach-{request.param}"), request.param)
    with open(prog, "rb") as f:
        yield ImageMemory(open_image(f))


EXPECTED = {
    "main": AttachFacts(False, None),  # notrace
    "__fentry__": AttachFacts(False, None),
    "traced_plain": AttachFacts(True, None),
    "notrace_plain": AttachFacts(False, None),
    "nokprobe_fn": AttachFacts(True, "NOKPROBE_SYMBOL"),
    "kprobes_text_fn": AttachFacts(True, ".kprobes.text"),
    "noinstr_fn": AttachFacts(False, "noinstr"),
    "entry_fn": AttachFacts(True, "entry text"),
    # Has an __mcount_loc record, but init text is freed after boot and ftrace drops it.
    "init_fn": AttachFacts(False, "init text"),
    "twin": AttachFacts(True, None),  # one copy traced and probe-able, the other neither
    "call_twin_a": AttachFacts(True, None),
    "call_twin_b": AttachFacts(True, None),
}


def test_fixture_attach_facts_exactly(fixture_memory):
    assert attach.read_attach(fixture_memory) == EXPECTED


def test_fixture_every_mcount_record_has_a_function(fixture_memory):
    records = attach.mcount_records(fixture_memory)
    span = fixture_memory.range("__start_mcount_loc", "__stop_mcount_loc")
    assert len(records) == (span[1] - span[0]) // 8 == 8
    assert len(attach.ftrace_entries(fixture_memory)) == 8


def test_fixture_twin_copies_are_told_apart(fixture_memory):
    by_start = attach.kprobe_blocked(fixture_memory)
    twins = sorted(s.address for s in fixture_memory.symbols if s.name == "twin")
    traced = attach.ftrace_entries(fixture_memory)
    assert [by_start.get(a) for a in twins] == [None, "NOKPROBE_SYMBOL"]
    assert [a in traced for a in twins] == [True, False]


# ---------------------------------------------------------------------------
# Pure readers on hand-made inputs
# ---------------------------------------------------------------------------


def _hook_layouts(table: str) -> list[Layout]:
    heads = Layout(
        kind="struct",
        name=table,
        size=16,
        fields=[
            Field(
                position=0,
                name="file_open",
                type_text="struct hlist_head",
                decl="struct hlist_head file_open",
                bit_offset=0,
                bit_size=0,
                byte_size=8,
            ),
            Field(
                position=1,
                name="task_alloc",
                type_text="struct hlist_head",
                decl="struct hlist_head task_alloc",
                bit_offset=64,
                bit_size=0,
                byte_size=8,
            ),
        ],
    )
    options = Layout(
        kind="union",
        name="security_list_options",
        size=8,
        fields=[
            Field(
                position=0,
                name="file_open",
                type_text="int (*)(struct file *)",
                decl="int (*file_open)(struct file *)",
                bit_offset=0,
                bit_size=0,
                byte_size=8,
            ),
            Field(
                position=1,
                name="task_alloc",
                type_text="int (*)(struct task_struct *, long unsigned int)",
                decl="int (*task_alloc)(struct task_struct *, long unsigned int)",
                bit_offset=0,
                bit_size=0,
                byte_size=8,
            ),
            Field(
                position=2,
                name="lsm_func_addr",
                type_text="void *",
                decl="void *lsm_func_addr",
                bit_offset=0,
                bit_size=0,
                byte_size=8,
            ),
        ],
    )
    return [heads, options]


@pytest.mark.parametrize("table", ["security_hook_heads", "lsm_static_calls_table"])
def test_lsm_hooks_from_either_table(table):
    btf = BtfInfo({}, funcs={"bpf_lsm_file_open": [1]})
    assert lsm.read_lsm_hooks(_hook_layouts(table), btf) == [
        LsmHook("file_open", "int (struct file *)", True),
        LsmHook("task_alloc", "int (struct task_struct *, long unsigned int)", False),
    ]


def test_lsm_hooks_absent_without_a_table():
    assert lsm.read_lsm_hooks(_hook_layouts("something_else"), None) == []


def test_function_type_drops_the_pointer_declarator():
    assert lsm.function_type("int (*)(struct file *)") == "int (struct file *)"
    assert lsm.function_type("void *") is None


def test_kfuncs_from_decl_tags_without_an_image():
    btf = BtfInfo({}, decl_tags={"bpf_kfunc": ["b_kfunc", "a_kfunc"], "other": ["x"]})
    assert [(k.name, k.source, k.sets, k.flags) for k in kfuncs.read_kfuncs(None, btf)] == [
        ("a_kfunc", "decl_tag", (), None),
        ("b_kfunc", "decl_tag", (), None),
    ]
    assert kfuncs.read_kfuncs(None, None) == []


# ---------------------------------------------------------------------------
# Cached Debian images
# ---------------------------------------------------------------------------

IMAGES = {
    "5.10-amd64": "linux-image-5.10.0-46-amd64-dbg_5.10.262-1_amd64",
    "6.1-amd64": "linux-image-6.1.0-56-amd64-dbg_6.1.192-2_amd64",
    "6.1-i386": "linux-image-6.1.0-54-686-pae-dbg_6.1.190-1_i386",
    "6.12-amd64": "linux-image-6.12.113+deb13-amd64-dbg_6.12.113-1_amd64",
    "6.12-arm64": "linux-image-6.12.113+deb13-arm64-dbg_6.12.113-1_arm64",
    "6.12-armhf": "linux-image-6.12.113+deb13-armmp-dbg_6.12.113-1_armhf",
    "6.12-ppc64el": "linux-image-6.12.113+deb13-powerpc64le-dbg_6.12.113-1_ppc64el",
    "6.12-riscv64": "linux-image-6.12.113+deb13-riscv64-dbg_6.12.113-1_riscv64",
    "6.12-s390x": "linux-image-6.12.113+deb13-s390x-dbg_6.12.113-1_s390x",
    "7.2-amd64": "linux-image-7.2.13+deb14-amd64-dbg_7.2.13-1_amd64",
}
#: Images whose BTF the kfunc/LSM tests read (each read costs seconds).
BTF_IMAGES = ("6.1-amd64", "6.12-amd64", "7.2-amd64")


def _path(key: str) -> Path:
    path = CACHE / IMAGES[key] / "vmlinux"
    if not path.exists():
        pytest.skip(f"no cached kernel at {path}; run `make fetch-test-kernel`")
    return path


class Opened:
    """One cached image with what the readers produced from it."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.path = _path(key)
        self.stream = open(self.path, "rb")
        self.mem = ImageMemory(open_image(self.stream))
        self._attach: dict[str, AttachFacts] | None = None

    @property
    def attach(self) -> dict[str, AttachFacts]:
        if self._attach is None:
            self._attach = attach.read_attach(self.mem)
        return self._attach


@pytest.fixture(scope="module", params=list(IMAGES))
def image(request):
    opened = Opened(request.param)
    yield opened
    opened.stream.close()


@pytest.fixture(scope="module", params=BTF_IMAGES)
def btf_image(request):
    opened = Opened(request.param)
    data = opened.mem.image.section(".BTF")
    opened.btf = read_btf(data)
    opened.hooks = lsm.read_lsm_hooks(cdecl.layouts(opened.btf.graph), opened.btf)
    opened.kfuncs = kfuncs.read_kfuncs(opened.mem, opened.btf)
    yield opened
    opened.stream.close()


@pytest.mark.real_kernel
def test_every_mcount_record_is_read(image):
    span = image.mem.range("__start_mcount_loc", "__stop_mcount_loc")
    assert span is not None
    n = (span[1] - span[0]) // image.mem.pointer_size
    records = attach.mcount_records(image.mem)
    zeroed = n - len(records)  # overridden weak functions' records, zeroed by sorttable
    assert 0 <= zeroed < 0.02 * n
    assert len(attach.ftrace_entries(image.mem)) > 0.95 * len(records)


@pytest.mark.real_kernel
def test_ftrace_share_is_plausible(image):
    share = sum(f.ftrace for f in image.attach.values()) / len(image.attach)
    assert 0.65 < share < 0.95  # init text (freed after boot) counts as notrace: 7.2 amd64 0.69


@pytest.mark.real_kernel
def test_ordinary_functions_are_traceable_and_probeable(image):
    for name in ("vfs_read", "do_sys_openat2", "schedule"):
        assert image.attach[name] == AttachFacts(True, None), name


@pytest.mark.real_kernel
def test_noinstr_functions_are_never_traced(image):
    span = image.mem.range("__noinstr_text_start", "__noinstr_text_end")
    syms = attach.function_symbols(image.mem)
    inside = [s for s in syms if span[0] <= s.address < span[1]]
    outside = {s.name for s in syms if not span[0] <= s.address < span[1]}
    assert inside
    for sym in inside:  # a name with a copy elsewhere (ppc64 snooze_loop) may be attachable
        if sym.name not in outside:
            assert image.attach[sym.name].kprobe_blocked is not None, sym.name
    addresses = attach.ftrace_entries(image.mem)
    assert not [s.name for s in inside if s.address in addresses]


@pytest.mark.real_kernel
def test_notify_die_is_nokprobe_and_notrace(image):
    # kernel/notifier.c: NOKPROBE_SYMBOL(notify_die), built without fentry.
    assert image.attach["notify_die"] == AttachFacts(False, "NOKPROBE_SYMBOL")


@pytest.mark.real_kernel
def test_init_functions_are_refused_by_kprobes(image):
    assert image.attach["start_kernel"] == AttachFacts(False, "init text")


_NOP5 = bytes.fromhex("0f1f440000")
_ENDBR64 = bytes.fromhex("f30f1efa")


@pytest.mark.real_kernel
def test_x86_ftrace_matches_the_instruction_at_entry(image):
    """Oracle: the first instruction (after endbr64) is the 5-byte NOP objtool
    made of `call __fentry__`, or that call, exactly for the traced functions."""
    mem = image.mem
    if mem.image.arch != "amd64":
        pytest.skip("x86-64 only")
    fentry = mem.symbol("__fentry__").address
    syms = [s for s in attach.function_symbols(mem) if s.section == ".text"]
    count: dict[str, int] = {}
    for s in syms:
        count[s.name] = count.get(s.name, 0) + 1
    wrong = []
    for s in syms:
        head = mem.read(s.address, 9)
        if count[s.name] > 1 or head is None:
            continue
        at = 4 if head[:4] == _ENDBR64 else 0
        insn = head[at : at + 5]
        hooked = insn == _NOP5 or (
            insn[:1] == b"\xe8"
            and s.address + at + 5 + int.from_bytes(insn[1:], "little", signed=True) == fentry
        )
        if hooked != image.attach[s.name].ftrace:
            wrong.append(s.name)
    assert len(wrong) <= 40, wrong[:20]  # a few asm stubs start with a NOP of their own


@pytest.mark.real_kernel
def test_x86_int3_handlers(image):
    if image.mem.image.arch != "amd64":
        pytest.skip("x86-64 only")
    assert image.attach["do_int3"].kprobe_blocked == "NOKPROBE_SYMBOL"
    assert image.attach["exc_int3"] == AttachFacts(False, "noinstr")
    assert image.attach["asm_load_gs_index"].kprobe_blocked == "entry text"  # entry_SYSCALL_64 is NOTYPE


@pytest.mark.real_kernel
def test_arm64_records_sit_before_the_function(image):
    if image.mem.image.arch != "arm64":
        pytest.skip("arm64 only")
    funcs = attach.FunctionIndex(image.mem)
    records = attach.mcount_records(image.mem)
    assert all(funcs.owner(r) == r + 8 for r in records)  # CALL_OPS: two NOPs before the symbol
    assert image.attach["el1h_64_sync_handler"].kprobe_blocked is not None


def _bpftool() -> str:
    tool = shutil.which("bpftool") or next(
        (p for p in ("/usr/sbin/bpftool", "/usr/bin/bpftool") if Path(p).exists()), None
    )
    if tool is None:
        pytest.skip("bpftool is not installed")
    return tool


def _btf_dump(path: Path) -> list[str]:
    proc = subprocess.run(
        [_bpftool(), "btf", "dump", "file", str(path)], capture_output=True, text=True, check=True
    )
    return proc.stdout.splitlines()


@pytest.mark.real_kernel
def test_decl_tag_kfuncs_match_bpftool(btf_image):
    lines = _btf_dump(btf_image.path)
    names = {}
    for line in lines:
        if line.startswith("[") and "] FUNC '" in line:
            names[line[1 : line.index("]")]] = line.split("'")[1]
    tagged = {
        names[line.split("type_id=")[1].split()[0]]
        for line in lines
        if "DECL_TAG 'bpf_kfunc'" in line and "component_idx=-1" in line
    }
    ours = {k.name for k in btf_image.kfuncs if k.source == "decl_tag"}
    assert ours == tagged


@pytest.mark.real_kernel
def test_set8_members_match_their_labels(btf_image):
    """Oracle: the `__BTF_ID__func__<name>__<n>` labels inside each kfunc set
    name the same functions as the resolved BTF ids."""
    mem = btf_image.mem
    kfunc_sets = {s for k in btf_image.kfuncs for s in k.sets}
    assert kfunc_sets
    for set_name in kfunc_sets:
        sym = mem.symbol(kfuncs.SET8_PREFIX + set_name)
        cnt = mem.uint(sym.address, 4)
        by_id = {k.name for k in btf_image.kfuncs if set_name in k.sets}
        assert kfuncs.set_labels(mem, sym, cnt) == by_id, set_name


@pytest.mark.real_kernel
def test_known_kfuncs(btf_image):
    by_name = {k.name: k for k in btf_image.kfuncs}
    if btf_image.key != "7.2-amd64":  # 6.16 renamed it css_rstat_flush
        assert by_name["cgroup_rstat_flush"].sets == ("bpf_rstat_kfunc_ids",)
    if btf_image.key == "6.1-amd64":  # before decl tags and before the generic kfuncs
        assert by_name["crash_kexec"].source == "btf_id_set8"
        assert by_name["crash_kexec"].sets == ("tracing_btf_ids",)
        assert by_name["crash_kexec"].flags == 1 << 6  # KF_DESTRUCTIVE
        assert "bpf_task_acquire" not in by_name
    else:
        task = by_name["bpf_task_acquire"]
        assert (task.source, task.sets) == ("decl_tag", ("generic_btf_ids",))
        assert task.flags & 1  # KF_ACQUIRE


@pytest.mark.real_kernel
def test_lsm_hooks_match_bpftool(btf_image):
    lines = _btf_dump(btf_image.path)
    table = next(t for t in lsm.HOOK_TABLES if any(f"STRUCT '{t}'" in line for line in lines))
    header = next(line for line in lines if f"STRUCT '{table}'" in line)
    assert len(btf_image.hooks) == int(header.rsplit("vlen=", 1)[1])
    bpf_lsm = {line.split("'")[1] for line in lines if "] FUNC 'bpf_lsm_" in line}
    assert {h.name for h in btf_image.hooks if h.bpf_lsm} == {
        h.name for h in btf_image.hooks if f"bpf_lsm_{h.name}" in bpf_lsm
    }
    assert table == ("security_hook_heads" if btf_image.key == "6.1-amd64" else "lsm_static_calls_table")


@pytest.mark.real_kernel
def test_file_open_hook(btf_image):
    hooks = {h.name: h for h in btf_image.hooks}
    assert hooks["file_open"] == LsmHook("file_open", "int (struct file *)", True)
    assert all(h.prototype for h in btf_image.hooks)
