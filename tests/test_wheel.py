"""The wheel alone can create and serve a database: build it from a copy of
the sources, install it into a fresh virtualenv (no checkout on its path),
ingest the fixture program with its `kernsurf`, serve the result with
`kernsurf serve` and fetch a function page over HTTP."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
import urllib.request
import zipfile
from pathlib import Path

import pytest

from ingest import resources
from tests.support.checkout import copy_sources
from tests.support.site import free_port, served


def build_wheel(dest: Path) -> Path:
    """The wheel of a copy of the sources (the checkout gets no build/ directory)."""
    src = dest / "src"
    src.mkdir()
    copy_sources(src)
    # Offline when the test extra's setuptools and wheel are installed; else pip fetches them.
    offline = all(importlib.util.find_spec(name) for name in ("setuptools", "wheel"))
    isolation = ["--no-build-isolation"] if offline else []
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            *isolation,
            "-w",
            str(dest / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (dest / "dist").glob("kernsurf-*.whl")
    return wheel


def fresh_venv(dest: Path, wheel: Path) -> Path:
    """A virtualenv with the wheel installed; its dependencies come from this
    interpreter's site-packages through a .pth line (fast, offline), which
    adds no checkout: the editable install's finder is not run from there."""
    venv = dest / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "kernsurf-test-deps.pth").write_text("".join(f"{p}\n" for p in sorted(deps)))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


@pytest.mark.slow
def test_wheel_ingests_and_serves(tmp_path, program):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for packaged in resources.PACKAGED.values():
        assert any(n == f"ingest/{packaged}" or n.startswith(f"ingest/{packaged}/") for n in names), packaged
    assert "ingest/_datasette/templates/pages/function/{name}.html" in names

    venv = fresh_venv(tmp_path, wheel)
    work = tmp_path / "work"  # neither the checkout nor the sources on the path
    work.mkdir()
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import ingest.resources as r; print(r.metadata_path())"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(venv)), where

    kernsurf = str(venv / "bin" / "kernsurf")
    ingest = subprocess.run(
        [kernsurf, "ingest", str(program), "--db", "kernels.db", "--label", "wheel", "-j", "1"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stdout.startswith("wheel: ")

    port = free_port()
    log = tmp_path / "serve.log"
    with served([kernsurf, "serve", "kernels.db", "--port", str(port)], port, log, cwd=work) as base:
        status, page = get(base + "/function/entry_a")
        assert status == 200 and "entry_a" in page and "wheel" in page
        status, search = get(base + "/search?q=entry")
        assert status == 200 and "entry_b" in search
    assert "search index:" in log.read_text()
    assert (work / "kernels.inspect.json").exists()
