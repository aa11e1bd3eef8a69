"""Debug images by build-id from debuginfod servers (`kernsurf fetch debuginfod`).

The protocol is plain HTTP: `GET <server>/buildid/<hex>/debuginfo` answers the
debug file whose GNU build-id is <hex> (404 when the server has none). The
servers are `$DEBUGINFOD_URLS` (space-separated), asked in order until one
has the file. A transfer that breaks is resumed where it stopped (a `Range`
request; from the start when the server ignores it), a few times; what
arrived must be an ELF carrying the build-id asked for.

Cache layout (shared with the Debian fetcher: `store.cache_root`, its locks,
sidecar and `.part` handling)::

    debuginfod/<build-id>/vmlinux        the debug image
    debuginfod/<build-id>/vmlinux.json   sidecar: build-id, server URL, size, sha256
    debuginfod/<build-id>/config         the running kernel's config (--running)
    debuginfod/<build-id>/modules/       <module>.ko.zst, by each module's build-id
    locks/debuginfod/<build-id>.lock

`--running` takes the build-id of `/sys/kernel/notes`, the loaded modules' from
`/sys/module/<name>/notes/.note.gnu.build-id`, and the running config.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import zstandard

from ingest.errors import ArchiveError, ChecksumMismatch, MirrorError, TruncatedDownload
from ingest.readers import elf, procfs

from . import store
from .index import write_atomic
from .modules import LEVEL, remove_tree
from .net import Progress, open_url

ENV_URLS = "DEBUGINFOD_URLS"
DISTRO = "debuginfod"
#: Times a broken transfer is resumed before giving up.
RESUMES = 3
_CHUNK = 1 << 20


class NotOnServers(ArchiveError):
    """No debuginfod server has a file with this build-id."""


@dataclass(frozen=True)
class DebuginfodImage:
    """A vmlinux fetched by build-id, in the cache."""

    path: Path
    build_id: str
    url: str  # where it came from
    cached: bool
    downloaded: int  # bytes received by this call
    config_path: Path | None
    modules_path: Path | None
    modules_missing: tuple[str, ...] = ()  # loaded modules no server has


def servers(urls: str | None = None) -> list[str]:
    """The servers to ask: `urls` or $DEBUGINFOD_URLS, space-separated; ArchiveError when none."""
    found = (urls if urls is not None else os.environ.get(ENV_URLS, "")).split()
    if not found:
        raise ArchiveError(f"no debuginfod server: set ${ENV_URLS} (space-separated URLs) or pass --url")
    return [u.rstrip("/") for u in found]


def check_build_id(build_id: str) -> str:
    """`build_id` as lowercase hex; ArchiveError when it is not one."""
    hexed = build_id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{8,128}", hexed) or len(hexed) % 2:
        raise ArchiveError(f"{build_id!r} is not a build-id (hex digits, e.g. from `readelf -n vmlinux`)")
    return hexed


def fetch(
    build_id: str,
    urls: list[str],
    *,
    modules: dict[str, str] | None = None,
    config: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> DebuginfodImage:
    """Fetch the debug vmlinux with `build_id` (and each module of `modules`,
    name -> build-id, that a server has) into the cache; `config` is the
    kernel config text to keep beside it. A cached entry is reused."""
    build_id = check_build_id(build_id)
    directory = store.cache_root(cache_dir) / DISTRO / build_id
    with store.key_lock(store.cache_root(cache_dir) / "locks" / DISTRO / f"{build_id}.lock"):
        directory.mkdir(parents=True, exist_ok=True)
        store.clean_parts(directory)
        meta = store.read_sidecar(directory) or {}
        vmlinux = directory / "vmlinux"
        cached = meta.get("build_id") == build_id and _size(vmlinux) == meta.get("vmlinux_size")
        downloaded = 0
        try:
            if not cached:
                url, downloaded, sha = download(urls, build_id, vmlinux, progress)
                meta = {
                    "distro": DISTRO,
                    "build_id": build_id,
                    "url": url,
                    "vmlinux_size": vmlinux.stat().st_size,
                    "sha256": sha,
                    "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                store.write_sidecar(directory, meta)
            if config is not None and not (directory / "config").exists():
                write_atomic(directory / "config", config.encode())
            missing: tuple[str, ...] = ()
            if modules and not store.modules_dir(directory):
                missing, extra = _fetch_modules(directory, urls, modules, progress)
                downloaded += extra
                store.write_sidecar(
                    directory,
                    {
                        **meta,
                        "modules": {
                            "status": "ok",
                            "count": len(modules) - len(missing),
                            "missing": list(missing),
                        },
                    },
                )
        except BaseException as exc:
            store.clean_parts(directory)
            if not (directory / store.SIDECAR).exists():
                remove_tree(directory)
            if isinstance(exc, OSError) and store.is_disk_full(exc):
                raise store.disk_full(exc, directory) from None
            raise
    config_path = directory / "config"
    return DebuginfodImage(
        vmlinux,
        build_id,
        meta["url"],
        cached,
        downloaded,
        config_path if config_path.exists() else None,
        store.modules_dir(directory),
        missing,
    )


def module_id(text: str) -> tuple[str, str]:
    """ "ext4=4f2c..." -> ("ext4", "4f2c..."); ArchiveError when it is not NAME=BUILD-ID."""
    name, _, build_id = text.partition("=")
    if not name or not build_id:
        raise ArchiveError(f"--module {text!r}: give NAME=BUILD-ID, e.g. ext4=4f2c0b...")
    return name, check_build_id(build_id)


def fetch_running(
    urls: list[str],
    root: Path = Path("/"),
    cache_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    modules: dict[str, str] | None = None,
) -> DebuginfodImage:
    """Fetch the running kernel's debug vmlinux and its loaded modules' debug files
    (and those of `modules`, name -> build-id)."""
    build_id = procfs.read_build_id(root / "sys/kernel/notes")
    if build_id is None:
        raise ArchiveError(f"{root / 'sys/kernel/notes'}: no GNU build-id note; give the build-id by hand")
    release = elf.release(procfs.read_text(root / "proc/version"))
    found = procfs.config_text(root, release)
    return fetch(
        build_id,
        urls,
        modules={**loaded_module_ids(root), **(modules or {})},
        config=found[0] if found else None,
        cache_dir=cache_dir,
        progress=progress,
    )


def loaded_module_ids(root: Path) -> dict[str, str]:
    """name -> GNU build-id of every loaded module (`/sys/module/<name>/notes`)."""
    out = {}
    for note in sorted((root / "sys/module").glob("*/notes/.note.gnu.build-id")):
        found = procfs.read_build_id(note)
        if found:
            out[note.parent.parent.name] = found
    return out


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _fetch_modules(
    directory: Path, urls: list[str], modules: dict[str, str], progress: Progress | None
) -> tuple[tuple[str, ...], int]:
    """Each module's debug file into `modules.part/<name>.ko.zst`, renamed once all are done."""
    part = directory / (store.MODULES + ".part")
    remove_tree(part)
    part.mkdir()
    missing, total = [], 0
    compressor = zstandard.ZstdCompressor(level=LEVEL, write_content_size=True)
    for name, module_id in sorted(modules.items()):
        raw = part / f"{name}.ko.part"
        try:
            _, count, _ = download(urls, module_id, raw, None)
        except NotOnServers:
            missing.append(name)
            continue
        total += count
        (part / f"{name}.ko.zst").write_bytes(compressor.compress(raw.read_bytes()))
        raw.unlink()
    remove_tree(directory / store.MODULES)
    os.replace(part, directory / store.MODULES)
    return tuple(missing), total


