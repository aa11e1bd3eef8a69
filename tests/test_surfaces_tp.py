"""Tracepoints and syscalls (docs/concepts.md#surfaces): ingest.tracepoints and ingest.syscalls
on a miniature compiled here, and on the cached Debian images checked against
nm/objdump as oracles."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ingest import pipeline
from ingest.model import CType, Syscall, Tracepoint
from ingest.readers import btf as btf_reader
from ingest.readers import elf
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces.syscalls import normalise, read_syscalls, table_slots
from ingest.surfaces.tracepoints import read_tracepoints
from ingest.types import cdecl
from tests.support import FIXTURES
from tests.support.kernel import REAL_KERNEL
from tests.support.programs import compile_syscall_events, compile_traced
from tests.support.tools import require

# ---------------------------------------------------------------------------
# The miniature: tests/fixtures/surfaces/surfaces.c
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """(ImageMemory, Build read from DWARF) of the compiled miniature."""
    out = compile_traced(
        FIXTURES / "surfaces" / "surfaces.c", tmp_path_factory.mktemp("surfaces") / "surfaces"
    )
    build = pipeline.read_image(out, pipeline.Identity(label="surfaces"), jobs=1)
    with open(out, "rb") as f:
        yield ImageMemory(elf.open_image(f)), build


def mini_tracepoints(mini, btf=None) -> list[Tracepoint]:
    mem, build = mini
    return read_tracepoints(mem, build.layouts, btf, frozenset(f.name for f in build.functions))


SCHED_SWITCH = Tracepoint(
    name="sched_switch",
    system="sched",
    event_class="sched_switch",
    struct="trace_event_raw_sched_switch",
    func="trace_event_raw_event_sched_switch",
    print_fmt='"prev_pid=%d next_pid=%d", REC->prev_pid, REC->next_pid',
)
MINI_EVENTS = [
    Tracepoint(name="my_probe", system="demo", event_class="my_probe", print_fmt='"x"'),
    SCHED_SWITCH,
    Tracepoint(
        name="sched_wakeup",
        system="sched",
        event_class="sched_wakeup_template",
        struct="trace_event_raw_sched_wakeup_template",
        func="trace_event_raw_event_sched_wakeup_template",
        print_fmt='"pid=%d", REC->pid',
    ),
]


def test_trace_events_from_dwarf_layouts(mini):
    # Skipped: `function` (ftrace-internal) and `sys_enter_read` (per-syscall);
    # the second `sched_switch` (class my_probe) loses to the first.
    assert mini_tracepoints(mini) == MINI_EVENTS


def test_trace_event_flags_come_from_the_image(mini):
    # The miniature's enum moves TRACEPOINT to bit 2: with the kernel's bit 4
    # sched_switch would be read as `call->name` (the tracepoint pointer).
    enum = next(lay for lay in mini[1].layouts if lay.name == "trace_event_flags")
    assert dict(enum.values)["TRACE_EVENT_FL_TRACEPOINT"] == 4
    assert "sched_switch" in [t.name for t in mini_tracepoints(mini)]


def test_without_the_flags_enum_tracepoints_are_found_by_symbol(mini):
    # DWARF layouts lack the kernel's anonymous enum (and its bits moved in
    # 6.2): `call->tp` pointing at a `__tracepoint_<name>` object tells instead.
    mem, build = mini
    layouts = [lay for lay in build.layouts if lay.kind != "enum"]
    assert read_tracepoints(mem, layouts, None, frozenset(f.name for f in build.functions)) == MINI_EVENTS


def test_raw_tracepoints_merge_with_events_by_name(mini):
    graph = {
        0: CType("void"),
        1: CType("ptr", ref=0),
        2: CType("int", "_Bool", size=1),
        3: CType("func", ref=0, params=[(None, 1), (None, 2)]),
        4: CType("ptr", ref=3),
        5: CType("typedef", "btf_trace_sched_switch", ref=4),
        6: CType("typedef", "btf_trace_pelt_cfs_tp", ref=4),
        7: CType("typedef", "btf_trace_not_a_pointer", ref=2),
    }
    rows = mini_tracepoints(mini, btf_reader.BtfInfo(graph=graph))
    by_name = {t.name: t for t in rows}
    assert [t.name for t in rows] == ["my_probe", "pelt_cfs_tp", "sched_switch", "sched_wakeup"]
    assert by_name["sched_switch"].raw_prototype == "void (void *, _Bool)"
    assert by_name["sched_switch"].system == "sched"
    assert by_name["pelt_cfs_tp"] == Tracepoint(name="pelt_cfs_tp", raw_prototype="void (void *, _Bool)")


def test_without_image_only_raw_tracepoints(mini):
    graph = {
        0: CType("void"),
        1: CType("func", ref=0, params=[]),
        2: CType("ptr", ref=1),
        3: CType("typedef", "btf_trace_x", ref=2),
    }
    assert read_tracepoints(None, mini[1].layouts, btf_reader.BtfInfo(graph=graph), frozenset()) == [
        Tracepoint(name="x", raw_prototype="void (void)")
    ]


def test_syscall_tables_resolved_and_ni_dropped(mini):
    assert read_syscalls(mini[0]) == [
        Syscall(table="sys_call_table", abi="native", number=0, name="read", symbol="__x64_sys_read"),
        Syscall(table="sys_call_table", abi="native", number=1, name="write", symbol="__x64_sys_write"),
        Syscall(
            table="sys_call_table", abi="native", number=3, name="getpid", symbol="__x64_sys_getpid"
        ),  # not its __ia32_ alias
        Syscall(table="sys_call_table", abi="native", number=5, name="newuname", symbol="__x64_sys_newuname"),
        Syscall(
            table="compat_sys_call_table", abi="compat", number=0, name="write", symbol="__x64_sys_write"
        ),  # st_size 0
        Syscall(table="compat_sys_call_table", abi="compat", number=2, name="read", symbol="__x64_sys_read"),
        Syscall(table="ia32_sys_call_table", abi="ia32", number=0, name="getpid", symbol="__ia32_sys_getpid"),
        Syscall(
            table="ia32_sys_call_table",
            abi="ia32",
            number=1,
            name="fcntl64",
            symbol="__ia32_compat_sys_fcntl64",
        ),
    ]


@pytest.mark.parametrize(
    "symbol, name",
    [
        ("__x64_sys_read", "read"),
        ("__arm64_sys_read", "read"),
        ("__s390x_sys_read", "read"),
        ("__riscv_sys_read", "read"),
        ("__ia32_sys_read", "read"),
        ("__s390_compat_sys_ipc", "ipc"),
        ("__ia32_compat_sys_fcntl64", "fcntl64"),
        ("__arm64_compat_sys_sigaction", "sigaction"),
        ("__x32_compat_sys_ioctl", "ioctl"),
        ("sys_read", "read"),
        ("compat_sys_open", "open"),
        ("__se_sys_exit", "exit"),
        ("__s390x_sys_dup2.localalias", "dup2"),
        ("sys_ni_syscall", "ni_syscall"),
        ("ppc_clone", "ppc_clone"),
    ],
)
def test_normalise_syscall_symbol(symbol, name):
    assert normalise(symbol) == name


# ---------------------------------------------------------------------------
# Cached Debian images (make fetch-test-kernel and friends)
# ---------------------------------------------------------------------------

DEBIAN = REAL_KERNEL.parent.parent
#: label -> cache directory; each test skips when its image is not cached.
IMAGES = {
    "amd64-5.10": "linux-image-5.10.0-46-amd64-dbg_5.10.262-1_amd64",
    "amd64-6.1": REAL_KERNEL.parent.name,
    "amd64-6.12": "linux-image-6.12.113+deb13-amd64-dbg_6.12.113-1_amd64",
    "amd64-7.2": "linux-image-7.2.13+deb14-amd64-dbg_7.2.13-1_amd64",
    "i386-6.1": "linux-image-6.1.0-54-686-pae-dbg_6.1.190-1_i386",
    "arm64-6.12": "linux-image-6.12.113+deb13-arm64-dbg_6.12.113-1_arm64",
    "armhf-6.12": "linux-image-6.12.113+deb13-armmp-dbg_6.12.113-1_armhf",
    "ppc64el-6.12": "linux-image-6.12.113+deb13-powerpc64le-dbg_6.12.113-1_ppc64el",
    "riscv64-6.12": "linux-image-6.12.113+deb13-riscv64-dbg_6.12.113-1_riscv64",
    "s390x-6.12": "linux-image-6.12.113+deb13-s390x-dbg_6.12.113-1_s390x",
}
#: Images with .BTF (the tracepoint tests take layouts from it; i386 and armhf have none).
WITH_BTF = ["amd64-5.10", "amd64-6.1", "arm64-6.12", "s390x-6.12", "amd64-7.2"]


def image_path(label: str) -> Path:
    path = DEBIAN / IMAGES[label] / "vmlinux"
    if not path.exists():
        pytest.skip(f"no cached kernel at {path}")
    return path


@pytest.fixture(scope="module")
def opened():
    """label -> ImageMemory, each image opened once per module."""
    cache: dict[str, ImageMemory] = {}
    files = []

    def get(label: str) -> ImageMemory:
        if label not in cache:
            f = open(image_path(label), "rb")
            files.append(f)
            cache[label] = ImageMemory(elf.open_image(f))
        return cache[label]

    yield get
    for f in files:
        f.close()


@pytest.fixture(scope="module")
def traced(opened):
    """label -> read_tracepoints() of a BTF image, computed once per module."""
    cache: dict[str, list[Tracepoint]] = {}

    def get(label: str) -> list[Tracepoint]:
        if label not in cache:
            mem = opened(label)
            btf = btf_reader.read_btf(mem.image.section(".BTF"))
            names = frozenset(btf.funcs) | {s.name for s in mem.symbols if s.kind == "func"}
            native = {s.name for s in read_syscalls(mem) if s.abi == "native"}
            cache[label] = read_tracepoints(mem, cdecl.layouts(btf.graph), btf, names, native)
        return cache[label]

    return get


def nm(path: Path) -> list[tuple[int, str, str]]:
    """(address, type letter, name) of every symbol, from binutils' nm."""
    require("nm")
    out = subprocess.run(["nm", str(path)], check=True, capture_output=True, text=True).stdout
    return [
        (int(a, 16), t, n) for a, t, n in (line.split() for line in out.splitlines() if line.count(" ") == 2)
    ]


