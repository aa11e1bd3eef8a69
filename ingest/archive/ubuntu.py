"""Ubuntu kernel debug images (`linux-image-unsigned-<release>-dbgsym` .ddeb).

A .ddeb is a .deb (its data member zstd-compressed since 21.10, xz before)
listed by a ddebs mirror's dists/<suite>{,-updates,-security}/main/binary-<arch>/
Packages{.xz,.gz}; its data holds /usr/lib/debug/boot/vmlinux-<release> and
the debug modules below /usr/lib/debug/lib/modules/<release>/kernel/. The
kernel config is /boot/config-<release> in linux-modules-<release> of the
main archive (ports for non-x86). Releases are <abi>-<flavor>: 6.8.0-31-generic,
6.8.0-1008-aws. Same shape as debian.py: resolve, list_debug_kernels, fetch.

Only Debian's archive is reachable where this was written: it is tested against
a mirror the tests serve on loopback with .ddeb files built around a compiled
image (tests/test_ubuntu.py), not against ddebs.ubuntu.com itself.
"""

from __future__ import annotations

import os
import re

from debian.deb822 import Packages

from ingest.errors import MirrorError, UnknownArch, UnknownPackage

from .debian import _index_cache_path, _newest, _sort_key
from .index import DEFAULT_MAX_AGE, load_packages
from .net import Progress
from .store import DEFAULT_CONFIG_LIMIT, ConfigSource, FetchedImage, PackageRef, fetch_image

DDEBS = "http://ddebs.ubuntu.com"
ARCHIVE = "http://archive.ubuntu.com/ubuntu"
PORTS = "http://ports.ubuntu.com/ubuntu-ports"
ENV_DDEBS = "KERNSURF_UBUNTU_DDEBS_MIRROR"
ENV_ARCHIVE = "KERNSURF_UBUNTU_MIRROR"
ARCHES = ("amd64", "arm64", "armhf", "ppc64el", "riscv64", "s390x")
DEFAULT_FLAVOR = "generic"
#: Suites (codenames) a manifest may name: 14.04 to 25.10.
CODENAMES = frozenset(
    "trusty xenial bionic cosmic disco eoan focal groovy hirsute impish jammy kinetic lunar mantic"
    " noble oracular plucky questing".split()
)
#: <abi>-<flavor>: 6.8.0-31-generic, 6.8.0-1008-aws, 6.8.0-31-generic-64k
_RELEASE = re.compile(r"^(?P<abi>\d+\.\d+\.\d+-\d+)-(?P<flavor>[a-z][a-z0-9-]*)$")
_DBGSYM = re.compile(r"^linux-image-(?:unsigned-)?(?P<rel>.+)-dbgsym$")
#: Where the index and image cache lives (default: XDG_CACHE_HOME/kernsurf).
CacheDir = str | os.PathLike | None


def suite_group(suite: str) -> list[str]:
    """Suites searched for `suite`: itself plus -updates and -security for a plain release."""
    return [suite] if "-" in suite else [suite, f"{suite}-updates", f"{suite}-security"]


def _stanzas(
    base: str,
    suite: str,
    arch: str,
    *,
    required: bool,
    cache_dir: CacheDir = None,
    max_age: float = DEFAULT_MAX_AGE,
    refresh: bool = False,
) -> list[Packages]:
    for name in ("Packages.xz", "Packages.gz"):
        url = f"{base}/dists/{suite}/main/binary-{arch}/{name}"
        try:
            return load_packages(
                url,
                _index_cache_path(base, suite, arch, cache_dir).with_name(name),
                max_age=max_age,
                refresh=refresh,
            )
        except MirrorError as exc:
            if exc.status != 404:
                raise
    if required:
        raise UnknownArch(
            f"{base} has no index for {suite}/{arch}; check the suite and use one of {', '.join(ARCHES)}"
        )
    return []


def _ref(suite: str, base: str, stanza: Packages) -> PackageRef | None:
    m = _DBGSYM.match(stanza.get("Package", ""))
    parsed = _RELEASE.match(m["rel"]) if m else None
    if m is None or parsed is None or "SHA256" not in stanza:
        return None
    return PackageRef(
        name=stanza["Package"],
        version=stanza["Version"],
        arch=stanza.get("Architecture", ""),
        url=f"{base}/{stanza['Filename']}",
        size=int(stanza["Size"]),
        sha256=stanza["SHA256"],
        release=m["rel"],
        flavor=parsed["flavor"],
        suite=suite,
        base=base,
        distro="ubuntu",
    )


def _debug_refs(
    base: str, suite: str, arch: str, *, required: bool, cache_dir: CacheDir, max_age: float, refresh: bool
) -> dict[str, PackageRef]:
    refs = [
        r
        for i, one in enumerate(suite_group(suite))
        for stanza in _stanzas(
            base,
            one,
            arch,
            required=required and i == 0,
            cache_dir=cache_dir,
            max_age=max_age,
            refresh=refresh,
        )
        if (r := _ref(one, base, stanza)) is not None
    ]
    return _newest(refs)


