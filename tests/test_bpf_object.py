"""ingest.bpf.objects: what a compiled BPF object needs from the kernel.

The objects are built at test time from tests/fixtures/bpf/*.bpf.c with
`clang -target bpf -g -O2` and libbpf's headers; every expected dependency
below is written from the C source, not read back."""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from ingest.bpf.objects import BadBpfObject, BpfObject, Dependency, Program, parse_bpf_object, read_bpf_object
from tests.support import FIXTURES
from tests.support.programs import compile_bpf
from tests.support.tools import build

SOURCES = FIXTURES / "bpf"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """deps.o, ops.o, sections.o (clang -target bpf -g -O2), ops_nog.o (no -g),
    plain.o (gcc, the machine's architecture)."""
    out = tmp_path_factory.mktemp("bpf")
    for name in ("deps", "ops", "sections"):
        compile_bpf(SOURCES / f"{name}.bpf.c", out / f"{name}.o")
    compile_bpf(SOURCES / "ops.bpf.c", out / "ops_nog.o", debug=False)
    files = {name: out / f"{name}.o" for name in ("deps", "ops", "sections", "ops_nog")}
    if shutil.which("gcc") is not None:
        (out / "plain.c").write_text("int add_one(int x) { return x + 1; }\n")
        build(["gcc", "-c", out / "plain.c", "-o", out / "plain.o"])
        files["plain"] = out / "plain.o"
    return files


@pytest.fixture(scope="module")
def deps_eb(tmp_path_factory: pytest.TempPathFactory, built: dict[str, Path]) -> Path:
    """deps.bpf.c for big-endian BPF (clang -target bpfeb)."""
    out = tmp_path_factory.mktemp("bpfeb") / "deps_eb.o"
    return compile_bpf(SOURCES / "deps.bpf.c", out, target="bpfeb")


@pytest.fixture(scope="module")
def deps_obj(built: dict[str, Path]) -> BpfObject:
    return read_bpf_object(built["deps"])


@pytest.fixture(scope="module")
def ops_obj(built: dict[str, Path]) -> BpfObject:
    return read_bpf_object(built["ops"])


#: What deps.bpf.c's CO-RE field reads read (Dependency.local): every one an
#: integer (comm is read from comm[0], a char) except the pointer task_struct.mm.
LOCAL_KINDS = {"task_struct.mm": "ptr"}


def D(
    kind: str, name: str, attach: str | None, programs: tuple[str, ...], detail: str | None = None
) -> Dependency:
    local = None
    if kind == "field" and detail is not None and detail.startswith("field_"):
        local = LOCAL_KINDS.get(name, "int")
    return Dependency(kind=kind, name=name, attach=attach, programs=programs, detail=detail, local=local)


# ---------------------------------------------------------------------------
# Programs and sections
# ---------------------------------------------------------------------------


def test_programs_with_canonical_attach_and_kernel_target(deps_obj: BpfObject) -> None:
    assert deps_obj.programs == [
        Program(
            name="kprobe_open", section="kprobe/do_sys_openat2", attach="kprobe", target="do_sys_openat2"
        ),
        Program(
            name="kretprobe_open",
            section="kretprobe/do_filp_open.isra.0+16",
            attach="kretprobe",
            target="do_filp_open.isra.0",
        ),
        Program(name="fentry_read", section="fentry/vfs_read", attach="fentry", target="vfs_read"),
        Program(name="fexit_write", section="fexit/vfs_write", attach="fexit", target="vfs_write"),
        Program(
            name="tp_switch",
            section="tp/sched/sched_switch",
            attach="tracepoint",
            target="sched/sched_switch",
        ),
        Program(
            name="tp_openat",
            section="tracepoint/syscalls/sys_enter_openat",
            attach="tracepoint",
            target="syscalls/sys_enter_openat",
        ),
        Program(
            name="raw_exec",
            section="raw_tp/sched_process_exec",
            attach="raw_tracepoint",
            target="sched_process_exec",
        ),
        Program(name="btf_wakeup", section="tp_btf/sched_wakeup", attach="tp_btf", target="sched_wakeup"),
        Program(name="lsm_open", section="lsm/file_open", attach="lsm", target="file_open"),
        Program(
            name="lsm_bprm", section="lsm.s/bprm_check_security", attach="lsm.s", target="bprm_check_security"
        ),
        Program(name="sys_openat", section="ksyscall/openat", attach="ksyscall", target="openat"),
        Program(name="multi_tcp", section="kprobe.multi/tcp_*", attach="kprobe.multi", target="tcp_*"),
        Program(name="iter_task", section="iter/task", attach="iter", target="task"),
        Program(name="up_readline", section="uprobe//bin/bash:readline", attach="uprobe", target=None),
        Program(name="xdp_pass", section="xdp", attach="xdp", target=None),
        Program(name="mystery", section="mystery/thing", attach=None, target=None),
    ]