# ---------------------------------------------------------------------------
# Per-syscall events: tests/fixtures/syscall_events/syscall_events.c
# ---------------------------------------------------------------------------


def test_syscall_events_from_metadata(tmp_path):

    out = compile_syscall_events(tmp_path)
    build = pipeline.read_image(out, pipeline.Identity(label="syscall_events"), jobs=1)
    events = {t.name: t for t in build.tracepoints}
    # chown16's metadata has no sys_call_table slot: init_syscall_trace() refuses its events.
    assert sorted(events) == ["sys_enter_getpid", "sys_enter_openat", "sys_exit_getpid", "sys_exit_openat"]
    assert events["sys_enter_openat"] == Tracepoint(
        name="sys_enter_openat",
        system="syscalls",
        event_class="syscall_enter",
        struct="syscall_trace_enter",
        syscall="openat",
        fields="int __syscall_nr; int dfd; const char * filename; int flags; umode_t mode",
    )
    assert events["sys_exit_openat"].fields == "int __syscall_nr; long ret"
    assert events["sys_exit_openat"].struct == "syscall_trace_exit"
    assert events["sys_enter_getpid"].fields == "int __syscall_nr"
    assert all(t.print_fmt is None and t.func is None for t in events.values())


@pytest.mark.real_kernel
def test_sched_switch_on_6_1_amd64(traced):
    tp = {t.name: t for t in traced("amd64-6.1")}["sched_switch"]
    assert (tp.system, tp.event_class, tp.struct, tp.func) == (
        "sched",
        "sched_switch",
        "trace_event_raw_sched_switch",
        "trace_event_raw_event_sched_switch",
    )
    assert tp.print_fmt.startswith(
        '"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> '
        'next_comm=%s next_pid=%d next_prio=%d", REC->prev_comm'
    )
    assert tp.raw_prototype == "void (void *, bool, struct task_struct *, struct task_struct *, unsigned int)"


