"""The corpus as a test: Debian bookworm's libbpf-tools 0.26.0+ds-1 (bcc's
tools, 52 binaries each embedding its compiled BPF object, a libbpf
skeleton) checked against the real Debian 6.1.0-56 build (and 6.12.113 when
cached). Every ✗ must be a real failure: EXPECTED_FAILS lists each with its
reason code and the evidence, checked by hand on the cached images
(readelf -sW, objdump -d, the kernel sources of that version). Any other ✗
fails the test. ⚠ and ? are counted per reason code; every ? must be one of
PLACEHOLDERS (names no build has) or a fact a build does not record.

The objects are extracted at test time from /usr/sbin (nothing is committed).
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from ingest import pipeline
from ingest.bpf import check
from tests.support.kernel import KERNEL_612

pytestmark = [pytest.mark.real_kernel, pytest.mark.slow]
VERSION = "0.26.0+ds-1"
B61, B612 = "6.1.0-56-amd64", "6.12.113+deb13-amd64"
EM_BPF = 247

INET_BITS = ("bind_address_no_port", "freebind", "transparent")
# (dependency, build) -> (reason, evidence). Verified by hand:
#   readelf -sW vmlinux | awk '$4=="FUNC"' | grep -w NAME   (symbols)
#   objdump -d --start-address=ADDR vmlinux                 (a traced function starts with call __fentry__)
EXPECTED_FAILS: dict[tuple[str, str], tuple[str, str]] = {
    ("fentry:blk_account_io_start", B61): (
        "inlined_full",
        "no FUNC symbol in 6.1.0-56, only inlined DWARF instances (block/blk-mq.c); "
        "the upstream bcc report: biostacks fails on 6.1",
    ),
    ("fentry:blk_account_io_start", B612): (
        "not_attachable",
        "6.12: LOCAL FUNC blk_account_io_start, an out-of-line copy of a static inline; the kernel's "
        "`inline` is notrace, and objdump shows no call __fentry__ at its entry (push %rbx; ...)",
    ),
    ("fentry:blk_account_io_done", B61): (
        "not_attachable",
        "LOCAL FUNC blk_account_io_done (static inline, so notrace): no call __fentry__ at ffffffff814e46a0",
    ),
    ("fentry:blk_account_io_done", B612): ("not_attachable", "likewise a LOCAL static-inline copy: notrace"),
    ("kprobe:blk_account_io_merge_bio", B612): (
        "transformed",
        "6.12 has only blk_account_io_merge_bio.part.0 (partial inlining); 6.1 has the plain symbol",
    ),
    ("fexit:__page_cache_alloc", B61): (
        "inlined_full",
        "no symbol in 6.1: a static inline in include/linux/pagemap.h, every call inlined",
    ),
    ("fexit:__page_cache_alloc", B612): (
        "absent",
        "vmlinux no longer uses it (filemap_alloc_folio_noprof is what is left); its CUs (mm/readahead.c, ...) "
        "are in vmlinux. (With the modules read it is inlined_full: libceph.ko's DWARF has the inline "
        "__page_cache_alloc of include/linux/pagemap.h:675 inside ceph_pagelist_append and ceph_alloc_page_vector.)",
    ),
    ("fentry:do_page_cache_ra", B61): ("inlined_full", "no symbol on amd64 6.1: inlined into its callers"),
    ("fentry:do_page_cache_ra", B612): ("inlined_full", "no symbol on amd64 6.12 either"),
    ("fexit:do_page_cache_ra", B61): ("inlined_full", "as fentry:do_page_cache_ra"),
    ("fexit:do_page_cache_ra", B612): ("inlined_full", "as fentry:do_page_cache_ra"),
    ("kprobe:kmem_cache_alloc", B612): (
        "absent",
        "renamed kmem_cache_alloc_noprof in 6.10 (memory allocation profiling); 6.12 has "
        "GLOBAL FUNC kmem_cache_alloc_noprof and mm/slub.c in vmlinux",
    ),
    ("fentry:migrate_misplaced_page", B612): (
        "absent",
        "replaced by migrate_misplaced_folio (6.8); mm/migrate.c is in vmlinux",
    ),
    ("fexit:migrate_misplaced_page", B612): ("absent", "as fentry:migrate_misplaced_page"),
    **{
        (f"field:inet_sock.{bit}", B612): (
            "field_missing",
            "6.6 moved the inet_sock bitfields (freebind, transparent, bind_address_no_port) into "
            "inet_flags bits (pahole inet_sock on 6.12: no such members); bindsnoop reads them unguarded",
        )
        for bit in INET_BITS
    },
}

#: What each ✗ suggests instead (ingest.bpf.suggest): targets that must be among a cell's
#: suggestions, each checked by hand on the images. An attachable fentry/kprobe target is a FUNC
#: symbol (readelf -sW) whose code starts with `call __fentry__` (objdump -d; after endbr64 on 6.12).
WAYS_OUT: dict[tuple[str, str], set[str]] = {
    # 6.1 block/blk-mq.c: blk_mq_bio_to_request (inlined into blk_mq_submit_bio), blk_insert_cloned_request,
    # blk_execute_rq and blk_execute_rq_nowait call blk_account_io_start; all four: GLOBAL FUNC + __fentry__
    ("fentry:blk_account_io_start", B61): {
        "fentry:blk_execute_rq",
        "fentry:blk_execute_rq_nowait",
        "fentry:blk_insert_cloned_request",
        "fentry:blk_mq_submit_bio",
    },
    # 6.5 added trace_block_io_start()/trace_block_io_done() to blk_account_io_start/_done themselves
    ("fentry:blk_account_io_start", B612): {"tracepoint:block/block_io_start", "fentry:blk_mq_submit_bio"},
    ("fentry:blk_account_io_done", B61): {
        "fentry:blk_mq_end_request_batch",
        "fentry:blk_insert_cloned_request",
    },
    ("fentry:blk_account_io_done", B612): {"tracepoint:block/block_io_done", "fentry:blk_mq_end_request"},
    # 6.12: LOCAL FUNC blk_account_io_merge_bio.part.0 at ffffffff81634020 starts with call __fentry__
    ("kprobe:blk_account_io_merge_bio", B612): {"kprobe:blk_account_io_merge_bio.part.0"},
    # mm/readahead.c: force_page_cache_ra, ondemand_readahead (6.1) / page_cache_sync_ra (6.12) and
    # page_cache_ra_order call do_page_cache_ra; FUNC symbols with __fentry__ on both builds
    **{
        (f"{a}:do_page_cache_ra", b): {f"{a}:force_page_cache_ra", f"{a}:page_cache_ra_order"}
        for a in ("fentry", "fexit")
        for b in (B61, B612)
    },
    ("fexit:__page_cache_alloc", B61): {"fexit:readahead_expand"},  # mm/readahead.c, GLOBAL FUNC + __fentry__
    # the successors (guesses): GLOBAL FUNC kmem_cache_alloc_noprof (6.10's allocation profiling rename),
    # migrate_misplaced_folio (6.8), both in the unit that defined the old name, with __fentry__
    ("kprobe:kmem_cache_alloc", B612): {"kprobe:kmem_cache_alloc_noprof"},
    ("fentry:migrate_misplaced_page", B612): {"fentry:migrate_misplaced_folio"},
    ("fexit:migrate_misplaced_page", B612): {"fexit:migrate_misplaced_folio"},
    # pahole -C inet_sock: 6.1 freebind:1 at 810:2, transparent:1 at 810:5, bind_address_no_port:1 at 811:0;
    # 6.12 `long unsigned int inet_flags` at 792 (added since 6.1: the bits live there since 6.6)
    **{(f"field:inet_sock.{bit}", B612): {"field:inet_sock.inet_flags"} for bit in INET_BITS},
}

#: ✗ cells with nothing to suggest, and why.
NO_WAY_OUT = {
    # its successor filemap_alloc_folio_noprof (mm/filemap.c) shares neither its unit's declaration
    # file with a similar name nor its parameter types: no guess is made
    ("fexit:__page_cache_alloc", B612),
}

#: Attach targets no build has: placeholders their loaders retarget
#: (bpf_program__set_attach_target), or a module's function.
PLACEHOLDERS = {
    # fsslower: dummy_file_* / dummy_getattr, retargeted to the file system's own functions
    *(
        f"{a}:dummy_{f}"
        for a in ("kprobe", "kretprobe", "fentry", "fexit")
        for f in ("file_open", "file_read", "file_sync", "file_write", "getattr")
    ),
    "kprobe:dummy_kprobe",  # funclatency / klockstat-style placeholders
    "kretprobe:dummy_kretprobe",
    "kprobe:foo",  # funclatency
    "kretprobe:foo",
    "kprobe:handle_entry",  # ksnoop, gethostlatency (attached as uprobes by the loader)
    "kretprobe:handle_return",
    "fentry:md_flush_request",  # mdflush: md-mod.ko, a module
    "fentry:account_page_dirtied",  # removed in 5.x; no build of this database has it
}
#: Reasons a ⚠ may have on the corpus.
WARN_REASONS = {"inlined_partly", "guarded", "changed", "prototype_changed", "ambiguous", "fallback", "weak"}


def _installed() -> str | None:
    if shutil.which("dpkg-query") is None:
        return None
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "libbpf-tools"], capture_output=True, text=True
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def extract_bpf_objects(binary: bytes) -> list[bytes]:
    """The EM_BPF ELF images embedded in an executable (libbpf skeletons keep
    the object as a byte array): each ELF header whose e_machine is EM_BPF,
    cut at the end of its section header table."""
    found = []
    start = 0
    while (i := binary.find(b"\x7fELF", start)) != -1:
        start = i + 4
        if i == 0 or len(binary) < i + 64 or binary[i + 4] != 2 or binary[i + 5] != 1:
            continue  # the executable itself; only 64-bit little-endian objects
        if struct.unpack_from("<H", binary, i + 18)[0] != EM_BPF:
            continue
        (shoff,) = struct.unpack_from("<Q", binary, i + 40)
        shentsize, shnum = struct.unpack_from("<HH", binary, i + 58)
        found.append(binary[i : i + shoff + shentsize * shnum])
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    version = _installed()
    if version != VERSION:
        pytest.skip(
            f"libbpf-tools {VERSION} is not installed (found {version}): apt-get install libbpf-tools"
        )
    files = subprocess.run(["dpkg", "-L", "libbpf-tools"], capture_output=True, text=True, check=True).stdout
    out = tmp_path_factory.mktemp("corpus")
    seen: set[str] = set()
    paths = []
    for line in sorted(files.splitlines()):
        path = Path(line)
        if not line.startswith("/usr/sbin/") or not path.is_file():
            continue
        for k, obj in enumerate(extract_bpf_objects(path.read_bytes())):
            digest = hashlib.sha256(obj).hexdigest()
            if digest in seen:
                continue  # tools sharing one object (links, aliases)
            seen.add(digest)
            dest = out / f"{path.name}{'' if k == 0 else f'.{k}'}.bpf.o"
            dest.write_bytes(obj)
            paths.append(dest)
    return paths


@pytest.fixture(scope="module")
def corpus_db(tmp_path_factory, kernel_db) -> Path:
    """The real 6.1.0-56 build, plus 6.12.113 when cached."""
    if not KERNEL_612.exists():
        return kernel_db
    path = tmp_path_factory.mktemp("corpus-db") / "two.db"
    path.write_bytes(kernel_db.read_bytes())
    config = KERNEL_612.parent / "config"
    pipeline.ingest(
        KERNEL_612, path, pipeline.Identity(distro="debian"), config=config if config.exists() else None
    )
    return path


def test_the_corpus_has_52_objects(corpus):
    assert len(corpus) == 52


#: CO-RE alternative groups of the corpus and their verdict on 6.1 and 6.12 (the same on both).
#: Evidence: the objects' .BTF.ext relocations (flavoured roots, probes) and the kernel facts.
EXPECTED_GROUPS: dict[str, tuple[str, str, str]] = {
    # runqslower, runqlat, cpudist, offcputime (core_fixes.bpf.h get_task_state):
    # field_exists(task_struct___x.__state), else task_struct___o.state; state became __state in 5.14.
    "alternatives:task_struct.__state|task_struct.state": ("ok", "ok", "via task_struct.__state"),
    # mdflush: field_exists(bio___x.bi_bdev), else bio___o.bi_disk; bi_disk went in 5.12.
    "alternatives:bio.bi_bdev|bio.bi_disk": ("ok", "ok", "via bio.bi_bdev"),
    # biolatency, biosnoop, biostacks, biotop, bitesize (get_disk): field_exists(request___x.rq_disk),
    # else request___x.q then request_queue___x.disk. rq_disk left struct request in 5.17, so on
    # 6.1 and 6.12 only the fallback resolves: ⚠, the program works.
    "alternatives:request.rq_disk|request.q&request_queue.disk": (
        "warn",
        "fallback",
        "only the fallback request.q & request_queue.disk resolves (no field rq_disk in request)",
    ),
    # biopattern: type_exists(trace_event_raw_block_rq_completion___x) and its sector, nr_sector, dev;
    # else trace_event_raw_block_rq_complete___x (the event class was renamed in 6.x: 6.1 already has
    # trace_event_raw_block_rq_completion, pahole shows dev, sector, nr_sector).
    "alternatives:"
    + "|".join(
        "&".join(f"trace_event_raw_block_rq_{c}.{f}" for f in ("sector", "nr_sector", "dev"))
        for c in ("completion", "complete")
    ): (
        "ok",
        "ok",
        "via "
        + " & ".join(f"trace_event_raw_block_rq_completion.{f}" for f in ("sector", "nr_sector", "dev")),
    ),
}


def test_co_re_alternatives_are_grouped(corpus, corpus_db):
    report = check.check_objects(corpus_db, corpus)
    got = {
        check.spec(d): {(c.level, c.reason, c.text) for c in row}
        for d, row in zip(report.dependencies, report.cells)
        if d.kind == "alternatives"
    }
    assert got == {name: {verdict} for name, verdict in EXPECTED_GROUPS.items()}
    names = {check.spec(d) for d in report.dependencies}
    # the members are no dependencies of their own any more
    assert not names & {
        "field:task_struct.state",
        "field:bio.bi_disk",
        "struct:trace_event_raw_block_rq_complete",
    }


def test_every_failure_on_the_corpus_is_real(corpus, corpus_db):
    report = check.check_objects(corpus_db, corpus)
    builds = [c.build for c in report.columns]
    fails: dict[tuple[str, str], str] = {}
    unknown: dict[str, set[str]] = {}
    warn: Counter[str] = Counter()
    for dep, row in zip(report.dependencies, report.cells):
        name = check.spec(dep)
        for build, cell in zip(builds, row):
            if cell.level == "fail":
                fails[(name, build)] = cell.reason
            elif cell.level == "warn":
                warn[cell.reason] += 1
            elif cell.level == "unknown":
                unknown.setdefault(cell.reason, set()).add(name)
    expected = {key: reason for key, (reason, _) in EXPECTED_FAILS.items() if key[1] in builds}
    print("unexpected ✗:", sorted((k, r) for k, r in fails.items() if expected.get(k) != r))
    print("expected, missing:", sorted(k for k in expected if k not in fails))
    # the figures of the note: objects affected per build, ⚠ and ? per reason code
    summary = report.summary()
    print("affected per build:", summary["affected"], "warn by reason:", dict(warn))
    print("unknown by reason:", {r: sorted(v) for r, v in unknown.items()})
    assert fails == expected
    assert set(warn) <= WARN_REASONS, warn
    assert unknown.get("absent_everywhere", set()) <= PLACEHOLDERS
    assert set(unknown) <= {"absent_everywhere", "not_recorded"}


def test_a_placeholder_retargeted_is_checked(corpus, corpus_db):
    # btrfsslower is fsslower's object: its loader aims kprobe/dummy_file_read at the file system's
    # read function (btrfs_file_read_iter is in btrfs.ko, not read: take vfs_read, in vmlinux).
    fsslower = next(p for p in corpus if p.name.startswith("btrfsslower"))
    before = check.check_objects(corpus_db, [fsslower])
    assert {c.reason for c in before.cells[0]} == {"absent_everywhere"}  # kprobe:dummy_file_read first
    report = check.check_objects(corpus_db, [fsslower], retargets=["file_read_entry=vfs_read"])
    got = {check.spec(d): [c.level for c in row] for d, row in zip(report.dependencies, report.cells)}
    assert got["kprobe:vfs_read"] == ["ok"] * len(report.columns)
    assert "kprobe:dummy_file_read" not in got and "kretprobe:dummy_file_read" in got


def test_every_failure_has_a_way_out(corpus, corpus_db):
    """Every ✗ of the corpus suggests something, including the targets checked by hand (WAYS_OUT)."""
    report = check.check_objects(corpus_db, corpus)
    builds = [c.build for c in report.columns]
    found: dict[tuple[str, str], set[str]] = {}
    for dep, row in zip(report.dependencies, report.cells):
        for build, cell in zip(builds, row):
            if cell.level == "fail":
                found[(check.spec(dep), build)] = {x.target for x in cell.suggestions}
            elif cell.level in ("ok", "unknown"):
                assert not cell.suggestions  # computed for ✗ and ⚠ cells only
    print({k: sorted(v) for k, v in found.items()})
    assert {k for k, v in found.items() if not v} == NO_WAY_OUT & set(found)
    for key, wanted in WAYS_OUT.items():
        if key[1] in builds:
            assert wanted <= found[key], (key, found[key])
