"""What a database answers, independent of its ids: for comparing two
databases that should hold the same builds (delete, merge)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: View columns that differ between two ingests of one image by nature (when and how long).
VOLATILE = {"ingest_seconds", "ingested_at"}


def view_rows(path: Path) -> dict[str, list[tuple]]:
    """Every view's rows without their id columns (ids are local to a database), sorted."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for (view,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name"):
            cursor = conn.execute(f"SELECT * FROM {view}")
            keep = [
                k
                for k, d in enumerate(cursor.description)
                if d[0] != "id" and not d[0].endswith("_id") and d[0] not in VOLATILE
            ]
            out[view] = sorted((tuple(row[k] for k in keep) for row in cursor), key=repr)
        return out
    finally:
        conn.close()