@pytest.mark.real_kernel
def test_raw_only_tracepoint_on_6_1_amd64(traced):
    tp = {t.name: t for t in traced("amd64-6.1")}["sched_update_nr_running_tp"]
    assert tp == Tracepoint(
        name="sched_update_nr_running_tp", raw_prototype="void (void *, struct rq *, int)"
    )


@pytest.mark.slow
@pytest.mark.real_kernel
@pytest.mark.parametrize("label", WITH_BTF)
def test_events_match_nm(traced, opened, label):
    """Oracle: the `__event_<name>` pointers nm lists, less ftrace's own
    (`event_class_ftrace_<name>`); the per-syscall ones (`__event_enter__read`,
    `__event_exit__read`) are `sys_enter_read`/`sys_exit_read` when the native
    table has the syscall (nm: a `__x64_sys_read`-like symbol in sys_call_table,
    read here by read_syscalls, itself checked against objdump below)."""
    symbols = nm(image_path(label))
    names = {n for _, _, n in symbols}
    ftrace = {n.removeprefix("event_class_ftrace_") for n in names if n.startswith("event_class_ftrace_")}
    expected = {n.removeprefix("__event_") for _, t, n in symbols if n.startswith("__event_") and t in "dD"}
    per_syscall = {n for n in expected if n.startswith(("enter__", "exit__"))}
    native = {s.name for s in read_syscalls(opened(label)) if s.abi == "native"}
    expected = (expected - per_syscall - ftrace) | {
        f"sys_{n.replace('__', '_', 1)}" for n in per_syscall if n.split("__", 1)[1] in native
    }
    rows = traced(label)
    events = [t for t in rows if t.system is not None]
    assert {t.name for t in events} == expected
    plain = [t for t in events if t.syscall is None]
    assert all(t.event_class and t.struct and t.func and t.print_fmt for t in plain)
    syscall_events = [t for t in events if t.syscall is not None]
    assert syscall_events and all(
        t.system == "syscalls" and t.struct and t.fields and t.print_fmt is None for t in syscall_events
    )
    # Every raw tracepoint is a `struct tracepoint __tracepoint_<name>`.
    raw = {t.name for t in rows if t.raw_prototype}
    assert raw and raw <= {n.removeprefix("__tracepoint_") for n in names if n.startswith("__tracepoint_")}
    assert not any(t.raw_prototype for t in syscall_events)
    assert [t.name for t in rows] == sorted({t.name for t in rows})


