"""Kernel variables (docs/concepts.md#surfaces) and the `ksym` verdict: a
fixture compiled here checked against readelf -s, the real 6.1 image against
readelf too, and `kernsurf check --dep ksym:...` over both."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from ingest import pipeline
from ingest.bpf.check import check_objects, spec
from ingest.readers import elf
from ingest.readers.vaddr import ImageMemory
from ingest.surfaces.variables import object_symbols, read_variables
from tests.support.programs import compile_syscall_events
from tests.support.tools import require


@pytest.fixture(scope="module")
def fixture_program(tmp_path_factory) -> Path:
    return compile_syscall_events(tmp_path_factory.mktemp("syscall_events"))


def readelf_objects(path: Path) -> dict[str, set[tuple[int, int, str, str]]]:
    """name -> {(address, size, binding, section)} of the OBJECT symbols, from readelf -sW -SW."""
    require("readelf")
    sections = {}
    for line in subprocess.run(
        ["readelf", "-SW", str(path)], check=True, capture_output=True, text=True
    ).stdout.splitlines():
        line = line.strip()
        if line.startswith("[") and "]" in line:
            index, rest = line[1:].split("]", 1)
            if index.strip().isdigit() and rest.split():
                sections[index.strip()] = rest.split()[0]
    out: dict[str, set[tuple[int, int, str, str]]] = {}
    symtab = subprocess.run(["readelf", "-sW", str(path)], check=True, capture_output=True, text=True).stdout
    for line in symtab.splitlines():
        parts = line.split()
        if len(parts) == 8 and parts[3] == "OBJECT" and parts[6] in sections and "." not in parts[7]:
            size = int(parts[2], 16) if parts[2].startswith("0x") else int(parts[2])
            out.setdefault(parts[7], set()).add(
                (int(parts[1], 16), size, "STB_" + parts[4], sections[parts[6]])
            )
    return out


def variables_of(path: Path) -> list:
    with open(path, "rb") as f:
        mem = ImageMemory(elf.open_image(f))
        return read_variables(object_symbols(mem.symbols), None)


def test_fixture_variables_match_readelf(fixture_program):
    got: dict[str, set[tuple]] = {}
    for v in variables_of(fixture_program):
        got.setdefault(v.name, set()).add((v.address, v.size, v.binding, v.section))
    assert got == readelf_objects(fixture_program)
    by_name = {v.name: v for v in variables_of(fixture_program)}
    assert by_name["bpf_prog_active"].per_cpu and by_name["runqueues"].per_cpu
    assert not by_name["jiffies_like"].per_cpu
    assert by_name["local_state"].binding == "STB_LOCAL"
    assert "counter.0" not in by_name and "counter" not in by_name  # function-local static


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory, fixture_program) -> Path:
    db = tmp_path_factory.mktemp("vdb") / "v.db"
    pipeline.ingest(fixture_program, db, pipeline.Identity(label="fixture"), jobs=1)
    return db


def cells(db: Path, *deps: str) -> dict[str, tuple[str, str]]:
    """spec text -> (level, text) of the one build's cell."""
    report = check_objects(db, dep_texts=list(deps))
    return {spec(d): (row[0].level, row[0].text) for d, row in zip(report.dependencies, report.cells)}


def test_ksym_verdicts(fixture_db):
    conn = sqlite3.connect(fixture_db)
    n, rows = conn.execute("SELECT n_variables, (SELECT count(*) FROM variables) FROM builds").fetchone()
    assert n == rows > 0
    listed = conn.execute(
        "SELECT name, per_cpu, btf_var, section FROM variable_list WHERE name = 'runqueues'"
    ).fetchall()
    assert listed == [("runqueues", 1, 0, ".data..percpu")]
    got = cells(fixture_db, "ksym:runqueues", "ksym:jiffies_like", "ksym:no_such_variable")
    assert got["ksym:runqueues"][0] == "ok" and "per-CPU" in got["ksym:runqueues"][1]
    assert got["ksym:jiffies_like"][0] == "ok" and "per-CPU" not in got["ksym:jiffies_like"][1]
    assert got["ksym:no_such_variable"] == ("fail", "absent")


def test_ksym_not_recorded_is_unknown(tmp_path, fixture_db):
    db = tmp_path / "old.db"
    shutil.copy(fixture_db, db)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE builds SET n_variables = NULL")  # a build ingested before variables
    conn.commit()
    conn.close()
    assert cells(db, "ksym:runqueues")["ksym:runqueues"] == (
        "unknown",
        "kernel variables not recorded for this build",
    )


@pytest.mark.slow
@pytest.mark.real_kernel
def test_real_variables_match_readelf(real_kernel):
    """Oracle: readelf -s of the 6.1.0-56 vmlinux (runqueues and bpf_prog_active
    are per-CPU OBJECTs: `readelf -sW vmlinux | grep -w runqueues` shows section .data..percpu)."""
    from ingest.readers import btf as btf_reader

    with open(real_kernel, "rb") as f:
        mem = ImageMemory(elf.open_image(f))
        btf = btf_reader.read_btf(mem.image.section(".BTF"))
        found = read_variables(object_symbols(mem.symbols), btf)
    got: dict[str, set[tuple]] = {}
    for v in found:
        if v.address is not None:
            got.setdefault(v.name, set()).add((v.address, v.size, v.binding, v.section))
    assert got == readelf_objects(real_kernel)
    by_name = {v.name: v for v in found}
    for name in ("runqueues", "bpf_prog_active"):
        assert (by_name[name].per_cpu, by_name[name].btf_var, by_name[name].section) == (
            True,
            True,
            ".data..percpu",
        )
    assert (by_name["init_task"].per_cpu, by_name["init_task"].btf_var) == (False, False)
    # pahole emits VARs for per-CPU variables only: every BTF VAR is per-CPU.
    assert all(v.per_cpu for v in found if v.btf_var)
