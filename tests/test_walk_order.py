"""A DWARF-only build's rows do not depend on how many processes walk it.

Eight units, compiled at test time, each define `struct held` (4 bytes: `int`
in even units, `unsigned int` in odd ones) and the same `struct outer { struct
held h; }`. The two `held` are distinct types (their member declarations
differ), while every unit's `outer` has the same declaration text, so one walk
in unit order keeps the first unit's `outer` only. Two worker processes each
drop the types they walked before, on their own: before the fix each kept its
own first `outer`, so two workers stored two `outer` layouts and one process one."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from ingest import db, pipeline

UNIT = """
struct held {{ {member_type} value; }};
struct outer {{ struct held h; }};
int touch_{n}(struct outer *o) {{ return (int)o->h.value + {n}; }}
"""
MAIN = """
struct outer;
{declarations}
int main(void) {{ return 0; }}
"""
UNITS = 8
TIMING = {"ingest_seconds", "ingested_at"}


def _program(tmp: Path) -> Path:
    objects = []
    for n in range(UNITS):
        src = tmp / f"unit_{n}.c"
        src.write_text(UNIT.format(n=n, member_type="int" if n % 2 == 0 else "unsigned int"))
        objects.append(src)
    decls = "\n".join(f"int touch_{n}(struct outer *o);" for n in range(UNITS))
    (tmp / "main.c").write_text(MAIN.format(declarations=decls))
    out = tmp / "prog"
    cmd = ["gcc", "-g", "-O2", "-gdwarf-5", "-o", str(out), *map(str, objects), str(tmp / "main.c")]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def _rows(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    out = {}
    for table in tables:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in TIMING]
        out[table] = sorted(conn.execute(f"SELECT {', '.join(cols)} FROM {table}"), key=repr)
    return out


def test_types_do_not_depend_on_the_number_of_workers(tmp_path):
    prog = _program(tmp_path)
    paths = {}
    for jobs in (1, 2):
        paths[jobs] = tmp_path / f"j{jobs}.db"
        pipeline.ingest(prog, paths[jobs], pipeline.Identity(label="order"), jobs=jobs)
    conn = db.open_readonly(paths[2])
    kept = conn.execute(
        "SELECT n.name, count(*) FROM types t JOIN names n ON n.id = t.name_id"
        " WHERE n.name IN ('held', 'outer') GROUP BY n.name ORDER BY n.name"
    ).fetchall()
    assert kept == [("held", 2), ("outer", 1)]
    assert _rows(paths[1]) == _rows(paths[2])