def list_debug_kernels(
    suite: str,
    arch: str | None = None,
    mirror: str | None = None,
    *,
    cache_dir: CacheDir = None,
    max_age: float = DEFAULT_MAX_AGE,
    refresh: bool = False,
) -> list[PackageRef]:
    """All linux-image[-unsigned]-<rel>-dbgsym packages of `suite` for `arch` or every arch."""
    base = (mirror or os.environ.get(ENV_DDEBS) or DDEBS).rstrip("/")
    refs: list[PackageRef] = []
    for one in [arch] if arch else ARCHES:
        refs += _debug_refs(
            base, suite, one, required=arch is not None, cache_dir=cache_dir, max_age=max_age, refresh=refresh
        ).values()
    return sorted(refs, key=_sort_key)


def parse_release(release: str) -> tuple[str, str] | None:
    """(ABI, flavor) of an Ubuntu kernel release: 6.8.0-1008-aws -> ("6.8.0-1008", "aws")."""
    m = _RELEASE.match(release)
    return (m["abi"], m["flavor"]) if m else None


def resolve(
    package_or_release: str,
    suite: str = "noble",
    arch: str | None = None,
    mirror: str | None = None,
    *,
    flavor: str | None = None,
    cache_dir: CacheDir = None,
    max_age: float = DEFAULT_MAX_AGE,
    refresh: bool = False,
) -> PackageRef:
    """Find the -dbgsym package for a package name, a release (6.8.0-31-generic), an
    ABI (6.8.0-31, with `flavor` or generic) or a flavor (aws: its newest release)."""
    query = package_or_release.strip()
    m = _DBGSYM.match(query)
    rel = m["rel"] if m else query.removeprefix("linux-image-").removeprefix("unsigned-")
    arch = arch or "amd64"
    base = (mirror or os.environ.get(ENV_DDEBS) or DDEBS).rstrip("/")
    refs = _debug_refs(
        base, suite, arch, required=True, cache_dir=cache_dir, max_age=max_age, refresh=refresh
    )
    if re.fullmatch(r"[a-z][a-z0-9-]*", rel):  # a flavor alone: its newest release
        mine = [r for r in refs.values() if r.flavor == rel]
        if mine:
            return max(mine, key=_sort_key)
        raise UnknownPackage(f"no {rel} dbgsym kernel in {'/'.join(suite_group(suite))} for {arch}")
    if not _RELEASE.match(rel):
        rel = f"{rel}-{flavor or DEFAULT_FLAVOR}"
    for name in (f"linux-image-unsigned-{rel}-dbgsym", f"linux-image-{rel}-dbgsym"):
        if name in refs:
            return refs[name]
    newest = [r.name for r in sorted(refs.values(), key=_sort_key, reverse=True)[:5]]
    raise UnknownPackage(
        f"no dbgsym package for {rel} in {'/'.join(suite_group(suite))} for {arch}; "
        f"newest there: {', '.join(newest) or 'none'}"
    )


def config_sources(
    ref: PackageRef, archive: str | None = None, *, cache_dir: CacheDir = None
) -> list[ConfigSource]:
    """linux-modules-<rel> / linux-image[-unsigned]-<rel> of `ref`'s version, smallest first."""
    base = (
        archive or os.environ.get(ENV_ARCHIVE) or (ARCHIVE if ref.arch in ("amd64", "i386") else PORTS)
    ).rstrip("/")
    names = {
        f"linux-modules-{ref.release}",
        f"linux-image-unsigned-{ref.release}",
        f"linux-image-{ref.release}",
    }
    version = ref.version
    found: dict[str, PackageRef] = {}
    family = ref.suite.split("-", 1)[0]
    for one in suite_group(family):
        for stanza in _stanzas(base, one, ref.arch, required=False, cache_dir=cache_dir):
            name = stanza.get("Package")
            if name in names and stanza.get("Version") == version and "SHA256" in stanza:
                found.setdefault(
                    name,
                    PackageRef(
                        name=name,
                        version=version,
                        arch=ref.arch,
                        url=f"{base}/{stanza['Filename']}",
                        size=int(stanza["Size"]),
                        sha256=stanza["SHA256"],
                        release=ref.release,
                        flavor=ref.flavor,
                        suite=one,
                        base=base,
                        distro="ubuntu",
                    ),
                )
    return [
        ConfigSource(r, (f"boot/config-{ref.release}",)) for r in sorted(found.values(), key=lambda r: r.size)
    ]


def fetch(
    ref: PackageRef,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    *,
    config: bool = True,
    config_limit: int = DEFAULT_CONFIG_LIMIT,
    archive: str | None = None,
    modules: bool = True,
) -> FetchedImage:
    """Fetch `ref`'s vmlinux (the kernel config, the modules) into `<cache>/ubuntu/<package>_<version>_<arch>/`."""
    sources = (lambda: config_sources(ref, archive, cache_dir=cache_dir)) if config else None
    return fetch_image(
        ref,
        (f"usr/lib/debug/boot/vmlinux-{ref.release}",),
        config_sources=sources,
        cache_dir=cache_dir,
        progress=progress,
        config_limit=config_limit,
        module_roots=(f"usr/lib/debug/lib/modules/{ref.release}/kernel",),
        modules=modules,
    )
