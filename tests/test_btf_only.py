"""A BTF-only input (like /sys/kernel/btf/vmlinux) plus a System.map."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from ingest import pipeline
from tests.support.btf import btf_only


@pytest.fixture(scope="module")
def btf_inputs(tmp_path_factory, program) -> tuple[Path, Path]:
    return btf_only(program, tmp_path_factory.mktemp("btf"))


def test_btf_only_build_says_what_it_lacks(tmp_path, btf_inputs):
    blob, system_map = btf_inputs
    db = tmp_path / "b.db"
    result = pipeline.ingest(
        blob, db, pipeline.Identity(release="9.9.9-test", arch="amd64"), kallsyms=system_map
    )
    assert not result.skipped
    conn = sqlite3.connect(db)
    has_dwarf, has_btf, has_symtab, lacks, release = conn.execute(
        "SELECT has_dwarf, has_btf, has_symtab, lacks, release FROM builds"
    ).fetchone()
    assert (has_dwarf, has_btf, has_symtab, release) == (0, 1, 1, "9.9.9-test")
    assert "inlining" in lacks and "callers" in lacks
    assert conn.execute("SELECT count(*) FROM instances").fetchone() == (0,)
    rows = dict(
        (n, (c, i, p))
        for n, c, i, p in conn.execute("SELECT name, collision, inline, prototype FROM function_status")
    )
    # No DWARF: collision unknown, never "absent"; a symbol means not fully inlined.
    assert rows["external_add"] == (None, "No", "int external_add(int a, int b);")
    assert rows["main"] == (None, "No", "int main(int argc, char **argv);")
    # Types come from the BTF.
    fields = [
        f for (f,) in conn.execute("SELECT field FROM struct_layouts WHERE name = 'packet' ORDER BY position")
    ]
    assert fields == ["version", "flags", "length", None, "raw", None, "lo", "hi", "name", "handler"]


def test_bad_btf_header_is_a_clear_error(tmp_path, btf_inputs):
    blob, _ = btf_inputs
    bad = tmp_path / "bad.btf"
    data = bytearray(blob.read_bytes())
    data[4:8] = b"\xff\xff\xff\x7f"  # version, flags, header length garbage
    bad.write_bytes(bytes(data))
    with pytest.raises(pipeline.IngestError, match="bad BTF"):
        pipeline.ingest(bad, tmp_path / "x.db")
    assert not (tmp_path / "x.db").exists()


def test_btf_only_build_is_named_by_the_map_and_lacks_image_facts(tmp_path, btf_inputs):
    """No --release: a System.map-<release> file name gives it; facts only an
    image has (ftrace records, kprobe blacklist, trace events) stay NULL."""
    blob, system_map = btf_inputs
    named = tmp_path / "System.map-6.1.0-56-amd64"
    shutil.copy(system_map, named)
    db = tmp_path / "m.db"
    result = pipeline.ingest(blob, db, kallsyms=named)
    assert result.name == "6.1.0-56-amd64"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT release, flavor FROM builds").fetchone() == ("6.1.0-56-amd64", "amd64")
    assert conn.execute(
        "SELECT count(*) FROM symbols WHERE ftrace IS NOT NULL OR kprobe_blocked IS NOT NULL"
    ).fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM functions WHERE ftrace IS NOT NULL").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM tracepoints WHERE system IS NOT NULL").fetchone() == (0,)
    # Variables from the map's data symbols (nm: D/B/R/d/b/r).
    (n_variables,) = conn.execute("SELECT n_variables FROM builds").fetchone()
    data = {
        line.split()[2]
        for line in system_map.read_text().splitlines()
        if len(line.split()) == 3 and line.split()[1] in "dDbBrRgGvV"
    }
    got = {n for (n,) in conn.execute("SELECT name FROM variable_list")}
    assert n_variables == len(got) > 0 and got == {n for n in data if "." not in n}


def test_btf_only_without_map_records_no_variables(tmp_path, btf_inputs):
    blob, _ = btf_inputs
    db = tmp_path / "n.db"
    result = pipeline.ingest(blob, db, pipeline.Identity(release="9.9.9-x"))
    assert result.name == "9.9.9-x"
    assert sqlite3.connect(db).execute("SELECT n_variables FROM builds").fetchone() == (None,)
