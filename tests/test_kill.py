"""Kill-safety: SIGKILL an ingest at several points; afterwards the database
passes PRAGMA integrity_check, shows no partial build, and the next run completes.

Kill points:
- fixture, inside the write transaction (a connection wrapper SIGKILLs the
  process right after the instances are inserted, and right before COMMIT);
- real kernel (cached Debian vmlinux), `python -m ingest ingest` killed
  5 s in (during the DWARF walk), and as soon as the commit starts writing
  pages (the -wal, or with a rollback journal the -journal, gets bytes).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.programs import compile_program

#: Runs the CLI with db.connect wrapped so the process SIGKILLs itself when it
#: is about to run (or has just run, for executemany) SQL containing $KILL_AT.
KILLER = r"""
import os, signal, sys
from ingest import db

real_connect = db.connect

class Conn:
    def __init__(self, conn):
        self._conn = conn
    def __getattr__(self, name):
        return getattr(self._conn, name)
    def execute(self, sql, *args):
        if os.environ["KILL_AT"] in sql:
            os.kill(os.getpid(), signal.SIGKILL)
        return self._conn.execute(sql, *args)
    def executemany(self, sql, rows):
        cur = self._conn.executemany(sql, rows)
        if os.environ["KILL_AT"] in sql:
            os.kill(os.getpid(), signal.SIGKILL)
        return cur

db.connect = lambda path: Conn(real_connect(path))
"""
INGEST = (
    KILLER
    + """
from ingest.cli import cli
cli(sys.argv[1:], prog_name="kernsurf")
"""
)
#: `kernsurf build` of a manifest whose builds are fetched from local ELFs
#: (argv: MANIFEST DB id=path...), with the same kill switch.
BUILD = (
    KILLER
    + """
from pathlib import Path
from ingest.catalog import batch as builder
from ingest.catalog import manifest
paths = dict(arg.split("=", 1) for arg in sys.argv[3:])
def fetch(spec, progress=None):
    return builder.Fetched(Path(paths[spec.id]), "1.0-1", spec.release, spec.arch, spec.flavor, downloaded=0,
                           evict=lambda: 0)
builder.build(manifest.load(sys.argv[1]), sys.argv[2], fetcher=fetch, ingest_jobs=1)
"""
)
MANIFEST = """\
builds:
  - id: old
    release: 6.1.0-56-amd64
    suite: bookworm
  - id: new
    release: 6.12.113+deb13-amd64
    suite: trixie
groups:
  - name: Regular
    kind: series
    members:
      - old: "6.1"
      - new: "6.12"
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def state(db: Path) -> tuple[int, int, int]:
    """(builds, instances, functions) after checking integrity."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return tuple(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("builds", "instances", "functions")
        )
    finally:
        conn.close()


def ingest_completes(image: Path, db: Path, before: tuple[int, int, int]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ingest", "ingest", str(image), "--db", str(db), "--modules", "none"],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    after = state(db)
    assert after[0] == before[0] + 1 and after[1] > before[1], (before, after)


@pytest.fixture()
def populated(tmp_path, program_db) -> Path:
    db = tmp_path / "k.db"
    db.write_bytes(program_db.read_bytes())
    return db


@pytest.mark.parametrize("kill_at", ["INSERT INTO instance_facts", "INSERT INTO call_facts", "COMMIT"])
def test_kill_during_database_write(tmp_path, populated, kill_at):
    other = compile_program(tmp_path, "dwarf4")  # a new build-id to the populated database
    before = state(populated)
    proc = subprocess.run(
        [sys.executable, "-c", INGEST, "ingest", str(other), "--db", str(populated), "-j", "1"],
        cwd=ROOT,
        env={**env(), "KILL_AT": kill_at},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
    assert state(populated) == before
    ingest_completes(other, populated, before)


def build_state(db: Path) -> tuple:
    conn = sqlite3.connect(db)
    try:
        return state(db) + tuple(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("groups", "group_members", "diff_pairs", "changes")
        )
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "kill_at,builds,groups,pairs",
    [
        ("INSERT INTO call_facts", 0, 0, 0),  # ingest of the first build
        ("INSERT INTO group_members", 2, 0, 0),  # finalize: the groups
        ("INSERT INTO changes", 2, 1, 0),  # finalize: the group's diff
    ],
)
def test_kill_build(tmp_path, kill_at, builds, groups, pairs):
    """`kernsurf build` killed mid-ingest and during finalize; the re-run completes."""
    images = {
        "old": compile_program(tmp_path / "a", "dwarf4"),
        "new": compile_program(tmp_path / "b", "dwarf5"),
    }
    manifest = tmp_path / "m.yml"
    manifest.write_text(MANIFEST)
    db = tmp_path / "k.db"
    args = [str(manifest), str(db)] + [f"{k}={v}" for k, v in images.items()]
    proc = subprocess.run(
        [sys.executable, "-c", BUILD, *args],
        cwd=ROOT,
        env={**env(), "KILL_AT": kill_at},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
    if db.exists():
        after = build_state(db)
        assert (after[0], after[3], after[5]) == (builds, groups, pairs), after
        conn = sqlite3.connect(db)
        try:  # every visible build is complete: it has its functions
            assert (
                conn.execute(
                    "SELECT count(*) FROM builds b WHERE NOT EXISTS"
                    " (SELECT 1 FROM functions f WHERE f.build_id = b.id)"
                ).fetchone()[0]
                == 0
            )
            # no group without members, no pair without its changes committed with it
            assert (
                conn.execute(
                    "SELECT count(*) FROM groups g WHERE NOT EXISTS"
                    " (SELECT 1 FROM group_members m WHERE m.group_id = g.id)"
                ).fetchone()[0]
                == 0
            )
        finally:
            conn.close()
    proc = subprocess.run(
        [sys.executable, "-c", BUILD, *args],
        cwd=ROOT,
        env={**env(), "KILL_AT": "no SQL has this"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    final = build_state(db)
    assert final[0] == 2 and final[3:6] == (1, 2, 1), final


def start(image: Path, db: Path) -> subprocess.Popen:
    # Own process group, so the walk's worker processes die with it.
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", "ingest", str(image), "--db", str(db), "--modules", "none"],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()


def writing(db: Path) -> bool:
    for suffix in ("-wal", "-journal"):
        try:
            if os.path.getsize(str(db) + suffix) > 0:
                return True
        except OSError:
            pass
    return False


@pytest.mark.slow
@pytest.mark.real_kernel
def test_kill_real_kernel_ingest(real_kernel, populated):
    before = state(populated)
    # (a) during the DWARF walk
    proc = start(real_kernel, populated)
    time.sleep(5)
    assert proc.poll() is None, "the ingest ended before the kill"
    kill(proc)
    assert state(populated) == before
    # (b) as soon as the commit writes pages
    proc = start(real_kernel, populated)
    deadline = time.monotonic() + 600
    while not writing(populated) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the ingest ended before the write could be caught"
    kill(proc)
    assert state(populated) == before
    ingest_completes(real_kernel, populated, before)
