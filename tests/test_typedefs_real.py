"""Typedefs and every CO-RE type relocation against the real Debian 6.1.0-56
amd64 kernel: tests/fixtures/check/typedefs.bpf.c, compiled at test time with
clang >= 15 (bpf_core_type_matches and BTF ENUM64 need it), checked with
`kernsurf check`. Each verdict carries its evidence: the kernel's
`bpftool btf dump file vmlinux` lines (type ids of 6.1.0-56) and the
program's own BTF (`bpftool btf dump file typedefs.o`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.cli import cli

pytestmark = [pytest.mark.real_kernel, pytest.mark.slow]
SOURCE = Path(__file__).parent / "fixtures" / "check" / "typedefs.bpf.c"

# spec -> (level, text) on 6.1.0-56-amd64
EXPECTED = {
    "kprobe:vfs_read": ("ok", "ok"),
    # [210] TYPEDEF 'atomic_long_t' type_id=96; [96] TYPEDEF 'atomic64_t' type_id=95;
    # [95] STRUCT '(anon)' size=8 vlen=1 'counter' type_id=45: the access sk_prot->memory_allocated->counter
    # is rooted at the typedef, which libbpf follows to the anonymous struct (was a false ✗ before).
    "field:atomic_long_t.counter": ("ok", "ok"),
    "type:atomic_long_t": ("ok", "typedef atomic64_t"),
    # [2912] STRUCT 'proto' size=464 vlen=58 ... 'memory_allocated' (a pointer to atomic_long_t)
    "field:proto.memory_allocated": ("ok", "ok"),
    "struct:proto": ("ok", "ok"),
    # [9384] UNION 'bpf_attr' size=144 vlen=19, its first member an anonymous struct holding map_type
    "field:bpf_attr.map_type": ("ok", "ok"),
    "struct:bpf_attr": ("ok", "ok"),  # type_exists(union bpf_attr) merged with the field's holder
    # [74] TYPEDEF 'pid_t' type_id=53; [53] TYPEDEF '__kernel_pid_t' type_id=28; [28] INT 'int'
    "type?:pid_t": ("ok", "typedef __kernel_pid_t"),
    # [46] TYPEDEF 'u64' type_id=33; [33] TYPEDEF '__u64' type_id=34; [34] INT 'long long unsigned int' size=8
    "type:u64": ("ok", "typedef __u64, 8 bytes"),
    # no TYPEDEF/STRUCT/UNION/ENUM 'nosuch_t' or 'nosuch_struct' in the dump; probed: ⚠
    "type?:nosuch_t": ("warn", "no typedef, struct, union or enum nosuch_t (the program checks for it)"),
    "struct?:nosuch_struct": ("warn", "absent (the program checks for it)"),
    # the program's `struct sock;` is a FWD (kflag 0: struct); the kernel has STRUCT 'sock'
    "struct?:sock": ("ok", "ok"),
    # TYPE_MATCHES, libbpf's __bpf_core_types_match:
    # [94] TYPEDEF 'atomic_t' -> [93] STRUCT '(anon)' vlen=1 'counter' type_id=28 (INT 'int' SIGNED):
    # the program's anonymous struct { int counter; } matches (same names, int size and sign)
    "type?:atomic_t": ("ok", "matches typedef atomic_t"),
    # the program's atomic64_t counter is `s64`, which clang names INT 'long long' (bpftool on the
    # object: [8] INT 'long long' size=8 SIGNED); the kernel's [45] TYPEDEF 's64' -> [31] '__s64' ->
    # INT 'long long int' (GCC's name): libbpf checks names first (bpf_core_names_match), so no match
    "type?:atomic64_t": (
        "warn",
        "does not match: typedef atomic64_t: member counter: long long int, the program's long long"
        " (the program checks for it)",
    ),
    # [97] STRUCT 'list_head' size=16 vlen=2 'next','prev' both [98] PTR -> 97: the same as the program's
    "struct?:list_head": ("ok", "matches struct list_head"),
    # [104] STRUCT 'callback_head' 'next' type_id=105 ([105] PTR -> 104); the program's next is an int
    "struct?:callback_head": (
        "warn",
        "does not match: struct callback_head: member next: struct callback_head *, the program's int"
        " (the program checks for it)",
    ),
    # [38799] ENUM 'tcp_ca_state' size=4 vlen=5 TCP_CA_Open..TCP_CA_Loss: the program's two are among them
    "enum?:tcp_ca_state": ("ok", "matches enum tcp_ca_state"),
    # [549] ENUM 'pid_type' size=4: 'PIDTYPE_PID' val=0, 'PIDTYPE_TGID' val=1
    "enum:pid_type": ("ok", "ok"),
    "enum_value:pid_type::PIDTYPE_PID": ("ok", "= 0"),
    "enum_value?:pid_type::PIDTYPE_TGID": ("ok", "= 1"),
    # [10126] ENUM64 'perf_callchain_context' encoding=UNSIGNED size=8: 'PERF_CONTEXT_HV'
    # val=18446744073709551584ULL, 'PERF_CONTEXT_KERNEL' val=18446744073709551488ULL; the program's is an
    # ENUM64 too. kernsurf stores enumerators as signed 64-bit: -32 and -128 are those bits.
    "enum:perf_callchain_context": ("ok", "ok"),
    "enum_value?:perf_callchain_context::PERF_CONTEXT_HV": ("ok", "= -32"),
    "enum_value:perf_callchain_context::PERF_CONTEXT_KERNEL": ("ok", "= -128"),
    "helper:bpf_probe_read_kernel": ("ok", "ok"),
}


def _clang_15() -> str | None:
    """A clang that knows bpf_core_type_matches and emits ENUM64 (15 or later)."""
    for name in ("clang", *(f"clang-{n}" for n in range(21, 14, -1))):
        path = shutil.which(name)
        if path is None:
            continue
        out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        found = re.search(r"clang version (\d+)", out)
        if found and int(found.group(1)) >= 15:
            return path
    return None


@pytest.fixture(scope="module")
def typedefs_obj(tmp_path_factory) -> Path:
    clang = _clang_15()
    if clang is None:
        pytest.skip("no clang >= 15 (apt-get install clang-16): bpf_core_type_matches and ENUM64 need it")
    out = tmp_path_factory.mktemp("bpf") / "typedefs.o"
    subprocess.run(
        [clang, "-target", "bpf", "-g", "-O2", "-DENUM64", "-c", str(SOURCE), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return out


def test_every_type_relocation_on_debian_6_1(typedefs_obj, kernel_db):
    result = CliRunner().invoke(cli, ["check", str(typedefs_obj), "--db", str(kernel_db), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    got = {
        d["spec"]: next((r["level"], r["text"]) for r in d["results"].values()) for d in data["dependencies"]
    }
    assert got == EXPECTED


def test_typedef_rows_of_debian_6_1(kernel_db):
    """What the typedefs table holds (bpftool btf dump of the vmlinux, ids above)."""
    import sqlite3

    conn = sqlite3.connect(kernel_db)
    rows = dict(
        (name, (target, canon, kind, size))
        for name, target, canon, kind, size in conn.execute(
            "SELECT n.name, t.text, c.text, d.kind, d.size FROM typedefs d JOIN names n ON n.id = d.name_id"
            " JOIN type_texts t ON t.id = d.target_id JOIN type_texts c ON c.id = d.resolved_id"
            " WHERE n.name IN ('atomic_long_t', 'pid_t', 'u64', 'possible_net_t')"
        )
    )
    assert rows == {
        "atomic_long_t": ("atomic64_t", "struct {...}", "struct", 8),
        "pid_t": ("__kernel_pid_t", "int", "int", 4),
        "u64": ("__u64", "long long unsigned int", "int", 8),
        "possible_net_t": ("struct {...}", "struct {...}", "struct", 8),
    }