def test_unknown_section_prefix_is_reported_not_fatal(deps_obj: BpfObject) -> None:
    assert deps_obj.unknown_sections == ["mystery/thing"]


def test_subprograms_in_text_are_not_programs(deps_obj: BpfObject) -> None:
    names = {p.name for p in deps_obj.programs}
    assert not names & {"comm_first", "pid_of", "loop_cb"}


def test_every_libbpf_section_spelling(built: dict[str, Path]) -> None:
    obj = read_bpf_object(built["sections"])
    assert obj.programs == [
        Program(name="p_fentry_s", section="fentry.s/do_unlinkat", attach="fentry.s", target="do_unlinkat"),
        Program(name="p_fexit_s", section="fexit.s/do_rmdir", attach="fexit.s", target="do_rmdir"),
        Program(
            name="p_fmod_ret",
            section="fmod_ret/security_file_open",
            attach="fmod_ret",
            target="security_file_open",
        ),
        Program(
            name="p_fentry_module",
            section="fentry/bpf_testmod:bpf_testmod_test_read",
            attach="fentry",
            target="bpf_testmod:bpf_testmod_test_read",
        ),
        Program(
            name="p_freplace", section="freplace/handler", attach="freplace", target=None
        ),  # a BPF function
        Program(name="p_kprobe_bare", section="kprobe", attach="kprobe", target=None),  # attached by hand
        Program(
            name="p_kprobe_noauto", section="?kprobe/tcp_v4_connect", attach="kprobe", target="tcp_v4_connect"
        ),
        Program(
            name="p_kprobe_offset", section="kprobe/tcp_sendmsg+0x1c", attach="kprobe", target="tcp_sendmsg"
        ),
        Program(
            name="p_kretprobe_multi",
            section="kretprobe.multi/vfs_*",
            attach="kretprobe.multi",
            target="vfs_*",
        ),
        Program(name="p_kretsyscall", section="kretsyscall/execve", attach="kretsyscall", target="execve"),
        Program(
            name="p_raw_tracepoint",
            section="raw_tracepoint/sys_enter",
            attach="raw_tracepoint",
            target="sys_enter",
        ),
        Program(
            name="p_raw_tp_w",
            section="raw_tp.w/bpf_testmod_test_writable_bare",
            attach="raw_tracepoint.w",
            target="bpf_testmod_test_writable_bare",
        ),
        Program(
            name="p_lsm_cgroup", section="lsm_cgroup/socket_bind", attach="lsm_cgroup", target="socket_bind"
        ),
        Program(name="p_iter_s", section="iter.s/task_file", attach="iter.s", target="task_file"),
        Program(
            name="p_uretprobe_s",
            section="uretprobe.s//usr/lib/libc.so.6:malloc",
            attach="uretprobe.s",
            target=None,
        ),
        Program(name="p_usdt", section="usdt/libc.so.6:libc:setjmp", attach="usdt", target=None),
        Program(name="p_tc", section="tc", attach="tc", target=None),
        Program(name="p_tcx", section="tcx/ingress", attach="tcx/ingress", target=None),
        Program(name="p_connect4", section="cgroup/connect4", attach="cgroup/connect4", target=None),
        Program(name="p_cgroup_skb", section="cgroup_skb/egress", attach="cgroup_skb/egress", target=None),
        Program(name="p_sk_msg", section="sk_msg", attach="sk_msg", target=None),
        Program(name="p_perf_event", section="perf_event", attach="perf_event", target=None),
        Program(name="p_syscall", section="syscall", attach="syscall", target=None),
        Program(name="p_socket", section="socket", attach="socket", target=None),
        Program(name="p_xdp_devmap", section="xdp/devmap", attach="xdp/devmap", target=None),
        Program(name="p_xdp_legacy", section="xdp_legacy", attach=None, target=None),  # libbpf < 1.0 spelling
    ]
    assert obj.unknown_sections == ["xdp_legacy"]
    assert obj.dependencies == [
        D("function", "bpf_testmod_test_read", "fentry", ("p_fentry_module",), "module:bpf_testmod"),
        D("function", "do_rmdir", "fexit", ("p_fexit_s",), "sleepable"),
        D("function", "do_unlinkat", "fentry", ("p_fentry_s",), "sleepable"),
        D("function", "security_file_open", "fmod_ret", ("p_fmod_ret",)),
        D("function", "tcp_sendmsg", "kprobe", ("p_kprobe_offset",)),
        D("function", "tcp_v4_connect", "kprobe", ("p_kprobe_noauto",)),
        D("function", "vfs_*", "kretprobe.multi", ("p_kretprobe_multi",), "glob"),
        D("iter", "task_file", "iter", ("p_iter_s",), "sleepable"),
        D("lsm_hook", "socket_bind", "lsm_cgroup", ("p_lsm_cgroup",)),
        D("raw_tracepoint", "bpf_testmod_test_writable_bare", "raw_tracepoint", ("p_raw_tp_w",), "writable"),
        D("raw_tracepoint", "sys_enter", "raw_tracepoint", ("p_raw_tracepoint",)),
        D("syscall", "execve", "kretsyscall", ("p_kretsyscall",)),
    ]


