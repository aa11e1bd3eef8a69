"""Bad inputs: one-line error naming the file, exit status 1, database unchanged."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile

from ingest.cli import cli
from tests.support.cli import ingest_fails
from tests.support.programs import compile_program


@pytest.fixture()
def db_with_build(tmp_path) -> Path:
    """A database holding another build (the DWARF 4 variant), so the broken
    copies of the DWARF 5 program are new build-ids to it."""
    db = tmp_path / "k.db"
    other = compile_program(tmp_path, "dwarf4")
    result = CliRunner().invoke(cli, ["ingest", str(other), "--db", str(db), "-j", "1"])
    assert result.exit_code == 0, result.output
    return db


def section_offset(elf: Path, name: str) -> tuple[int, int]:
    with open(elf, "rb") as f:
        sec = ELFFile(f).get_section_by_name(name)
        return sec["sh_offset"], sec["sh_size"]


def test_not_an_elf(tmp_path, db_with_build):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    ingest_fails(bad, db_with_build, "not an ELF")


def test_compressed_vmlinuz_is_not_an_elf(tmp_path, db_with_build, program):
    bad = tmp_path / "vmlinuz"
    bad.write_bytes(gzip.compress(program.read_bytes()))
    ingest_fails(bad, db_with_build, "not an ELF")


def test_empty_file_and_directory(tmp_path, db_with_build):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    ingest_fails(empty, db_with_build, "not an ELF")
    ingest_fails(tmp_path, db_with_build, "directory")


def test_missing_db_is_not_created_on_bad_input(tmp_path):
    bad = tmp_path / "x"
    bad.write_text("x")
    ingest_fails(bad, tmp_path / "new.db", "not an ELF")
    assert not (tmp_path / "new.db").exists()


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.9])
def test_truncated(tmp_path, db_with_build, program, fraction):
    bad = tmp_path / "truncated"
    data = program.read_bytes()
    bad.write_bytes(data[: int(len(data) * fraction)])
    ingest_fails(bad, db_with_build)


def test_stripped_has_no_debug_info(tmp_path, db_with_build, program):
    bad = tmp_path / "stripped"
    shutil.copy(program, bad)
    import subprocess

    subprocess.run(["strip", "--strip-all", str(bad)], check=True)
    ingest_fails(bad, db_with_build, "no debug info")


@pytest.mark.parametrize("section", [".debug_info", ".debug_abbrev"])
def test_corrupt_dwarf(tmp_path, db_with_build, program, section):
    bad = tmp_path / "corrupt"
    data = bytearray(program.read_bytes())
    off, size = section_offset(program, section)
    for k in range(off + 11, off + size, 7):
        data[k] ^= 0xFF
    bad.write_bytes(bytes(data))
    ingest_fails(bad, db_with_build)


def test_unsupported_machine(tmp_path, db_with_build, program):
    bad = tmp_path / "weird"
    data = bytearray(program.read_bytes())
    data[18:20] = (0x1234).to_bytes(2, "little")  # e_machine
    bad.write_bytes(bytes(data))
    ingest_fails(bad, db_with_build, "unsupported machine")
