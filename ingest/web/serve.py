"""Serving a database: the name search index, then Datasette with the kernsurf
pages (`kernsurf index`, `kernsurf serve`).

Before serving, when the database is newer than its inspect file (DB.inspect.json
beside it), the search index is refilled and `datasette inspect` writes that
file. Datasette then serves the database immutable (-i: no writes, table counts
from the inspect file, the .db downloadable) under the name "kernels", the
database metadata.yml describes, with the shipped metadata, templates and
plugins (ingest.resources), so an installed wheel serves without a checkout.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import yaml

from ingest import db, resources
from ingest.errors import NoDatabase

#: Datasette settings of a served database (besides Profile's); options given to
#: `kernsurf serve` come after and win.
SETTINGS = (
    ("max_returned_rows", "5000"),
    ("default_cache_ttl", "86400"),
    ("allow_csv_stream", "on"),
    ("suggest_facets", "off"),
)


class Profile(NamedTuple):
    """How `kernsurf serve` serves (docs/serving.md#limits says what each protects)."""

    public: bool = False  # /-/ information endpoints off, security headers on
    download: bool = True  # the .db downloadable from /kernels
    sql_time_limit_ms: int = 3000  # any one SQL query, pages and /check included
    sql_threads: int = 3  # Datasette's SQL threads; /check and ad-hoc SQL get one lane each

    def settings(self) -> list[tuple[str, str]]:
        return [
            ("sql_time_limit_ms", str(self.sql_time_limit_ms)),
            ("num_sql_threads", str(self.sql_threads)),
            ("allow_download", "on" if self.download else "off"),
        ]

    def metadata(self) -> dict:
        """The packaged metadata with this profile in plugins.kernsurf.serving."""
        data = yaml.safe_load(resources.metadata_path().read_text())
        kernsurf = data.setdefault("plugins", {}).setdefault("kernsurf", {})
        kernsurf["serving"] = {"public": self.public}
        return data


DEFAULT_PROFILE = Profile()


#: The database name metadata.yml describes.
DATABASE_NAME = "kernels"


def _report(line: str) -> None:
    print(line, file=sys.stderr)


def existing(db_path: Path, hint: str = "kernsurf build manifests/default.yml") -> Path:
    """`db_path` if it is a file, else NoDatabase saying how to make one."""
    if not db_path.is_file():
        raise NoDatabase(f"{db_path}: no such database (build one with: {hint} --db {db_path})")
    return db_path


def search_index(db_path: Path) -> int:
    """Refill the name search index of an existing database; returns how many names it holds."""
    try:
        conn = db.connect(existing(db_path))
    except sqlite3.Error as exc:
        raise db.database_error(db_path, exc) from None
    try:
        return db.build_search_index(conn)
    finally:
        conn.close()


def inspect_path(db_path: Path) -> Path:
    """DB.inspect.json beside the database (kernels.db -> kernels.inspect.json)."""
    return db_path.with_name(db_path.name.removesuffix(".db") + ".inspect.json")


def stale(db_path: Path) -> bool:
    """Whether the inspect file is missing or older than the database."""
    inspect = inspect_path(db_path)
    return not inspect.exists() or db_path.stat().st_mtime > inspect.stat().st_mtime


@contextmanager
def served_as(db_path: Path) -> Iterator[Path]:
    """A path of the database named DATABASE_NAME.db: itself, or a symlink in
    a temporary directory removed on exit."""
    if db_path.name == f"{DATABASE_NAME}.db":
        yield db_path
        return
    with tempfile.TemporaryDirectory(prefix="kernsurf-serve-") as tmp:
        link = Path(tmp) / f"{DATABASE_NAME}.db"
        link.symlink_to(db_path.resolve())
        yield link


def _exit(signum: int, frame: object) -> None:
    """A SIGTERM handler that unwinds the stack (running `finally` and `with` exits)."""
    raise SystemExit(128 + signum)


def _datasette(args: Sequence[str]) -> None:
    """Run a datasette command in this process, as its command line would."""
    from datasette.cli import cli as datasette_cli

    datasette_cli.main(list(args), prog_name="datasette", standalone_mode=False)


def prepare(db_path: Path, served: Path, report: Callable[[str], None] = _report) -> None:
    """The search index, then the inspect file, when the inspect file is stale."""
    if not stale(db_path):
        return
    report(f"preparing {db_path}: search index, then {inspect_path(db_path)}")
    report(f"search index: {search_index(db_path)} names")
    write_inspect(served, inspect_path(db_path))


def write_inspect(served: Path, inspect: Path) -> None:
    """`datasette inspect` of a database named DATABASE_NAME.db (served_as) into `inspect`:
    the table counts Datasette serving it immutable reads instead of counting. Only reads it."""
    _datasette(["inspect", str(served), "--inspect-file", str(inspect)])


def datasette_args(
    served: Path,
    inspect: Path,
    host: str,
    port: int,
    extra: Sequence[str] = (),
    profile: Profile = DEFAULT_PROFILE,
    metadata: Path | None = None,
) -> list[str]:
    """The `datasette serve` arguments for a served database (`metadata`: a file
    with the profile written in, else the packaged metadata)."""
    args = [
        "serve",
        "-i",
        str(served),
        "--inspect-file",
        str(inspect),
        "--metadata",
        str(metadata or resources.metadata_path()),
        "--template-dir",
        str(resources.templates_dir()),
        "--plugins-dir",
        str(resources.plugins_dir()),
        "--host",
        host,
        "--port",
        str(port),
    ]
    for name, value in (*profile.settings(), *SETTINGS):
        args += ["--setting", name, value]
    return args + list(extra)


def serve(
    db_path: Path,
    host: str = "127.0.0.1",
    port: int = 8001,
    extra: Sequence[str] = (),
    prepare_only: bool = False,
    report: Callable[[str], None] = _report,
    profile: Profile = DEFAULT_PROFILE,
) -> None:
    """Prepare the database if needed, then serve it until interrupted
    (unless `prepare_only`). `extra`: more `datasette serve` options."""
    existing(db_path)
    # uvicorn re-raises the SIGTERM it stopped on: exit through Python so the temporary directories go too.
    signal.signal(signal.SIGTERM, _exit)
    with served_as(db_path) as served, tempfile.TemporaryDirectory(prefix="kernsurf-metadata-") as tmp:
        prepare(db_path, served, report)
        if not prepare_only:
            metadata = Path(tmp) / "metadata.json"
            metadata.write_text(json.dumps(profile.metadata()))
            args = datasette_args(served, inspect_path(db_path), host, port, extra, profile, metadata)
            _serve_process(args)


def _serve_process(args: Sequence[str]) -> None:
    """`datasette serve` in a child process, stopped when this one exits. Served
    in this process instead, uncached pages were ~12 % slower (bench-serve: /function
    p50 3.5 vs 3.1 ms, 265 vs 300 pages/s under load)."""
    child = subprocess.Popen([sys.executable, "-m", "datasette", *args])
    try:
        child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait()
