"""The frontend fixture database (tests/fixtures/frontend as builds "v1" and "v2"),
a Datasette configured as scripts/serve.sh configures it, run in process, and a
server started on a free loopback port."""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support import FIXTURES, ROOT
from tests.support.programs import compile_version

SOURCES = FIXTURES / "frontend"
METADATA = ROOT / "metadata.yml"
TEMPLATES = ROOT / "templates"
PLUGINS = ROOT / "plugins"


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


def visible_text(markup: str) -> str:
    """The visible text of an HTML page: tags stripped, entities decoded."""
    body = re.sub(r"<(style|script)\b.*?</\1>", "", markup, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def text(response) -> str:
    """The visible text of a response's HTML page."""
    return visible_text(response.text)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(
    cmd: Sequence[str], port: int, log: Path, *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Run a server command (in its own process group) until it answers
    /-/versions.json on `port` with any HTTP status (a public profile answers it
    404), failing with the tail of `log`, its output, when it exits or takes
    over 60 s; yields its base URL, then stops the group."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/-/versions.json", timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{cmd[0]} did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:  # it exited already
            pass
        proc.wait(timeout=30)