# ---------------------------------------------------------------------------
# Dependencies: the whole list, written from deps.bpf.c
# ---------------------------------------------------------------------------

DEPS_EXPECTED = [
    # enum value relocations: the enum is needed (None) or only probed
    D("enum", "bpf_func_id", None, ("tp_switch",), "enumval_exists"),
    D("enum", "pid_type", None, ("tp_switch",)),
    D("enum_value", "bpf_func_id::BPF_FUNC_loop", None, ("tp_switch",), "enumval_exists"),
    D("enum_value", "pid_type::PIDTYPE_TGID", None, ("tp_switch",), "enumval_value"),
    # loop_cb is a bpf_loop callback of raw_exec; kprobe_open reads t->mm->total_vm
    D("field", "mm_struct.total_vm", None, ("kprobe_open", "raw_exec"), "field_byte_offset"),
    # len sits in an anonymous struct in an anonymous union
    D("field", "sk_buff.len", None, ("sys_openat",), "field_byte_offset"),
    # comm[0] (in an anonymous struct) is read by the static subprogram comm_first
    D("field", "task_struct.comm", None, ("kprobe_open", "tp_openat"), "field_byte_offset"),
    # BPF_CORE_READ_BITFIELD_PROBED: five relocations on one bitfield
    D("field", "task_struct.in_execve", None, ("fexit_write",), "field_byte_offset"),
    D("field", "task_struct.in_execve", None, ("fexit_write",), "field_byte_size"),
    D("field", "task_struct.in_execve", None, ("fexit_write",), "field_lshift_u64"),
    D("field", "task_struct.in_execve", None, ("fexit_write",), "field_rshift_u64"),
    D("field", "task_struct.in_execve", None, ("fexit_write",), "field_signed"),
    D("field", "task_struct.mm", None, ("kprobe_open", "raw_exec"), "field_byte_offset"),
    # pid_of is a global subprogram called by iter_task
    D("field", "task_struct.pid", None, ("btf_wakeup", "iter_task"), "field_byte_offset"),
    # task_struct___old: the flavor is stripped
    D("field", "task_struct.state", None, ("fentry_read",), "field_byte_offset"),
    D("field", "task_struct.state", None, ("fentry_read",), "field_exists"),
    D("field", "task_struct.tgid", None, ("kretprobe_open",), "field_byte_offset"),
    D("field", "task_struct.tgid", None, ("kretprobe_open",), "field_exists"),
    D("field", "task_struct.thread.sp", None, ("kretprobe_open",), "field_byte_offset"),
    D("function", "do_filp_open.isra.0", "kretprobe", ("kretprobe_open",)),
    D("function", "do_sys_openat2", "kprobe", ("kprobe_open",)),
    D("function", "tcp_*", "kprobe.multi", ("multi_tcp",), "glob"),
    D("function", "vfs_read", "fentry", ("fentry_read",)),
    D("function", "vfs_write", "fexit", ("fexit_write",)),
    # helper calls (BPF_CORE_READ reads with bpf_probe_read_kernel; t->pid in
    # a tp_btf program is a direct load)
    D(
        "helper",
        "bpf_get_current_task",
        None,
        (
            "btf_wakeup",
            "fentry_read",
            "fexit_write",
            "iter_task",
            "kprobe_open",
            "kretprobe_open",
            "raw_exec",
            "tp_openat",
        ),
        "BPF_FUNC_get_current_task",
    ),
    D("helper", "bpf_loop", None, ("raw_exec",), "BPF_FUNC_loop"),
    D("helper", "bpf_map_lookup_elem", None, ("lsm_open",), "BPF_FUNC_map_lookup_elem"),
    D(
        "helper",
        "bpf_probe_read_kernel",
        None,
        (
            "fentry_read",
            "fexit_write",
            "iter_task",
            "kprobe_open",
            "kretprobe_open",
            "raw_exec",
            "sys_openat",
            "tp_openat",
        ),
        "BPF_FUNC_probe_read_kernel",
    ),
    D("helper", "bpf_ringbuf_output", None, ("sys_openat",), "BPF_FUNC_ringbuf_output"),
    D("iter", "task", "iter", ("iter_task",)),
    # LINUX_KERNEL_VERSION is libbpf's, not the kernel config's
    D("kconfig", "CONFIG_HZ", None, ("lsm_open",)),
    D("kfunc", "bpf_rcu_read_lock", None, ("lsm_open",), "weak"),
    D("kfunc", "bpf_task_acquire", None, ("btf_wakeup",)),
    D("kfunc", "bpf_task_release", None, ("btf_wakeup",)),
    D("ksym", "init_task", None, ("lsm_open",)),
    D("lsm_hook", "bprm_check_security", "lsm", ("lsm_bprm",), "sleepable"),
    D("lsm_hook", "file_open", "lsm", ("lsm_open",)),
    # the maps "counts" (lsm_open) and "events" (sys_openat)
    D("map_type", "BPF_MAP_TYPE_HASH", None, ("lsm_open",)),
    D("map_type", "BPF_MAP_TYPE_RINGBUF", None, ("sys_openat",)),
    D("raw_tracepoint", "sched_process_exec", "raw_tracepoint", ("raw_exec",)),
    D("raw_tracepoint", "sched_wakeup", "tp_btf", ("btf_wakeup",)),
    D("struct", "bpf_attr", None, ("fexit_write",), "type_exists"),  # a union
    D("struct", "mm_struct", None, ("kprobe_open", "raw_exec")),
    D("struct", "mm_struct", None, ("fexit_write",), "type_id_target"),
    D("struct", "sk_buff", None, ("sys_openat",)),
    D(
        "struct",
        "task_struct",
        None,
        (
            "btf_wakeup",
            "fentry_read",
            "fexit_write",
            "iter_task",
            "kprobe_open",
            "kretprobe_open",
            "raw_exec",
            "tp_openat",
        ),
    ),
    D("struct", "task_struct", None, ("fentry_read", "kretprobe_open"), "field_exists"),
    D("syscall", "openat", "ksyscall", ("sys_openat",)),
    D("tracepoint", "sched_switch", "tracepoint", ("tp_switch",), "sched"),
    D("tracepoint", "sys_enter_openat", "tracepoint", ("tp_openat",), "syscalls"),
    D("type", "kernel_cap_t", None, ("fexit_write",), "type_size"),
]


