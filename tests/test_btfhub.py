"""BTFHub archives: `kernsurf ingest FILE.btf.tar.xz` and a walk over a BTFHub
tree (`<distro>/<release>/<arch>/<uname -r>.btf.tar.xz`). The blobs are real
BTF: pahole's of the compiled fixture program, and gcc -gbtf's of a C file."""

from __future__ import annotations

import io
import lzma
import shutil
import sqlite3
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from elftools.elf.elffile import ELFFile

from ingest.cli import cli
from ingest.origins import btfhub
from tests.support.tools import build

OTHER_C = "struct other { int a; long b; };\nint other_fn(struct other *o) { return o->a; }\n"


def _pack(path: Path, member: str, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:xz") as tar:
        info = tarfile.TarInfo(f"./{member}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def blobs(tmp_path_factory, program) -> tuple[bytes, bytes]:
    """Two different real BTF blobs."""
    tmp = tmp_path_factory.mktemp("btfhub")
    elf = tmp / "prog"
    shutil.copy(program, elf)
    build(["pahole", "-J", elf])
    (tmp / "other.c").write_text(OTHER_C)
    build(["gcc", "-gbtf", "-c", "other.c", "-o", "other.o"], cwd=tmp)
    out = []
    for obj in (elf, tmp / "other.o"):
        with open(obj, "rb") as f:
            out.append(ELFFile(f).get_section_by_name(".BTF").data())
    return out[0], out[1]


@pytest.fixture
def tree(tmp_path, blobs) -> Path:
    root = tmp_path / "btfhub-archive"
    _pack(root / "ubuntu/20.04/x86_64/5.4.0-91-generic.btf.tar.xz", "5.4.0-91-generic.btf", blobs[0])
    _pack(
        root / "fedora/34/arm64/5.11.12-300.fc34.aarch64.btf.tar.xz", "5.11.12-300.fc34.aarch64.btf", blobs[1]
    )
    return root


def _builds(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT name, distro, release, arch, flavor, has_dwarf, has_btf, has_symtab FROM builds ORDER BY name"
        ).fetchall()
    finally:
        conn.close()


def test_a_tree_is_walked_with_identity_from_paths(tmp_path, tree):
    db = tmp_path / "k.db"
    result = CliRunner().invoke(cli, ["ingest", str(tree), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert _builds(db) == [
        ("5.11.12-300.fc34.aarch64", "fedora", "5.11.12-300.fc34.aarch64", "arm64", None, 0, 1, 0),
        ("5.4.0-91-generic", "ubuntu", "5.4.0-91-generic", "amd64", "generic", 0, 1, 0),
    ]
    conn = sqlite3.connect(db)
    release_source = conn.execute(
        "SELECT s.source FROM build_sources s JOIN builds b ON b.id = s.build_id"
        " WHERE b.name = '5.4.0-91-generic' AND s.fact = 'release'"
    ).fetchone()
    assert release_source == ("BTFHub ubuntu/20.04",)
    # The fixture program's functions and struct came through its BTF.
    assert (
        conn.execute(
            "SELECT count(*) FROM function_status WHERE build = '5.4.0-91-generic' AND btf_func = 1"
        ).fetchone()[0]
        > 0
    )
    assert conn.execute(
        "SELECT count(*) FROM types t JOIN names n ON n.id = t.name_id WHERE n.name = 'other'"
    ).fetchone() == (1,)
    conn.close()
    again = CliRunner().invoke(cli, ["ingest", str(tree), "--db", str(db)])
    assert again.exit_code == 0 and again.output.count("already in") == 2


def test_one_archive_file(tmp_path, tree):
    db = tmp_path / "k.db"
    one = tree / "ubuntu/20.04/x86_64/5.4.0-91-generic.btf.tar.xz"
    result = CliRunner().invoke(cli, ["ingest", str(one), "--db", str(db), "--label", "focal"])
    assert result.exit_code == 0, result.output
    assert _builds(db)[0][:4] == ("focal", "ubuntu", "5.4.0-91-generic", "amd64")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, blob: p.write_bytes(b"not xz at all"), "not an xz-compressed tar archive"),
        (lambda p, blob: p.write_bytes(lzma.compress(b"x" * 1000)), "not an xz-compressed tar archive"),
        (lambda p, blob: _pack(p, "README", b"hello"), "no .btf file inside"),
        (lambda p, blob: _pack(p, "5.4.0-1.btf", b"\x7fELF" + blob), "its .btf member is not BTF"),
        (lambda p, blob: _pack(p, "5.4.0-1.btf", blob[: len(blob) // 2]), "bad BTF"),
    ],
)
def test_bad_archives_are_one_line_errors(tmp_path, blobs, make, message):
    path = tmp_path / "5.4.0-1.btf.tar.xz"
    make(path, blobs[0])
    db = tmp_path / "k.db"
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", str(db)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and message in result.output, result.output
    assert not db.exists()


def test_a_bad_archive_in_a_tree_does_not_stop_the_walk(tmp_path, tree):
    (tree / "centos/8/x86_64").mkdir(parents=True)
    (tree / "centos/8/x86_64/4.18.0-80.el8.x86_64.btf.tar.xz").write_bytes(b"truncated")
    db = tmp_path / "k.db"
    result = CliRunner().invoke(cli, ["ingest", str(tree), "--db", str(db)])
    assert result.exit_code == 1
    assert "error: " in result.output and "1 archive(s)" in result.output
    assert len(_builds(db)) == 2


def test_place_without_a_layout():
    assert btfhub.place(Path("/tmp/5.4.0-91-generic.btf.tar.xz")) == btfhub.ArchivePlace(
        distro=None, distro_release=None, arch=None, release="5.4.0-91-generic"
    )
