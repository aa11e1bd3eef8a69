"""Readers (as Datasette: read-only connections in threads) query the database
while new builds are ingested by another process: they see the old or the new
state, never an error, and are never blocked for long (the database is in WAL
mode, set by db.connect)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.programs import compile_program

SNAPSHOT = (
    "SELECT (SELECT count(*) FROM builds), (SELECT count(*) FROM instances),"
    " (SELECT count(*) FROM functions), (SELECT count(*) FROM symbols)"
)
QUERIES = (
    "SELECT name, release, arch FROM builds ORDER BY id",
    "SELECT * FROM function_status LIMIT 50",
    "SELECT n.name, count(*) FROM instances i JOIN names n ON n.id = i.name_id GROUP BY n.name",
)


def snapshot(db: Path) -> tuple:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(SNAPSHOT).fetchone()
    finally:
        conn.close()


@pytest.mark.slow
def test_readers_during_ingest(tmp_path, program_db):
    db = tmp_path / "k.db"
    db.write_bytes(program_db.read_bytes())
    images = [compile_program(tmp_path, v) for v in ("dwarf4", "zlib")]
    states = [snapshot(db)]
    seen: list[tuple] = []
    errors: list[BaseException] = []
    slowest = [0.0]
    done = threading.Event()
    reads = [0]
    lock = threading.Lock()

    def reader() -> None:
        # Datasette opens a file it serves mutable as file:...?mode=ro. timeout=0: a
        # reader that would have to wait for the writer fails at once (WAL readers never wait).
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0, check_same_thread=False)
        try:
            while not done.is_set():
                start = time.monotonic()
                try:
                    row = conn.execute(SNAPSHOT).fetchone()
                    for q in QUERIES:
                        conn.execute(q).fetchall()
                except BaseException as exc:  # noqa: BLE001 - any error fails the test
                    errors.append(exc)
                    return
                with lock:
                    seen.append(row)
                    reads[0] += 1
                    slowest[0] = max(slowest[0], time.monotonic() - start)
        finally:
            conn.close()

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        for image in images:
            proc = subprocess.run(
                [sys.executable, "-m", "ingest", "ingest", str(image), "--db", str(db), "-j", "1"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 0, proc.stderr
            states.append(snapshot(db))
        time.sleep(0.2)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    assert reads[0] > 50, reads[0]
    assert set(seen) <= set(states), (set(seen) - set(states), states)
    assert states[-1][0] == states[0][0] + 2
    assert slowest[0] < 2.0, slowest[0]