def test_every_dependency_of_the_fixture(deps_obj: BpfObject) -> None:
    assert deps_obj.dependencies == DEPS_EXPECTED


def test_big_endian_object_reads_the_same(deps_obj: BpfObject, deps_eb: Path) -> None:
    eb = read_bpf_object(deps_eb)
    assert (eb.programs, eb.dependencies, eb.unknown_sections) == (
        deps_obj.programs,
        deps_obj.dependencies,
        deps_obj.unknown_sections,
    )


def test_dependencies_sorted_and_unique(deps_obj: BpfObject) -> None:
    keys = [(d.kind, d.name, d.attach or "", d.detail or "") for d in deps_obj.dependencies]
    assert keys == sorted(set(keys))


def test_programs_without_kernel_target_need_nothing(deps_obj: BpfObject) -> None:
    needing = {p for d in deps_obj.dependencies for p in d.programs}
    assert not needing & {"up_readline", "xdp_pass", "mystery"}
    assert "lsm_bprm" in needing  # only its section target


def test_struct_ops_map_needs_its_struct_and_members(ops_obj: BpfObject) -> None:
    progs = ("toy_cong_avoid", "toy_ssthresh", "toy_undo_cwnd")
    assert ops_obj.programs == [
        Program(
            name="toy_ssthresh",
            section="struct_ops/toy_ssthresh",
            attach="struct_ops",
            target="tcp_congestion_ops.ssthresh",
        ),
        Program(
            name="toy_cong_avoid",
            section="struct_ops/toy_cong_avoid",
            attach="struct_ops",
            target="tcp_congestion_ops.cong_avoid",
        ),
        Program(
            name="toy_undo_cwnd",
            section="struct_ops/toy_undo_cwnd",
            attach="struct_ops",
            target="tcp_congestion_ops.undo_cwnd",
        ),
        Program(
            name="dummy_sleepable",
            section="struct_ops.s/dummy_sleepable",
            attach="struct_ops.s",
            target="bpf_dummy_ops.test_sleepable",
        ),
    ]
    assert ops_obj.dependencies == [
        D("field", "bpf_dummy_ops.test_sleepable", None, ("dummy_sleepable",), "struct_ops"),
        D("field", "tcp_congestion_ops.cong_avoid", None, ("toy_cong_avoid",), "struct_ops"),
        D("field", "tcp_congestion_ops.name", None, progs, "struct_ops"),  # set to "bpf_toy"
        D("field", "tcp_congestion_ops.ssthresh", None, ("toy_ssthresh",), "struct_ops"),
        D("field", "tcp_congestion_ops.undo_cwnd", None, ("toy_undo_cwnd",), "struct_ops"),
        D("struct_ops", "bpf_dummy_ops", "struct_ops", ("dummy_sleepable",)),
        D("struct_ops", "tcp_congestion_ops", "struct_ops", progs),
    ]
    assert ops_obj.unknown_sections == []


