"""The command line as a test drives it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner

from ingest.cli import cli


def ingest_fails(path: Path, db: Path, *words: str) -> None:
    """`kernsurf ingest path --db db` fails as a bad input must: exit status 1, one
    line "Error: ..." naming the file and each of `words`, the database unchanged."""
    before = hashlib.sha256(db.read_bytes()).hexdigest() if db.exists() else None
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", str(db), "-j", "1"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    message = result.output.strip()
    assert message.startswith("Error: ") and "\n" not in message, message
    assert str(path) in message
    for word in words:
        assert word in message, message
    after = hashlib.sha256(db.read_bytes()).hexdigest() if db.exists() else None
    assert after == before