@pytest.mark.real_kernel
def test_openat_events_on_6_1_amd64(traced):
    """include/linux/syscalls.h: SYSCALL_DEFINE4(openat, int, dfd, const char __user *, filename,
    int, flags, umode_t, mode); the metadata's types have __user expanded away."""
    events = {t.name: t for t in traced("amd64-6.1")}
    assert events["sys_enter_openat"].fields == (
        "int __syscall_nr; int dfd; const char * filename; int flags; umode_t mode"
    )
    assert (events["sys_exit_openat"].syscall, events["sys_exit_openat"].fields) == (
        "openat",
        "int __syscall_nr; long ret",
    )
    assert "sys_enter_chown16" not in events  # ia32-only: no native slot


#: label -> (table, number, name): well-known numbers (asm-generic 63 = read).
SYSCALL_FACTS = {
    "amd64-5.10": [
        ("sys_call_table", 0, "read"),
        ("ia32_sys_call_table", 3, "read"),
        ("x32_sys_call_table", 1, "write"),
    ],
    # 6.1.85+ and 6.9+: ia32/x32 from the dispatch switches (arch/x86/entry/syscalls/syscall_32.tbl:
    # 3 read, 11 execve, 295 openat; syscall_64.tbl: 512 x32 rt_sigaction).
    "amd64-6.1": [
        ("sys_call_table", 0, "read"),
        ("sys_call_table", 59, "execve"),
        ("ia32_sys_call", 3, "read"),
        ("ia32_sys_call", 11, "execve"),
        ("ia32_sys_call", 295, "openat"),
        ("x32_sys_call", 512, "rt_sigaction"),
    ],
    "amd64-6.12": [
        ("sys_call_table", 0, "read"),
        ("ia32_sys_call", 3, "read"),
        ("ia32_sys_call", 11, "execve"),
        ("x32_sys_call", 512, "rt_sigaction"),
    ],
    "amd64-7.2": [("sys_call_table", 0, "read")],
    "i386-6.1": [("sys_call_table", 3, "read"), ("sys_call_table", 11, "execve")],
    "arm64-6.12": [("sys_call_table", 63, "read"), ("compat_sys_call_table", 3, "read")],
    "armhf-6.12": [("sys_call_table", 3, "read"), ("sys_call_table", 4, "write")],
    "ppc64el-6.12": [("sys_call_table", 3, "read"), ("sys_call_table", 11, "execve")],
    "riscv64-6.12": [("sys_call_table", 63, "read"), ("sys_call_table", 221, "execve")],
    # The 31-bit table's read is s390's own compat wrapper: `__s390_compat_sys_s390_read`.
    "s390x-6.12": [
        ("sys_call_table", 3, "read"),
        ("sys_call_table_emu", 3, "s390_read"),
        ("sys_call_table_emu", 5, "open"),
    ],
}


