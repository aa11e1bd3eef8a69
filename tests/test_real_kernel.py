"""Known facts of Debian's linux-image-6.1.0-56-amd64-dbg vmlinux (skips when not cached)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support import FIXTURES
from tests.support.tools import require

pytestmark = [pytest.mark.real_kernel, pytest.mark.slow]
#: A reference page of struct dma_buf_ops across kernel versions.
REFERENCE = FIXTURES / "reference" / "struct-dma_buf_ops.txt"


def q(db: Path, sql: str, *args):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_vmap(kernel_db):
    assert q(
        kernel_db, "SELECT collision, inline, suffixes, prototype FROM function_status WHERE name = 'vmap'"
    ) == [
        (
            "Unique Global",
            "No",
            None,
            "void *vmap(struct page **pages, unsigned int count, long unsigned int flags, pgprot_t prot);",
        )
    ]
    callers = set(
        q(kernel_db, "SELECT caller_cu, caller FROM caller_list WHERE callee = 'vmap' AND kind = 'direct'")
    )
    assert ("kernel/dma/remap.c", "dma_common_pages_remap") in callers
    assert q(kernel_db, "SELECT cu, decl_file FROM instance_list WHERE name = 'vmap'") == [
        ("mm/vmalloc.c", "mm/vmalloc.c")
    ]


def test_identity_read_from_the_image(kernel_db):
    row = q(kernel_db, "SELECT name, release, arch, flavor, dwarf_version, has_btf, compiler FROM builds")[0]
    assert row[:6] == ("6.1.0-56-amd64", "6.1.0-56-amd64", "amd64", "amd64", 5, 1)
    assert "12.2.0" in row[6]


def test_build_id_is_the_gnu_note(kernel_db, real_kernel):
    # The vmlinux also carries Xen notes of the same type number; only the GNU one is the build-id.
    notes = subprocess.run(
        ["readelf", "-n", str(real_kernel)], capture_output=True, text=True, check=True
    ).stdout
    expected = next(line.split(":", 1)[1].strip() for line in notes.splitlines() if "Build ID" in line)
    assert q(kernel_db, "SELECT build_id FROM builds") == [(expected,)]


def test_no_builder_directory_in_paths(kernel_db):
    assert (
        q(kernel_db, "SELECT path FROM paths WHERE path LIKE '%debian/build%' OR path LIKE '/build/%'") == []
    )


def test_dma_buf_ops_members_equal_the_reference_page(kernel_db):
    text = REFERENCE.read_text()
    block = text[text.index("6.8: ✅struct dma_buf_ops {") :]
    block = block[block.index("{") + 1 : block.index("};")]
    expected = [
        re.search(r"\(\*(\w+)\)|(\w+);$", line.strip()).group(1)
        or re.search(r"(\w+);$", line.strip()).group(1)
        for line in block.strip().splitlines()
    ]
    got = [
        name
        for (name,) in q(
            kernel_db, "SELECT field FROM struct_layouts WHERE name = 'dma_buf_ops' ORDER BY position"
        )
    ]
    assert got == expected


def test_symbols_equal_readelf(kernel_db, real_kernel):
    require("readelf")
    out = subprocess.run(
        ["readelf", "-sW", str(real_kernel)], capture_output=True, text=True, check=True
    ).stdout
    expected = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND" and not f[7].startswith("__pfx_"):
            expected.add((f[7], f[1].lstrip("0") or "0", int(f[2], 0)))
    got = set(q(kernel_db, "SELECT name, address, size FROM symbol_list"))
    assert got == expected


@pytest.mark.parametrize(
    "struct", ["task_struct", "file_operations", "sk_buff", "page", "dma_buf_ops", "inode"]
)
def test_struct_layout_equals_pahole(kernel_db, real_kernel, struct):
    require("pahole")
    out = subprocess.run(
        ["pahole", "-C", struct, "--suppress_aligned_attribute", str(real_kernel)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    size = int(re.search(r"/\* size: (\d+)", out).group(1))
    assert q(kernel_db, "SELECT DISTINCT size FROM struct_layouts WHERE name = ?", struct) == [(size,)]
    # Top-level members: "type name;  /* offset size */" at one tab of indent;
    # bitfields: "/* unit_offset: bit_in_unit size */".
    expected = []
    for line in out.splitlines():
        m = re.match(r"^\t(?!\t)(?!/\*).*?(\w+)(\[\d*\])*(:\d+)?;\s+/\*\s+(\d+)(?::\s*(\d+))?", line)
        if m:
            expected.append((m.group(1), int(m.group(4)) * 8 + int(m.group(5) or 0)))
    got = q(
        kernel_db,
        "SELECT field, bit_offset FROM struct_layouts WHERE name = ? AND parent IS NULL"
        " AND field IS NOT NULL ORDER BY position",
        struct,
    )
    assert [g for g in got if g[0] in {e[0] for e in expected}] == expected
