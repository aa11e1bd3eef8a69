"""The frontend fixture database and a Datasette configured as scripts/serve.sh
configures it, for tests/test_frontend.py and tests/test_browser.py."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCES = Path(__file__).parent / "fixtures" / "frontend"
METADATA = ROOT / "metadata.yml"
TEMPLATES = ROOT / "templates"
PLUGINS = ROOT / "plugins"


def compile_version(dest: Path, version: str) -> Path:
    """tests/fixtures/frontend laid out like a kernel tree and compiled from
    debian/build/build_<version>/ (paths normalise to kernel/fe_a.c); "v2"
    is the same source with -DV2, the "small source edit"."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    tree = dest / f"linux-{version}"
    (tree / "kernel").mkdir(parents=True)
    (tree / "include").mkdir()
    for name in ("fe_a.c", "fe_b.c"):
        shutil.copy(SOURCES / name, tree / "kernel" / name)
    shutil.copy(SOURCES / "fe.h", tree / "include" / "fe.h")
    build = tree / "debian" / "build" / f"build_{version}"
    build.mkdir(parents=True)
    flags = ["-DV2"] if version == "v2" else []
    for name in ("fe_a.c", "fe_b.c"):
        subprocess.run(
            [
                "gcc",
                "-g",
                "-O2",
                *flags,
                "-I../../../include",
                "-c",
                f"../../../kernel/{name}",
                "-o",
                name[:-2] + ".o",
            ],
            cwd=build,
            check=True,
            capture_output=True,
        )
    subprocess.run(
        ["gcc", "-O2", "-o", "prog", "fe_a.o", "fe_b.o"], cwd=build, check=True, capture_output=True
    )
    return build / "prog"


def build_frontend_db(tmp_path_factory) -> Path:
    """kernels.db with builds "v1" and "v2" ingested by the real pipeline and
    the search index built; made once per test session."""
    from ingest import db, pipeline

    base = tmp_path_factory.getbasetemp() / "frontend"
    path = base / "kernels.db"
    if path.exists():
        return path
    work = base / "src"
    work.mkdir(parents=True)
    for version in ("v1", "v2"):
        pipeline.ingest(compile_version(work, version), path, pipeline.Identity(label=version), jobs=1)
    conn = db.connect(path)
    db.build_search_index(conn)
    conn.close()
    return path


def binary(tmp_path_factory, version: str) -> Path:
    return (
        tmp_path_factory.getbasetemp()
        / "frontend"
        / "src"
        / f"linux-{version}"
        / "debian"
        / "build"
        / f"build_{version}"
        / "prog"
    )


def variant(source: Path, dest_dir: Path, sql: str = "", params: list[tuple] | None = None) -> Path:
    """A copy of `source` (still named kernels.db) changed by `sql` statements."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / "kernels.db"
    shutil.copy(source, dest)
    conn = sqlite3.connect(dest)
    if sql:
        conn.executescript(sql)
    for statement, args in params or ():
        conn.execute(statement, args)
    conn.commit()
    conn.close()
    return dest


class Site:
    """A Datasette over one database file, as served (immutable), with a
    private event loop so synchronous tests can make requests."""

    def __init__(self, path: Path, immutable: bool = True):
        from datasette.app import Datasette

        self.loop = asyncio.new_event_loop()
        self.ds = Datasette(
            [] if immutable else [str(path)],
            immutables=[str(path)] if immutable else [],
            metadata=yaml.safe_load(METADATA.read_text()),
            template_dir=str(TEMPLATES),
            plugins_dir=str(PLUGINS),
            settings={"sql_time_limit_ms": 3000, "max_returned_rows": 5000},
        )
        self.loop.run_until_complete(self.ds.invoke_startup())

    def get(self, path: str, **kwargs):
        """GET a path, following redirects (the old function_status canned-query URL redirects)."""
        kwargs.setdefault("follow_redirects", True)
        return self.loop.run_until_complete(self.ds.client.get(path, **kwargs))

    def rows(self, path: str) -> list[dict]:
        """The rows of a .json URL, as objects."""
        sep = "&" if "?" in path else "?"
        response = self.get(f"{path}{sep}_shape=objects")
        assert response.status_code == 200, response.text[:500]
        data = response.json()
        assert data.get("ok", True), data
        return data["rows"]

    def close(self) -> None:
        self.loop.close()