def _patch_relo_kind(path: Path, old: int, new: int) -> bytes:
    """The object with every CO-RE relocation of kind `old` turned into `new`
    (little-endian objects: struct btf_ext_header, then core_relo records)."""
    data = bytearray(path.read_bytes())
    with open(path, "rb") as f:
        base = ELFFile(f).get_section_by_name(".BTF.ext")["sh_offset"]
    (hdr_len,) = struct.unpack_from("<I", data, base + 4)
    core_off, core_len = struct.unpack_from("<II", data, base + 24)
    pos = base + hdr_len + core_off
    end = pos + core_len
    (rec_size,) = struct.unpack_from("<I", data, pos)
    pos += 4
    patched = 0
    while pos < end:
        _sec, num = struct.unpack_from("<II", data, pos)
        pos += 8
        for i in range(num):
            at = pos + i * rec_size + 12
            if struct.unpack_from("<I", data, at)[0] == old:
                struct.pack_into("<I", data, at, new)
                patched += 1
        pos += num * rec_size
    assert patched
    return bytes(data)


def test_type_matches_relocation(built: dict[str, Path]) -> None:
    """clang 14 cannot emit bpf_core_type_matches(): turn type_exists into it."""
    obj = parse_bpf_object(_patch_relo_kind(built["deps"], 8, 12), "matches.o")
    found = [
        d for d in obj.dependencies if (d.kind, d.name, d.detail) == ("struct", "bpf_attr", "type_matches")
    ]
    assert [d.programs for d in found] == [("fexit_write",)]
    # the program's type, for libbpf's match rules (ingest.bpf.matches)
    assert json.loads(found[0].local or "")["kind"] == "union"
    assert not [d for d in obj.dependencies if d.detail == "type_exists"]


