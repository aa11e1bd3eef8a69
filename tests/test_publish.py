"""`kernsurf publish`, `kernsurf pull` and the GitHub action (action.yml): a
fixture database published, served by an HTTP server on loopback (with Range
requests, transfers it cuts off, files it corrupts) and pulled back."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import db
from ingest.cli import cli
from ingest.errors import (
    BadArtefact,
    CorruptDownload,
    DatabaseExists,
    NoDatabase,
    PublishError,
    UnreadableFormat,
)
from ingest.publish import artefact as publish
from ingest.publish import pull
from ingest.web import serve
from tests.support import FIXTURES, ROOT
from tests.support.checkout import copy_sources
from tests.support.programs import compile_bpf

# --------------------------------------------------------------------------- a file server on loopback


@dataclass
class Served:
    """The behaviour of the test server and what it saw."""

    root: Path
    ranges: bool = True  # honour Range requests (else answer 200 with the whole file)
    cut_at: int | None = None  # stop sending any file at this byte offset and close the connection
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET of files under Served.root, with single `bytes=N-` ranges."""

    served: Served

    def do_GET(self) -> None:
        served = self.served
        wanted = self.headers.get("Range")
        served.requests.append((self.path, wanted))
        path = served.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1)) if wanted and served.ranges else 0
        if start >= len(data) and start:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        end = len(data) if served.cut_at is None else max(start, min(len(data), served.cut_at))
        self.wfile.write(data[start:end])
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, Served]]:
    """An HTTP server on an ephemeral loopback port serving tmp_path/site."""
    served = Served(tmp_path / "site")
    handler = type("Handler", (_Handler,), {"served": served})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def published(tmp_path_factory, program_db) -> Path:
    """The fixture database published once."""
    out = tmp_path_factory.mktemp("published") / "site"
    publish.publish(program_db, out)
    return out


@pytest.fixture
def site(server, published) -> tuple[str, Served]:
    """The publication copied into the served directory (tests may spoil their copy)."""
    url, served = server
    shutil.copytree(published, served.root)
    return url, served


def _sha(path: Path) -> str:
    return publish.sha256_of(path)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "site")  # the served directory


# --------------------------------------------------------------------------- publish


def test_publish_writes_a_compact_indexed_copy_and_its_manifest(program_db, tmp_path):
    before, mtime = _sha(program_db), program_db.stat().st_mtime_ns
    result = CliRunner().invoke(cli, ["publish", str(tmp_path / "out"), "--db", str(program_db)])
    assert result.exit_code == 0, result.output
    assert (_sha(program_db), program_db.stat().st_mtime_ns) == (before, mtime)  # the source is only read
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "fixture.db",
        "fixture.db.zst",
        "fixture.inspect.json",
        "manifest.json",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == publish.FORMAT
    assert manifest["schema_version"] == db.SCHEMA_VERSION
    assert manifest["compression"] == "zstd"
    assert [b["name"] for b in manifest["builds"]] == ["fixture"]
    assert set(manifest["builds"][0]) == set(publish.BUILD_COLUMNS)
    for entry in (manifest["database"], manifest["compressed"], manifest["inspect"]):
        path = out / entry["file"]
        assert (entry["size"], entry["sha256"]) == (path.stat().st_size, _sha(path))
    copy = sqlite3.connect(out / "fixture.db")
    assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # no -wal to ship
    assert copy.execute("PRAGMA freelist_count").fetchone() == (0,)  # VACUUMed
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # The search index is built: the fixture's entry_a (tests/fixtures/program/unit_a.c) is found.
    assert copy.execute("SELECT name FROM name_search WHERE name_search MATCH 'entry_a'").fetchall() == [
        ("entry_a",)
    ]
    tables = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    assert copy.execute(tables).fetchall() == sqlite3.connect(program_db).execute(tables).fetchall()
    if shutil.which("zstd"):  # the zstd tool as the oracle of the compressed copy
        plain = subprocess.run(["zstd", "-dc", str(out / "fixture.db.zst")], capture_output=True, check=True)
        assert plain.stdout == (out / "fixture.db").read_bytes()
    assert "published 1 builds" in result.output


def test_publish_replaces_an_earlier_publication(program_db, tmp_path):
    out = tmp_path / "out"
    first = publish.publish(program_db, out).manifest
    (out / "fixture.db").write_bytes(b"old")
    second = publish.publish(program_db, out).manifest
    assert second.database.sha256 == first.database.sha256  # same database, same bytes
    assert sorted(p.name for p in out.iterdir()) == [
        "fixture.db",
        "fixture.db.zst",
        "fixture.inspect.json",
        "manifest.json",
    ]


