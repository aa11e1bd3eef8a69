"""ingest/bpf/core.py: CO-RE field resolution over the stored layouts of the
fixture program (tests/fixtures/program/common.h, struct packet: a union
holding `long raw` and an anonymous struct {short lo, hi}, read from DWARF)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest.bpf import core


@pytest.fixture()
def conn(program_db: Path):
    c = sqlite3.connect(f"file:{program_db}?mode=ro", uri=True)
    yield c
    c.close()


def build(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT id FROM builds").fetchone()[0]


@pytest.mark.parametrize(
    ("path", "local", "expected"),
    [
        ("packet.length", "int", (True, None)),
        ("packet.lo", "int", (True, None)),  # through the anonymous union and struct
        ("packet.raw", None, (True, None)),
        ("packet___old.raw", "int", (True, None)),  # the flavour is dropped, as libbpf does
        ("packet.handler", "func_ptr", (True, None)),
        ("packet.name", "ptr", (True, None)),
        ("packet.name", "int", (False, "kind_mismatch")),  # const char * read as an int
        ("packet.handler", "struct", (False, "kind_mismatch")),
        ("packet.nope", "int", (False, "field_missing")),
        ("packet.length.x", "int", (False, "kind_mismatch")),  # int holds no members
        ("nosuch.x", "int", (False, "absent")),
    ],
)
def test_resolve_field(conn, path, local, expected):
    got = core.resolve_field(conn, build(conn), path, local)
    assert (got.ok, got.reason) == expected, got.text


def test_texts_name_where(conn):
    assert core.resolve_field(conn, build(conn), "packet.nope").text == "no field nope in packet"
    assert core.resolve_field(conn, build(conn), "nosuch.x").text == "struct nosuch absent"


def test_member_type_references_are_stored(conn):
    rows = conn.execute(
        "SELECT sf.name, sf.type_kind, sf.type_layout_id IS NOT NULL FROM struct_layouts s"
        " JOIN struct_fields sf ON sf.layout_id = s.layout_id AND sf.position = s.position"
        " WHERE s.name = 'packet' ORDER BY sf.position"
    ).fetchall()
    assert rows == [
        ("version", "int", 0),
        ("flags", "int", 0),
        ("length", "int", 0),
        (None, "union", 1),  # the anonymous union is a layout of its own
        ("raw", "int", 0),
        (None, "struct", 1),
        ("lo", "int", 0),
        ("hi", "int", 0),
        ("name", "ptr", 0),
        ("handler", "func_ptr", 0),
    ]
    # anonymous layouts have no types row (no name)
    (union,) = conn.execute(
        "SELECT sf.type_layout_id FROM struct_layouts s JOIN struct_fields sf"
        " ON sf.layout_id = s.layout_id AND sf.position = s.position WHERE s.name = 'packet' AND sf.position = 3"
    ).fetchone()
    assert conn.execute("SELECT count(*) FROM types WHERE layout_id = ?", (union,)).fetchone() == (0,)
    assert conn.execute("SELECT kind FROM layouts WHERE id = ?", (union,)).fetchone() == ("union",)


@pytest.mark.parametrize(
    ("name", "essential"),
    [
        ("task_struct___old", "task_struct"),
        ("task_struct", "task_struct"),
        ("a____b", "a____b"),
        ("x___", "x___"),
    ],
)
def test_essential_name(name, essential):
    assert core.essential_name(name) == essential
