"""`kernsurf fetch debuginfod`: against a real debuginfod server (Debian package
debuginfod) started on loopback over a directory holding the compiled fixture
program (the "vmlinux") and a module-like object linked with a build-id; and
against small loopback servers that break mid-transfer or serve the wrong file."""

from __future__ import annotations

import http.server
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.archive import debuginfod
from ingest.cli import cli
from tests.support.site import free_port
from tests.support.tools import build, require

MODULE_C = "struct mod_state { int a; long b; };\nint mod_open(struct mod_state *s) { return s->a; }\n"


def _build_id(path: Path) -> str:
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True, check=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)


def _note(build_id: str) -> bytes:
    desc = bytes.fromhex(build_id)
    return struct.pack("<III", 4, len(desc), 3) + b"GNU\0" + desc + b"\0" * (-len(desc) % 4)


@pytest.fixture(scope="module")
def served(tmp_path_factory, program) -> Iterator[tuple[str, Path, Path]]:
    """(server URL, the served vmlinux, the served module) of a debuginfod on loopback."""
    require("debuginfod", "readelf")
    tmp = tmp_path_factory.mktemp("debuginfod")
    files = tmp / "files"
    files.mkdir()
    vmlinux = files / "vmlinux"
    shutil.copy(program, vmlinux)
    (tmp / "mymod.c").write_text(MODULE_C)
    build(["gcc", "-g", "-c", "mymod.c", "-o", "mymod.o"], cwd=tmp)
    module = files / "mymod.ko"
    build(["ld", "-r", "--build-id", tmp / "mymod.o", "-o", module])
    port = free_port()
    log = open(tmp / "debuginfod.log", "wb")
    proc = subprocess.Popen(
        [
            "debuginfod",
            "-F",
            "-p",
            str(port),
            "-d",
            str(tmp / "index.sqlite"),
            "-t",
            "0",
            "-g",
            "0",
            str(files),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # until both files are indexed
            try:
                for f in (vmlinux, module):
                    urllib.request.urlopen(f"{url}/buildid/{_build_id(f)}/debuginfo", timeout=5).close()
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(
                        f"debuginfod did not serve the fixture: {(tmp / 'debuginfod.log').read_text()[-500:]}"
                    )
                time.sleep(0.3)
        yield url, vmlinux, module
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "kernsurf"


def test_fetch_by_build_id_from_the_second_server(served, cache, monkeypatch):
    url, vmlinux, _ = served
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: the next server is asked
    monkeypatch.setenv("DEBUGINFOD_URLS", f"{dead} {url}")
    build_id = _build_id(vmlinux)
    result = CliRunner().invoke(cli, ["fetch", "debuginfod", build_id])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path == cache / "debuginfod" / build_id / "vmlinux"
    assert path.read_bytes() == vmlinux.read_bytes()
    again = CliRunner().invoke(cli, ["fetch", "debuginfod", build_id.upper()])
    assert again.exit_code == 0 and "already in the cache" in again.output
    assert not list(cache.rglob("*.part"))


def test_running_fetches_loaded_modules_and_config(served, cache, tmp_path):
    url, vmlinux, module = served
    root = tmp_path / "root"
    (root / "sys/kernel").mkdir(parents=True)
    (root / "sys/kernel/notes").write_bytes(_note(_build_id(vmlinux)))
    for name, build_id in (("mymod", _build_id(module)), ("gone", "ab" * 20)):
        (root / f"sys/module/{name}/notes").mkdir(parents=True)
        (root / f"sys/module/{name}/notes/.note.gnu.build-id").write_bytes(_note(build_id))
    (root / "proc").mkdir()
    (root / "proc/version").write_text("Linux version 6.9.0-fixture (b@h) (gcc 12) #1 SMP\n")
    (root / "boot").mkdir()
    (root / "boot/config-6.9.0-fixture").write_text("CONFIG_BPF_SYSCALL=y\n")
    result = CliRunner().invoke(cli, ["fetch", "debuginfod", "--running", "--root", str(root), "--url", url])
    assert result.exit_code == 0, result.output
    entry = cache / "debuginfod" / _build_id(vmlinux)
    assert "no server has the debug file of 1 module(s): gone" in result.output
    assert (entry / "config").read_text() == "CONFIG_BPF_SYSCALL=y\n"
    import zstandard

    assert zstandard.decompress((entry / "modules/mymod.ko.zst").read_bytes()) == module.read_bytes()
    assert sorted(p.name for p in (entry / "modules").iterdir()) == ["mymod.ko.zst"]


def test_modules_named_by_hand(served, cache):
    url, vmlinux, module = served
    result = CliRunner().invoke(
        cli,
        ["fetch", "debuginfod", _build_id(vmlinux), "--url", url, "--module", f"mymod={_build_id(module)}"],
    )
    assert result.exit_code == 0, result.output
    import zstandard

    entry = cache / "debuginfod" / _build_id(vmlinux)
    assert zstandard.decompress((entry / "modules/mymod.ko.zst").read_bytes()) == module.read_bytes()
    bad = CliRunner().invoke(
        cli, ["fetch", "debuginfod", _build_id(vmlinux), "--url", url, "--module", "mymod"]
    )
    assert bad.exit_code == 1 and "give NAME=BUILD-ID" in bad.output


def test_unknown_build_id_is_one_line_and_leaves_nothing(served, cache):
    url, _, _ = served
    result = CliRunner().invoke(cli, ["fetch", "debuginfod", "cd" * 20, "--url", url])
    assert result.exit_code == 1
    assert (
        result.output.count("\n") == 1
        and "no server gave it" in result.output
        and "not found" in result.output
    )
    assert not (cache / "debuginfod" / ("cd" * 20)).exists()


def test_not_a_build_id(cache):
    result = CliRunner().invoke(cli, ["fetch", "debuginfod", "vmlinux", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "is not a build-id" in result.output


def test_no_servers(cache, monkeypatch):
    monkeypatch.delenv("DEBUGINFOD_URLS", raising=False)
    result = CliRunner().invoke(cli, ["fetch", "debuginfod", "ab" * 20])
    assert result.exit_code == 1 and "DEBUGINFOD_URLS" in result.output


# --------------------------------------------------------------------------- broken servers


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Serves `body` for any build-id; the first `breaks` answers stop halfway
    and close the connection; honours Range when `ranges`."""

    body = b""
    breaks = 0
    ranges = True
    requests: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802
        cls = type(self)
        start = 0
        wanted = self.headers.get("Range")
        cls.requests.append(wanted)
        if wanted and cls.ranges:
            start = int(wanted.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(cls.body) - 1}/{len(cls.body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(cls.body) - start))
        self.end_headers()
        if cls.breaks > 0:
            cls.breaks -= 1
            self.wfile.write(cls.body[start : start + (len(cls.body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(cls.body[start:])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky(program) -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Handler", (_Flaky,), {"body": Path(program).read_bytes(), "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("ranges", [True, False])
def test_a_broken_transfer_is_resumed(flaky, cache, program, ranges):
    url, handler = flaky
    handler.breaks, handler.ranges = 2, ranges
    build_id = _build_id(Path(program))
    image = debuginfod.fetch(build_id, [url])
    assert image.path.read_bytes() == Path(program).read_bytes()
    assert handler.requests[0] is None and handler.requests[1] is not None  # the second asked for the rest
    assert len(handler.requests) == 3


def test_a_server_that_always_breaks_leaves_nothing(flaky, cache, program):
    url, handler = flaky
    handler.breaks = 99
    build_id = _build_id(Path(program))
    result = CliRunner().invoke(cli, ["fetch", "debuginfod", build_id, "--url", url])
    last = result.stderr.splitlines()[-1]  # after the progress bar's label
    assert result.exit_code == 1 and last.startswith("Error: ") and "download broke" in last
    assert not (cache / "debuginfod" / build_id).exists()


def test_a_file_with_another_build_id_is_refused(flaky, cache):
    url, _ = flaky
    result = CliRunner().invoke(cli, ["fetch", "debuginfod", "ef" * 20, "--url", url])
    assert result.exit_code == 1 and "served a file whose build-id is" in result.output
    assert not (cache / "debuginfod" / ("ef" * 20)).exists()


@pytest.mark.real_kernel
def test_the_real_vmlinux_through_a_real_debuginfod(tmp_path, cache, real_kernel):
    """The cached Debian 6.1.0-56 vmlinux (633 MB) served by debuginfod and fetched by its build-id."""
    require("debuginfod", "readelf")
    files = tmp_path / "files"
    files.mkdir()
    (files / "vmlinux").symlink_to(real_kernel)
    port = free_port()
    proc = subprocess.Popen(
        [
            "debuginfod",
            "-L",
            "-F",
            "-p",
            str(port),
            "-d",
            str(tmp_path / "index.sqlite"),
            "-t",
            "0",
            "-g",
            "0",
        ]
        + ["--disable-source-scan", str(files)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    build_id = _build_id(real_kernel)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                image = debuginfod.fetch(build_id, [url])
                break
            except debuginfod.NotOnServers:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("debuginfod did not index the real vmlinux in 10 minutes")
                time.sleep(2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert image.path.stat().st_size == real_kernel.stat().st_size
    assert _build_id(image.path) == build_id
