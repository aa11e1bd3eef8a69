"""A build from a poorer source upgraded in place by the debug image with the
same ELF build-id (docs/concepts.md#fact-sources), and never downgraded.

The poorer source is the running system of a fixture /sys + /proc tree whose
BTF pahole makes from the compiled fixture program, and whose
/sys/kernel/notes carries that program's build-id (readelf -n says it)."""

from __future__ import annotations

import gzip
import re
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile

from ingest.cli import cli
from tests.support.tools import build, require


def _note(name: bytes, kind: int, desc: bytes) -> bytes:
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name) + 1, len(desc), kind) + pad(name + b"\0") + pad(desc)


@pytest.fixture
def poor_and_rich(tmp_path, program) -> tuple[Path, Path]:
    """(a running-system root of the program, a copy of the program with DWARF)."""
    require("pahole", "nm", "readelf")
    rich = tmp_path / "vmlinux"
    shutil.copy(program, rich)
    notes = subprocess.run(["readelf", "-n", str(rich)], capture_output=True, text=True, check=True).stdout
    build_id = re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)
    with_btf = tmp_path / "with_btf"
    shutil.copy(program, with_btf)
    build(["pahole", "-J", with_btf])
    with open(with_btf, "rb") as f:
        btf = ELFFile(f).get_section_by_name(".BTF").data()
    root = tmp_path / "root"
    (root / "sys/kernel/btf").mkdir(parents=True)
    (root / "sys/kernel/btf/vmlinux").write_bytes(btf)
    (root / "sys/kernel/notes").write_bytes(_note(b"GNU", 3, bytes.fromhex(build_id)))
    (root / "proc").mkdir()
    (root / "proc/version").write_text(
        "Linux version 6.9.0-fixture (b@h) (gcc (GCC) 12.2.0, GNU ld 2.40) #1 SMP\n"
    )
    nm = build(["nm", program])
    (root / "proc/kallsyms").write_text("\n".join(line for line in nm.splitlines() if len(line.split()) == 3))
    (root / "proc/config.gz").write_bytes(
        gzip.compress(b"CONFIG_BPF_SYSCALL=y\n# CONFIG_KPROBES is not set\n")
    )
    return root, rich


def _build(db: Path) -> tuple:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT id, name, has_dwarf, n_instances, n_config, distro FROM builds"
        ).fetchall()
    finally:
        conn.close()


def test_a_debug_image_upgrades_the_running_build_in_place(tmp_path, poor_and_rich):
    root, rich = poor_and_rich
    db = tmp_path / "k.db"
    run = CliRunner().invoke
    assert (
        run(
            cli, ["ingest", "--running", "--root", str(root), "--db", str(db), "--distro", "fixture"]
        ).exit_code
        == 0
    )
    [(pk, name, has_dwarf, instances, n_config, distro)] = _build(db)[:1]
    assert (name, has_dwarf, instances, n_config, distro) == ("6.9.0-fixture", 0, 0, 2, "fixture")
    other = root.parent / "other.btf"  # a second build to diff with: the same BTF, another key
    other.write_bytes((root / "sys/kernel/btf/vmlinux").read_bytes())
    assert run(cli, ["ingest", str(other), "--db", str(db), "--release", "6.9.0-other"]).exit_code == 0
    stored = run(cli, ["diff", "6.9.0-fixture", "6.9.0-other", "--db", str(db), "--store"])
    assert stored.exit_code == 0, stored.output
    conn = sqlite3.connect(db)
    pairs = conn.execute("SELECT id, build_a, build_b FROM diff_pairs").fetchall()
    assert [p[1] for p in pairs] == [pk]
    conn.execute("INSERT INTO groups (id, name, kind) VALUES (1, 'mine', 'series')")
    conn.execute(
        "INSERT INTO group_members (group_id, build_id, position, label) VALUES (1, ?, 0, 'mine')", (pk,)
    )
    conn.commit()
    conn.close()

    result = run(cli, ["ingest", str(rich), "--db", str(db), "--modules", "none"])
    assert result.exit_code == 0, result.output
    [(pk2, name2, has_dwarf, instances, n_config, distro)] = _build(db)[:1]
    assert (pk2, name2, has_dwarf, distro, n_config) == (pk, name, 1, "fixture", 2)  # id, name, config kept
    assert instances > 0  # DWARF's facts replaced the unknowns
    conn = sqlite3.connect(db)
    sources = dict(conn.execute("SELECT fact, source FROM build_sources WHERE build_id = ?", (pk,)))
    assert sources["instances"] == "vmlinux DWARF"
    assert sources["config"] == "/proc/config.gz (kept from the build upgraded)"
    assert conn.execute("SELECT build_id FROM group_members").fetchall() == [(pk,)]
    assert conn.execute("SELECT id, build_a, build_b FROM diff_pairs").fetchall() == pairs  # kept
    conn.close()

    # The poorer source again: nothing is downgraded.
    again = run(cli, ["ingest", "--running", "--root", str(root), "--db", str(db)])
    assert again.exit_code == 0 and "already in" in again.output
    assert _build(db)[0][2:4] == (1, instances)
