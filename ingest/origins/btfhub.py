"""BTFHub archives: `<distro>/<distro release>/<arch>/<uname -r>.btf.tar.xz`,
each an xz tarball holding one raw BTF blob `<uname -r>.btf`.

Such a build is BTF-only (docs/concepts.md#not-recorded): types, prototypes,
raw tracepoints, LSM hooks and kfuncs, no symbols. Its identity comes from the
path: distro, arch (BTFHub's `x86_64` is `amd64`) and release; the distro
release is recorded as the source of the release in `build_sources`. BTFHub
keeps no build-id, so the BTF's sha256 keys the build.
"""

from __future__ import annotations

import io
import lzma
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from ingest.errors import IngestError
from ingest.model import Build
from ingest.origins.running import ARCHES
from ingest.pipeline import Identity, IngestResult, collector_off, read_opened, store

SUFFIX = ".btf.tar.xz"
#: More than any kernel's BTF (vmlinux 6.x: ~6 MB): a member larger is not one.
_MAX_BTF = 256 << 20


class ArchivePlace(NamedTuple):
    """What an archive's path says."""

    distro: str | None
    distro_release: str | None
    arch: str | None
    release: str


def is_archive(path: Path) -> bool:
    """Whether `path` names a BTFHub archive file."""
    return path.name.endswith(SUFFIX)


def place(path: Path) -> ArchivePlace:
    """Identity from the path: `.../ubuntu/20.04/x86_64/5.4.0-91-generic.btf.tar.xz`
    (distro, release and arch only when the parent directory is an arch)."""
    release = path.name[: -len(SUFFIX)]
    parents = path.resolve().parents
    if len(parents) >= 3 and parents[0].name in ARCHES:
        return ArchivePlace(parents[2].name, parents[1].name, ARCHES[parents[0].name], release)
    return ArchivePlace(None, None, None, release)


def read_archive(path: Path) -> bytes:
    """The BTF blob inside a .btf.tar.xz; IngestError when it holds none."""
    try:
        with tarfile.open(path, "r:xz") as tar:
            member = next((m for m in tar if m.isfile() and m.name.endswith(".btf")), None)
            if member is None:
                raise IngestError(f"{path}: no .btf file inside; a BTFHub archive holds <uname -r>.btf")
            if member.size > _MAX_BTF:
                raise IngestError(f"{path}: {member.name} is {member.size} bytes, too large for a BTF blob")
            f = tar.extractfile(member)
            assert f is not None  # a regular file
            return f.read()
    except (tarfile.TarError, lzma.LZMAError, EOFError) as exc:
        raise IngestError(f"{path}: not an xz-compressed tar archive ({exc})") from None
    except OSError as exc:
        raise IngestError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_build(path: Path, identity: Identity) -> Build:
    """One BTFHub archive as a BTF-only build; `identity` overrides what the path says."""
    where = place(path)
    data = read_archive(path)
    if data[:2] not in (b"\x9f\xeb", b"\xeb\x9f"):
        raise IngestError(f"{path}: its .btf member is not BTF (no BTF magic)")
    release = identity.release or where.release
    build = read_opened(
        path,
        io.BytesIO(data),
        Identity(
            distro=identity.distro or where.distro,
            version=identity.version,
            release=release,
            arch=identity.arch or where.arch,
            flavor=identity.flavor,
            label=identity.label,
        ),
    )
    origin = f"BTFHub {where.distro}/{where.distro_release}" if where.distro else "BTFHub archive name"
    build.sources.update(release=origin, types=f"BTFHub {path.name}", prototypes=f"BTFHub {path.name}")
    return build


def ingest_archive(
    path: Path, db_path: Path, identity: Identity | None = None, replace: bool = False
) -> IngestResult:
    """Read one BTFHub archive and store it in `db_path` as a build."""
    start = time.perf_counter()
    identity = identity or Identity()
    with collector_off():
        build = read_build(path, identity)
        return store(build, db_path, start, replace=replace, label=identity.label)


def archives(tree: Path) -> list[Path]:
    """Every .btf.tar.xz below `tree`, sorted."""
    return sorted(p for p in tree.rglob(f"*{SUFFIX}") if p.is_file())


class WalkResult(NamedTuple):
    """One archive of a walk: what it gave, or why not."""

    path: Path
    result: IngestResult | None
    error: str | None


def ingest_tree(
    tree: Path, db_path: Path, replace: bool = False, progress: Callable[[int, int], None] | None = None
) -> Iterator[WalkResult]:
    """Ingest every archive of a BTFHub tree, one at a time; a bad one is
    reported and the walk goes on."""
    found = archives(tree)
    if not found:
        raise IngestError(f"{tree}: no {SUFFIX} files below it (a BTFHub archive tree?)")
    for k, path in enumerate(found):
        try:
            yield WalkResult(path, ingest_archive(path, db_path, replace=replace), None)
        except IngestError as exc:
            yield WalkResult(path, None, str(exc))
        if progress is not None:
            progress(k + 1, len(found))