def test_type_id_local_relocation_needs_nothing(built: dict[str, Path]) -> None:
    obj = parse_bpf_object(_patch_relo_kind(built["deps"], 7, 6), "local.o")
    assert D("struct", "mm_struct", None, ("fexit_write",), "type_id_target") not in obj.dependencies
    assert not [d for d in obj.dependencies if d.detail in ("type_id_local", "type_id_target")]


def test_relocation_kind_from_a_newer_compiler(built: dict[str, Path]) -> None:
    with pytest.raises(BadBpfObject, match="unknown CO-RE relocation kind 13"):
        parse_bpf_object(_patch_relo_kind(built["deps"], 9, 13), "future.o")


# ---------------------------------------------------------------------------
# Cross-checks against independent tools (test oracles only)
# ---------------------------------------------------------------------------


def test_programs_match_llvm_readelf_symbols(built: dict[str, Path], deps_obj: BpfObject) -> None:
    tool = shutil.which("llvm-readelf")
    if tool is None:
        pytest.skip("llvm-readelf is not installed")
    out = subprocess.run(
        [tool, "-s", "-S", "-W", str(built["deps"])], capture_output=True, text=True, check=True
    ).stdout
    sections = dict(re.findall(r"^\s*\[\s*(\d+)\]\s+(\S+)\s+PROGBITS\s", out, re.M))
    funcs = {
        (sections.get(ndx), name)
        for ndx, name in re.findall(r"^\s*\d+: \S+\s+\d+ FUNC\s+\S+\s+\S+\s+(\d+) (\S+)$", out, re.M)
    }
    assert {(p.section, p.name) for p in deps_obj.programs} == {f for f in funcs if f[0] != ".text"}


