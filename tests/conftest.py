"""Fixtures shared by several test files (their builders are in tests.support),
and the check that a test using a costly fixture carries that fixture's marks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import kernel, mirror
from tests.support.modules import module_builds
from tests.support.programs import compile_program
from tests.support.tools import build

#: fixture -> the marks every test using it carries (pyproject.toml describes them).
COSTS = {
    "real_kernel": {"real_kernel"},
    "kernel_db": {"real_kernel", "slow"},  # ingests the 633 MB vmlinux once a session
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail the collection when a test uses a costly fixture without its marks,
    so that `-m 'not slow'` and `-m 'not real_kernel'` leave out all of them."""
    missing = [
        f"{item.nodeid}: @pytest.mark.{mark}"
        for item in items
        for fixture, marks in COSTS.items()
        if fixture in getattr(item, "fixturenames", ())
        for mark in sorted(marks)
        if item.get_closest_marker(mark) is None
    ]
    if missing:
        raise pytest.UsageError("tests without the marks of their fixtures:\n" + "\n".join(missing))


# --------------------------------------------------------------------------- compiled fixtures


@pytest.fixture(scope="session")
def program(tmp_path_factory) -> Path:
    """The fixture program, x86-64 DWARF 5."""
    return compile_program(tmp_path_factory.mktemp("program"), "dwarf5")


@pytest.fixture(scope="session")
def program_db(tmp_path_factory, program) -> Path:
    """A database holding the fixture program as one build."""
    from ingest import pipeline

    db = tmp_path_factory.mktemp("db") / "fixture.db"
    pipeline.ingest(program, db, pipeline.Identity(label="fixture"), jobs=1)
    return db


@pytest.fixture(scope="session")
def elves(tmp_path_factory):
    """make(n) -> a small ELF with DWARF whose build-id is n: distinct builds for the database."""
    work = tmp_path_factory.mktemp("elves")
    (work / "k.c").write_text("int helper(int x) { return x * 3; }\nint main(void) { return helper(2); }\n")
    build(["gcc", "-g", "-O1", "-c", "k.c", "-o", "k.o"], cwd=work)

    def make(n: int) -> Path:
        out = work / f"vmlinux-{n}"
        if not out.exists():
            build(["gcc", f"-Wl,--build-id=0x{n:040x}", "k.o", "-o", out.name], cwd=work)
        return out

    return make


@pytest.fixture(scope="module")
def module_db(tmp_path_factory) -> Path:
    """Builds "A" (the fixture program, DWARF 4, with modules kernel/alpha.ko and m/beta.ko)
    and "B" (DWARF 5, with m/beta.ko only)."""
    from ingest import pipeline

    tmp = tmp_path_factory.mktemp("frontend-modules")
    path = tmp / "kernels.db"
    for label, program, tree in module_builds(tmp):
        pipeline.ingest(program, path, pipeline.Identity(label=label), modules=tree)
    return path


# --------------------------------------------------------------------------- the fake Debian mirror


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A FakeMirror served on loopback, the fetcher pointed at it and at a private cache."""
    with mirror.serving() as served:
        monkeypatch.setenv("KERNSURF_DEBIAN_MIRROR", served.main)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        yield served


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "xdg" / "kernsurf"


@pytest.fixture(scope="session")
def kos(tmp_path_factory) -> dict[str, bytes]:
    """mirror.MODULE_SOURCES compiled, by path below .../kernel/."""
    return mirror.compile_kos(tmp_path_factory.mktemp("kos"))


# --------------------------------------------------------------------------- the real kernel


@pytest.fixture(scope="session")
def real_kernel() -> Path:
    """The cached Debian 6.1.0-56 amd64 vmlinux (make fetch-test-kernel)."""
    if not kernel.REAL_KERNEL.exists():
        pytest.skip(f"no cached kernel at {kernel.REAL_KERNEL}; run `make fetch-test-kernel`")
    return kernel.REAL_KERNEL


@pytest.fixture(scope="session")
def kernel_db(tmp_path_factory, real_kernel) -> Path:
    """A database holding the real 6.1.0-56 kernel (with its config, when cached), ingested once."""
    from ingest import pipeline

    db = tmp_path_factory.mktemp("real") / "kernel.db"
    config = real_kernel.parent / "config"
    pipeline.ingest(
        real_kernel,
        db,
        pipeline.Identity(distro="debian", version="6.1.192-2"),
        config=config if config.exists() else None,
    )
    return db