def test_publish_upgrades_an_older_schema_in_the_copy_only(program_db, tmp_path):
    source = tmp_path / "old.db"
    shutil.copy(program_db, source)
    raw = sqlite3.connect(source)
    raw.execute("UPDATE schema_version SET version = 3")
    raw.commit()
    raw.close()
    before = _sha(source)
    manifest = publish.publish(source, tmp_path / "out").manifest
    assert manifest.schema_version == db.SCHEMA_VERSION
    assert _sha(source) == before
    assert sqlite3.connect(source).execute("SELECT version FROM schema_version").fetchone() == (3,)


def test_publish_never_writes_over_its_source(program_db, tmp_path):
    source = tmp_path / "kernels.db"
    shutil.copy(program_db, source)
    before = _sha(source)
    with pytest.raises(PublishError, match="publish into another directory"):
        publish.publish(source, tmp_path)
    assert _sha(source) == before and sorted(p.name for p in tmp_path.iterdir()) == ["kernels.db"]


def test_publish_of_a_missing_database_says_how_to_make_one(tmp_path):
    with pytest.raises(NoDatabase, match="no such database"):
        publish.publish(tmp_path / "none.db", tmp_path / "out")
    result = CliRunner().invoke(cli, ["publish", str(tmp_path / "out"), "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and result.output.count("\n") == 1


# --------------------------------------------------------------------------- pull


def test_pull_installs_the_published_database(site, published, tmp_path):
    url, served = site
    target = tmp_path / "here" / "kernels.db"
    result = CliRunner().invoke(cli, ["pull", url + "/", "--db", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == (published / "fixture.db").read_bytes()
    # No part, no temporary file; the table counts newer than the database: served at once, unwritten.
    assert sorted(p.name for p in target.parent.iterdir()) == ["kernels.db", "kernels.inspect.json"]
    assert not serve.stale(target)
    served_db = CliRunner().invoke(cli, ["serve", str(target), "--prepare-only"])
    assert served_db.exit_code == 0 and target.read_bytes() == (published / "fixture.db").read_bytes()
    assert json.loads((target.parent / "kernels.inspect.json").read_text())["kernels"]["tables"][
        "builds"
    ] == {"count": 1}
    assert served.requests == [
        ("/manifest.json", None),
        ("/fixture.db.zst", None),
        ("/fixture.inspect.json", None),
    ]
    conn = db.open_readonly(target)
    assert conn.execute("SELECT name FROM builds").fetchall() == [("fixture",)]
    # Pulled again (by the manifest's own URL): nothing is downloaded.
    again = CliRunner().invoke(cli, ["pull", url + "/manifest.json", "--db", str(target)])
    assert again.exit_code == 0 and "already the published database" in again.output
    assert served.requests[3:] == [("/manifest.json", None)]
    # Its table counts lost: they come back, so that serving it still writes nothing.
    serve.inspect_path(target).unlink()
    pull.pull(url, target)
    assert served.requests[4:] == [("/manifest.json", None), ("/fixture.inspect.json", None)]
    assert not serve.stale(target)


def test_pull_from_a_local_directory(published, tmp_path):
    """A publication on disk (a mounted share, a CI artefact): the directory or its manifest."""
    for source in (str(published), str(published / "manifest.json")):
        target = tmp_path / source.rsplit("/", 1)[-1] / "kernels.db"
        done = pull.pull(source, target)
        assert not done.up_to_date and target.read_bytes() == (published / "fixture.db").read_bytes()


def test_pull_resumes_a_transfer_cut_off_midway(site, published, tmp_path):
    url, served = site
    size = (published / "fixture.db.zst").stat().st_size
    served.cut_at = size // 2
    target = tmp_path / "kernels.db"
    result = CliRunner().invoke(cli, ["pull", url, "--db", str(target)])
    assert result.exit_code == 1
    assert f"transfer cut off at {size // 2} of {size} bytes" in result.output
    assert "run pull again to resume" in result.output and result.output.count("\n") <= 2  # bar + line
    assert not target.exists()
    (part,) = tmp_path.glob("kernels.db.*.zst.part")
    assert part.stat().st_size == size // 2
    # Each of the pull's attempts asked for the rest: Range from the cut.
    assert [r for p, r in served.requests if p.endswith(".zst")] == [None] + [f"bytes={size // 2}-"] * (
        pull.ATTEMPTS - 1
    )
    served.cut_at, served.requests[:] = None, []
    done = pull.pull(url, target)
    assert (done.resumed_from, done.downloaded) == (size // 2, size - size // 2)
    assert served.requests == [
        ("/manifest.json", None),
        ("/fixture.db.zst", f"bytes={size // 2}-"),
        ("/fixture.inspect.json", None),
    ]
    assert target.read_bytes() == (published / "fixture.db").read_bytes()
    assert not part.exists()


def test_pull_starts_over_when_the_server_ignores_ranges(site, published, tmp_path):
    url, served = site
    size = (published / "fixture.db.zst").stat().st_size
    target = tmp_path / "kernels.db"
    part = (
        tmp_path
        / f"kernels.db.{json.loads((published / 'manifest.json').read_text())['compressed']['sha256'][:12]}.zst.part"
    )
    part.write_bytes((published / "fixture.db.zst").read_bytes()[:100])
    served.ranges = False
    done = pull.pull(url, target)
    assert done.downloaded == size  # the 200 answer replaced the part
    assert target.read_bytes() == (published / "fixture.db").read_bytes()


def test_pull_refuses_a_corrupted_file_and_keeps_the_old_database(site, published, tmp_path):
    url, served = site
    spoilt = served.root / "fixture.db.zst"
    data = bytearray(spoilt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    spoilt.write_bytes(bytes(data))
    target = tmp_path / "kernels.db"
    target.write_bytes(b"the old database")
    (tmp_path / "kernels.db-wal").write_bytes(b"its wal")
    with pytest.raises(CorruptDownload, match="does not match the manifest's sha256"):
        pull.pull(url, target, replace=True)
    assert target.read_bytes() == b"the old database"
    assert _leftovers(tmp_path) == ["kernels.db", "kernels.db-wal"]  # the bad download was deleted
    result = CliRunner().invoke(cli, ["pull", url, "--db", str(target), "--replace"])
    assert result.exit_code == 1 and "run pull again" in result.output


def test_pull_refuses_an_inconsistent_publication(site, published, tmp_path):
    """The .zst is whole (its sha256 matches) but is not the database the manifest describes."""
    url, served = site
    manifest = json.loads((served.root / "manifest.json").read_text())
    manifest["database"]["sha256"] = "0" * 64
    (served.root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptDownload, match="publish it again"):
        pull.pull(url, tmp_path / "kernels.db")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("format", publish.FORMAT + 1, f"published in artefact format {publish.FORMAT + 1}"),
        ("schema_version", db.SCHEMA_VERSION + 1, f"has schema {db.SCHEMA_VERSION + 1}, newer"),
    ],
)
def test_pull_refuses_a_format_it_cannot_read(site, tmp_path, key, value, message):
    url, served = site
    manifest = json.loads((served.root / "manifest.json").read_text())
    manifest[key] = value
    (served.root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UnreadableFormat, match=message):
        pull.pull(url, tmp_path / "kernels.db")
    result = CliRunner().invoke(cli, ["pull", url, "--db", str(tmp_path / "kernels.db")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "upgrade kernsurf" in result.output
    assert [p for p, _ in served.requests] == ["/manifest.json"] * 2  # refused before any download
    assert _leftovers(tmp_path) == []


def test_pull_keeps_a_database_it_did_not_publish(site, published, tmp_path):
    url, _ = site
    target = tmp_path / "kernels.db"
    target.write_bytes(b"built here over hours")
    with pytest.raises(DatabaseExists, match="give --replace"):
        pull.pull(url, target)
    assert target.read_bytes() == b"built here over hours"
    (tmp_path / "kernels.db-wal").write_bytes(b"a stale wal")
    pull.pull(url, target, replace=True)
    assert target.read_bytes() == (published / "fixture.db").read_bytes()
    assert not (tmp_path / "kernels.db-wal").exists()  # it would have been replayed into the new file


def test_pull_of_something_else_says_what_is_wrong(site, tmp_path):
    url, served = site
    with pytest.raises(BadArtefact, match="HTTP 404"):
        pull.pull(url + "/elsewhere/", tmp_path / "kernels.db")
    (served.root / "other.json").write_text('{"name": "not a manifest"}')
    with pytest.raises(BadArtefact, match="not a kernsurf manifest"):
        pull.pull(url + "/other.json", tmp_path / "kernels.db")
    (served.root / "manifest.json").write_text(
        (served.root / "manifest.json").read_text().replace("fixture.db.zst", "gone.zst")
    )
    with pytest.raises(BadArtefact, match="lists a file it does not hold"):
        pull.pull(url, tmp_path / "kernels.db")


# --------------------------------------------------------------------------- the GitHub action


def _action_steps() -> list[dict]:
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    return action["runs"]["steps"]


def _github_env(value: str, inputs: dict[str, str]) -> str:
    """`${{ inputs.NAME }}` substituted as GitHub does before the step runs."""
    return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: inputs[m.group(1)], value)


def _run_action(inputs: dict[str, str], workspace: Path, path: str) -> tuple[int, str, str]:
    """Run the action's steps as GitHub's runner would (bash -eo pipefail, the step's env,
    GITHUB_STEP_SUMMARY, GITHUB_PATH): the first failing step's status, its output, the summary."""
    import yaml

    declared = yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]
    inputs = {name: str(spec.get("default", "")) for name, spec in declared.items()} | inputs
    summary, github_path = workspace / "summary.md", workspace / "github_path"
    env = {
        "PATH": path,
        "HOME": str(workspace),
        "RUNNER_TEMP": str(workspace / "runner_temp"),
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_PATH": str(github_path),
        "GITHUB_WORKSPACE": str(workspace),
    }
    output = ""
    for step in _action_steps():
        assert step["shell"] == "bash"
        step_env = env | {k: _github_env(str(v), inputs) for k, v in step.get("env", {}).items()}
        assert "${{" not in step["run"], "inputs reach the scripts through env only (no injection)"
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workspace,
            env=step_env,
            capture_output=True,
            text=True,
        )
        output += proc.stdout + proc.stderr
        if github_path.exists():
            env["PATH"] = os.pathsep.join([*github_path.read_text().split(), env["PATH"]])
        if proc.returncode != 0:
            return proc.returncode, output, summary.read_text() if summary.exists() else ""
    return 0, output, summary.read_text() if summary.exists() else ""


@pytest.fixture
def bpf_object(tmp_path) -> Path:
    return compile_bpf(FIXTURES / "check" / "hooks.bpf.c", tmp_path / "hooks.bpf.o")


def test_the_action_pulls_checks_writes_the_summary_and_fails_by_fail_on(site, bpf_object, tmp_path):
    url, served = site
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    shutil.copy(bpf_object, workspace / "hooks.bpf.o")
    path = os.pathsep.join([str(Path(os.sys.executable).parent), "/usr/bin", "/bin"])
    inputs = {"database": url + "/manifest.json", "objects": "*.bpf.o", "install": "none"}
    status, output, summary = _run_action(inputs, workspace, path)
    # hooks.bpf.c on the fixture has ✗ cells (tests/test_check.py's EXPECTED_HOOKS: kprobe:fully_inlined).
    assert status == 2, output
    assert "kprobe:fully_inlined" in summary and "| ✗" in summary.replace("|✗", "| ✗")
    assert (workspace / "kernels.db").exists()
    # A dependency that holds on the fixture: the step passes, the database is not downloaded again.
    status, output, summary = _run_action(
        inputs | {"objects": "", "args": "--dep kprobe:entry_a"}, workspace, path
    )
    assert status == 0, output
    assert "already the published database" in output
    assert "kprobe:entry_a" in summary.split("kprobe:fully_inlined")[-1]  # appended after the first table
    assert [p for p, _ in served.requests].count("/fixture.db.zst") == 1


@pytest.mark.slow
@pytest.mark.network
def test_the_action_installs_kernsurf_from_its_own_checkout(tmp_path):
    """The install step as the runner runs it: a venv in RUNNER_TEMP, pip install of the
    action's directory (a copy of the sources; PIP_NO_DEPS keeps it to kernsurf itself),
    its bin on GITHUB_PATH for the next steps. ~16 s: pip fetches setuptools from PyPI."""
    action = copy_sources(tmp_path / "action")
    install = _action_steps()[0]
    env = dict(os.environ, PIP_NO_DEPS="1", RUNNER_TEMP=str(tmp_path / "runner"))
    env |= {"GITHUB_ACTION_PATH": str(action), "GITHUB_PATH": str(tmp_path / "github_path"), "INSTALL": ""}
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", install["run"]],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 and "pypi" in proc.stderr.lower():
        pytest.skip(f"PyPI unreachable: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr
    (line,) = (tmp_path / "github_path").read_text().split()
    assert (Path(line) / "kernsurf").is_file()


def test_docs_ci_uses_the_action_as_declared_and_its_pull_line_runs(site, published, tmp_path):
    """docs/ci.md: the action's example passes only inputs action.yml declares (and every
    required one); the hand-written workflow's `kernsurf pull` line runs against the loopback site."""
    import shlex

    import yaml

    text = (ROOT / "docs" / "ci.md").read_text()
    blocks = [yaml.safe_load(block.split("```", 1)[0]) for block in text.split("```yaml\n")[1:]]
    declared = yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]
    (uses,) = [
        s for b in blocks for s in b["jobs"]["check"]["steps"] if s.get("uses", "").endswith("/kernsurf@main")
    ]
    assert set(uses["with"]) <= set(declared)
    assert {name for name, spec in declared.items() if spec.get("required")} <= set(uses["with"])
    (line,) = [
        line.strip()
        for b in blocks
        for s in b["jobs"]["check"]["steps"]
        for line in s.get("run", "").splitlines()
        if line.strip().startswith("kernsurf pull ")
    ]
    url, _ = site
    words = [url + "/manifest.json" if w.endswith("manifest.json") else w for w in shlex.split(line)]
    words = [str(tmp_path / "kernels.db") if w == "kernels.db" else w for w in words]
    result = CliRunner().invoke(cli, words[1:])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kernels.db").read_bytes() == (published / "fixture.db").read_bytes()
