"""Kernel config parsing, and configs reaching the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest import pipeline
from ingest.surfaces import kconfig

SAMPLE = """\
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.192 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
CONFIG_BPF_SYSCALL=y
CONFIG_BPF_LSM=y
CONFIG_MODULES=y
CONFIG_EXT4_FS=m
CONFIG_LOG_BUF_SHIFT=17
CONFIG_PHYSICAL_START=0x1000000
# CONFIG_DEBUG_INFO_REDUCED is not set
# Comment lines that are not options are ignored
"""


def test_values_as_written():
    options = kconfig.parse_config(SAMPLE)
    assert options == {
        "CONFIG_CC_VERSION_TEXT": '"gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"',
        "CONFIG_BPF_SYSCALL": "y",
        "CONFIG_BPF_LSM": "y",
        "CONFIG_MODULES": "y",
        "CONFIG_EXT4_FS": "m",
        "CONFIG_LOG_BUF_SHIFT": "17",
        "CONFIG_PHYSICAL_START": "0x1000000",
        "CONFIG_DEBUG_INFO_REDUCED": "n",
    }


def test_not_a_config(tmp_path: Path):
    bad = tmp_path / "config"
    bad.write_text("hello\n")
    with pytest.raises(kconfig.BadConfig, match="not a kernel config"):
        kconfig.read_config(bad)


def test_config_lands_with_its_build(tmp_path: Path, program: Path):
    config = tmp_path / "config"
    config.write_text(SAMPLE)
    db = tmp_path / "k.db"
    pipeline.ingest(program, db, pipeline.Identity(label="fx"), jobs=1, config=config)
    conn = sqlite3.connect(db)
    rows = dict(conn.execute("SELECT n.name, c.value FROM config_options c JOIN names n ON n.id = c.name_id"))
    assert rows == kconfig.parse_config(SAMPLE)
    assert conn.execute("SELECT n_config FROM builds").fetchone()[0] == 8


def test_bad_config_leaves_database_untouched(tmp_path: Path, program: Path):
    bad = tmp_path / "config"
    bad.write_bytes(b"\x7fELF not a config")
    db = tmp_path / "k.db"
    with pytest.raises(pipeline.IngestError, match="not a kernel config"):
        pipeline.ingest(program, db, pipeline.Identity(label="fx"), jobs=1, config=bad)
    assert not db.exists()