@pytest.mark.real_kernel
@pytest.mark.parametrize("label", sorted(SYSCALL_FACTS))
def test_syscall_numbers(opened, label):
    rows = read_syscalls(opened(label))
    got = {(s.table, s.number): s.name for s in rows}
    for table, number, name in SYSCALL_FACTS[label]:
        assert got[(table, number)] == name
    assert not any("ni_syscall" in s.name or "ni_syscall" in s.symbol for s in rows)
    assert len({(s.table, s.number) for s in rows}) == len(rows)


def objdump_words(path: Path, address: int, size: int, width: int, order: str) -> list[int]:
    """The initialised words at [address, address+size), from objdump -s."""
    out = subprocess.run(
        ["objdump", "-s", f"--start-address={address:#x}", f"--stop-address={address + size:#x}", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = b"".join(
        bytes.fromhex("".join(m.group(2).split()))
        for m in re.finditer(r"^ ([0-9a-f]+) ((?:[0-9a-f]{2,8} ){1,4})", out, re.M)
    )
    return [int.from_bytes(data[i : i + width], order) for i in range(0, len(data), width)]


@pytest.mark.real_kernel
@pytest.mark.parametrize("label, width", [("amd64-6.1", 8), ("amd64-7.2", 8), ("i386-6.1", 4)])
def test_native_syscalls_match_objdump(opened, label, width):
    """Oracle: sys_call_table's words (objdump) whose target is not a
    `*sys_ni_syscall` address (nm); x86 vmlinux holds final addresses."""
    require("objdump")
    path = image_path(label)
    symbols = nm(path)
    ni = {a for a, _, n in symbols if n.endswith("sys_ni_syscall")}
    table = next(a for a, _, n in symbols if n == "sys_call_table")
    size = int(
        next(
            line.split()[2]
            for line in subprocess.run(
                ["readelf", "-sW", str(path)], check=True, capture_output=True, text=True
            ).stdout.splitlines()
            if line.endswith(" sys_call_table")
        )
    )
    words = objdump_words(path, table, size, width, "little")
    assert len(words) == size // width
    rows = [s for s in read_syscalls(opened(label)) if s.table == "sys_call_table"]
    assert [s.number for s in rows] == [i for i, w in enumerate(words) if w not in ni]


@pytest.mark.real_kernel
@pytest.mark.parametrize("label", ["amd64-6.1", "amd64-6.12", "amd64-7.2"])
def test_x64_switch_equals_sys_call_table(opened, label):
    """The switch reader checked where an oracle exists: x64_sys_call's cases
    are exactly sys_call_table's implemented slots (the image keeps both)."""
    from ingest.surfaces.x86_switch import switch_cases

    mem = opened(label)
    if mem.symbol("x64_sys_call") is None:
        pytest.skip("no dispatch switch in this image")
    cases = switch_cases(mem, mem.symbol("x64_sys_call"))
    slots = table_slots(mem, mem.symbol("sys_call_table"))
    ni = {s.address for s in mem.symbols if s.name.endswith("sys_ni_syscall")}
    assert {n: a for n, a in cases.items() if a not in ni} == {
        n: a for n, a in enumerate(slots) if a not in ni
    }
    ia32 = [s for s in read_syscalls(mem) if s.abi == "ia32"]
    assert len(ia32) > 400 and all(s.table == "ia32_sys_call" for s in ia32)