def download(urls: list[str], build_id: str, dest: Path, progress: Progress | None) -> tuple[str, int, str]:
    """The debug file of `build_id` from the first server that has it into `dest`
    (under a .part name until verified): (its URL, bytes received, sha256)."""
    errors = []
    for server in urls:
        url = f"{server}/buildid/{build_id}/debuginfo"
        part = dest.with_name(dest.name + ".part")
        try:
            count = _get(url, part, progress)
            got = _elf_build_id(part)
            if got != build_id:
                raise ChecksumMismatch(f"{url}: served a file whose build-id is {got or 'missing'}")
            sha = _sha256(part)
            os.replace(part, dest)
            return url, count, sha
        except MirrorError as exc:
            errors.append(f"{server}: not found" if exc.status == 404 else str(exc))
        except ArchiveError as exc:
            errors.append(str(exc))
        finally:
            part.unlink(missing_ok=True)
    raise NotOnServers(f"build-id {build_id}: no server gave it ({'; '.join(errors)})")


def _get(url: str, part: Path, progress: Progress | None) -> int:
    """GET `url` into `part`, resuming a broken transfer; returns the bytes received."""
    done, total, received = 0, None, 0
    with open(part, "wb") as out:
        for _ in range(RESUMES + 1):
            resp = open_url(url, extra_headers={"Range": f"bytes={done}-"} if done else None)
            assert resp is not None
            with resp:
                if done and resp.status != 206:  # the server ignored Range: from the start
                    out.seek(0)
                    out.truncate()
                    done = 0
                total = _total(resp, done) or total
                try:
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        received += len(chunk)
                        if progress is not None and total:
                            progress(done, total)
                except (OSError, http.client.HTTPException):
                    continue  # resume
            if total is None or done >= total:
                return received
        raise TruncatedDownload(
            f"{url}: download broke at {done} of {total} bytes {RESUMES + 1} times; run again"
        )


def _total(resp: http.client.HTTPResponse, offset: int) -> int | None:
    """The whole file's size from Content-Range (206) or Content-Length."""
    content_range = resp.headers.get("Content-Range", "")
    if m := re.fullmatch(r"bytes \d+-\d+/(\d+)", content_range):
        return int(m.group(1))
    length = resp.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _elf_build_id(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return elf.build_id(elf.open_image(f))
    except (OSError, elf.ImageError, Exception):
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