def test_kfuncs_and_ksyms_match_bpftool(built: dict[str, Path], deps_obj: BpfObject) -> None:
    tool = shutil.which("bpftool")
    if tool is None:
        pytest.skip("bpftool is not installed")
    out = subprocess.run([tool, "btf", "dump", "file", str(built["deps"])], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"bpftool cannot dump the object: {out.stderr.strip()[:100]}")
    externs = set(
        re.findall(r"^\[\d+\] (?:FUNC|VAR) '(\w+)' type_id=\d+,? linkage=extern$", out.stdout, re.M)
    )
    ours = {d.name for d in deps_obj.dependencies if d.kind in ("kfunc", "ksym", "kconfig")}
    assert ours == externs - {"LINUX_KERNEL_VERSION"}


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_x86_object_is_not_a_bpf_object(built: dict[str, Path]) -> None:
    if "plain" not in built:
        pytest.skip("gcc is not installed")
    with pytest.raises(
        BadBpfObject, match=r"not a BPF object \(e_machine EM_X86_64\); compile with clang -target bpf"
    ):
        read_bpf_object(built["plain"])


def test_object_without_btf_says_compile_with_g(built: dict[str, Path]) -> None:
    with pytest.raises(BadBpfObject, match=r"no BTF .*compile with -g"):
        read_bpf_object(built["ops_nog"])


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.o"
    empty.write_bytes(b"")
    with pytest.raises(BadBpfObject, match="is empty"):
        read_bpf_object(empty)


def test_not_an_elf(tmp_path: Path) -> None:
    with pytest.raises(BadBpfObject, match="not an ELF file"):
        parse_bpf_object(b"#!/bin/sh\necho hello\n", "script")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadBpfObject, match="cannot read"):
        read_bpf_object(tmp_path / "nope.o")


def test_truncated_object(built: dict[str, Path]) -> None:
    data = built["deps"].read_bytes()
    with pytest.raises(BadBpfObject, match="truncated or corrupt|is truncated"):
        parse_bpf_object(data[: len(data) // 2], "half.o")


def test_every_truncation_is_a_one_line_bad_object(built: dict[str, Path]) -> None:
    data = built["deps"].read_bytes()
    for cut in range(0, len(data), 211):
        with pytest.raises(BadBpfObject) as err:
            parse_bpf_object(data[:cut], "cut.o")
        assert "\n" not in str(err.value)


def test_damaged_bytes_never_escape_as_other_errors(built: dict[str, Path]) -> None:
    """Flipped bytes anywhere: either a result or BadBpfObject, nothing else."""
    data = built["deps"].read_bytes()
    rng = random.Random(20261122)
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            parse_bpf_object(bytes(damaged), "damaged.o")
        except BadBpfObject as e:
            assert "\n" not in str(e)


def test_one_section_table_for_objects_and_text_forms() -> None:
    from ingest.bpf import sections

    assert list(sections.ATTACH_KINDS)[:5] == ["kprobe", "kretprobe", "fentry", "fexit", "fmod_ret"]
    assert sections.ATTACH_KINDS["tp_btf"] == "raw_tracepoint" and "fentry.s" not in sections.ATTACH_KINDS
    assert sections.ALIASES == {"tp": "tracepoint", "raw_tp": "raw_tracepoint"}
    assert sections.classify("tp/sched/sched_switch") == ("tracepoint", "tracepoint", "sched/sched_switch")
    assert sections.classify("xdp") == ("xdp", None, None)
    assert sections.classify("nonsense/x") == (None, None, None)


def test_btf_ext_core_relocations(built: dict[str, Path]) -> None:
    from ingest.errors import BadBtf
    from ingest.readers import btf_ext
    from ingest.readers import btf_format as F
    from ingest.readers.btf import read_btf, string_section

    elf = ELFFile(built["deps"].open("rb"))
    raw, ext = (elf.get_section_by_name(n).data() for n in (".BTF", ".BTF.ext"))
    relos = list(btf_ext.core_relos(ext, string_section(raw), read_btf(raw).byte_order))
    assert relos and all(r.section and r.section in {s.name for s in elf.iter_sections()} for r in relos)
    assert {F.CORE_RELO_KINDS[r.kind] for r in relos} >= {"field_byte_offset", "field_exists"}
    with pytest.raises(BadBtf, match=r"\.BTF\.ext is truncated"):
        list(btf_ext.core_relos(ext[:4], string_section(raw), "little"))
