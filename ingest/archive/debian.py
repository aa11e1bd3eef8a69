"""Debian kernel debug images (`linux-image-<release>-dbg`) from a Debian mirror.

    ref = resolve("6.1.0-56-amd64", suite="bookworm")
    image = fetch(ref, progress=lambda done, total: ...)
    image.path, image.config_path

Only HTTP (urllib) and python-debian are used: no root, apt, dpkg or external
binaries. A plain suite such as "bookworm" is searched together with
"bookworm-updates" and "bookworm-security" and the newest version wins. The
indexes are trusted as served (no GPG check of the Release files); packages
are checked against the index's size and SHA256.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from debian.deb822 import Packages
from debian.debian_support import Version

from ingest.errors import MirrorError, UnknownArch, UnknownPackage, UnknownSuite

from .index import DEFAULT_MAX_AGE, load_packages
from .net import Progress, read_url
from .sources import DEFAULT_MIRROR, ENV_MIRROR, Mirror, mirror_for, security_for
from .store import (
    DEFAULT_CONFIG_LIMIT,
    ConfigSource,
    FetchedImage,
    PackageRef,
    cache_root,
    cached_image,
    fetch_image,
)

__all__ = [
    "ARCHES",
    "SUITES",
    "DEFAULT_FLAVOR",
    "DEFAULT_MIRROR",
    "ENV_MIRROR",
    "Mirror",
    "PackageRef",
    "FetchedImage",
    "mirror_for",
    "security_for",
    "suite_group",
    "parse_release",
    "resolve",
    "list_debug_kernels",
    "fetch",
    "cached_image",
    "vmlinux_paths",
    "module_roots",
]

#: Architectures Debian builds -dbg kernel images for (trixie: all but armel).
ARCHES = ("amd64", "arm64", "armhf", "i386", "ppc64el", "riscv64", "s390x")
#: Suites known to carry them; each also has -updates and -security variants except sid.
SUITES = ("bullseye", "bookworm", "trixie", "forky", "sid", "unstable")
#: The flavor picked when a release is given without one.
DEFAULT_FLAVOR = {
    "amd64": "amd64",
    "arm64": "arm64",
    "armhf": "armmp",
    "i386": "686-pae",
    "ppc64el": "powerpc64le",
    "riscv64": "riscv64",
    "s390x": "s390x",
    "armel": "marvell",
    "mips64el": "5kc-malta",
    "loong64": "loong64",
}
_UNSPLIT = ("sid", "unstable", "experimental")
_VARIANTS = ("-updates", "-security", "-backports", "-proposed-updates", "-backports-sloppy")

#: <abi>-<flavor>: 6.1.0-56-amd64, 6.1.0-0.deb11.48-cloud-amd64, 6.12.115+deb13.1-rt-arm64, 7.2.13+deb14-686-pae
_RELEASE = re.compile(r"^(?P<abi>\d+\.\d+(?:\.\d+)?(?:-\d[\w.~]*|\+[\w.~]+))-(?P<flavor>[a-z0-9][a-z0-9-]*)$")
#: Real -dbg images install gigabytes; meta packages (linux-image-amd64-dbg) a few KB.
_MIN_INSTALLED_KB = 10_000


def parse_release(release: str) -> tuple[str, str] | None:
    """(abi, flavor) of a kernel release like 6.1.0-56-amd64, or None without a flavor."""
    m = _RELEASE.match(release)
    return (m["abi"], m["flavor"]) if m else None


def flavor_arch(flavor: str) -> str | None:
    """The Debian architecture a kernel flavor is built for, if recognisable."""
    for needle, arch in (
        ("amd64", "amd64"),
        ("arm64", "arm64"),
        ("armmp", "armhf"),
        ("686", "i386"),
        ("powerpc64le", "ppc64el"),
        ("riscv64", "riscv64"),
        ("s390x", "s390x"),
        ("loong64", "loong64"),
        ("marvell", "armel"),
        ("rpi", "armel"),
        ("malta", "mips64el"),
        ("octeon", "mips64el"),
        ("loongson", "mips64el"),
    ):
        if needle in flavor:
            return arch
    return None


def suite_group(suite: str) -> list[str]:
    """Suites searched for `suite`: itself plus -updates and -security for a plain release."""
    if suite in _UNSPLIT or suite.endswith(_VARIANTS):
        return [suite]
    return [suite, f"{suite}-updates", f"{suite}-security"]


def vmlinux_paths(release: str) -> tuple[str, ...]:
    """Where a -dbg package keeps vmlinux: boot/ up to 6.x, lib/modules/<rel>/ from 7.x."""
    return (
        f"usr/lib/debug/boot/vmlinux-{release}",
        f"usr/lib/debug/lib/modules/{release}/vmlinux",
        f"usr/lib/debug/usr/lib/modules/{release}/vmlinux",
    )


def module_roots(release: str) -> tuple[str, ...]:
    """Where a -dbg package keeps its debug modules (`<root>/**.ko`)."""
    return (f"usr/lib/debug/lib/modules/{release}/kernel", f"usr/lib/debug/usr/lib/modules/{release}/kernel")


def config_paths(release: str) -> tuple[str, ...]:
    """Where image/base packages keep the kernel config."""
    return (f"boot/config-{release}", f"usr/lib/modules/{release}/config", f"lib/modules/{release}/config")


# --------------------------------------------------------------------------- indexes


def _index_cache_path(base: str, suite: str, arch: str, cache_dir: str | os.PathLike | None) -> Path:
    parts = urlsplit(base)
    host = parts.netloc.replace(":", "_") or "local"
    return (
        cache_root(cache_dir)
        / "index"
        / host
        / parts.path.strip("/")
        / "dists"
        / suite
        / "main"
        / f"binary-{arch}"
        / "Packages.xz"
    )


def _release_fields(base: str, suite: str) -> dict[str, str] | None:
    """Fields of dists/<suite>/Release, or None if the suite does not exist."""
    try:
        data = read_url(f"{base}/dists/{suite}/Release")
    except MirrorError as exc:
        if exc.status == 404:
            return None
        raise
    fields: dict[str, str] = {}
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        if line[:1].strip() and ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _suite_stanzas(
    mirror: Mirror,
    suite: str,
    arch: str,
    *,
    required: bool,
    cache_dir: str | os.PathLike | None = None,
    max_age: float = DEFAULT_MAX_AGE,
    refresh: bool = False,
) -> list[tuple[str, str, Packages]]:
    """(suite, base, stanza) for the linux-* packages of one suite/arch; [] if absent and not required."""
    base = mirror.base_for(suite)
    url = f"{base}/dists/{suite}/main/binary-{arch}/Packages.xz"
    try:
        stanzas = load_packages(
            url, _index_cache_path(base, suite, arch, cache_dir), max_age=max_age, refresh=refresh
        )
    except MirrorError as exc:
        if exc.status != 404:
            raise
        if not required:
            return []
        fields = _release_fields(base, suite)
        if fields is None:
            raise UnknownSuite(
                f"{base} has no suite {suite!r}; use one of {', '.join(SUITES)} (optionally with -updates/-security)"
            ) from None
        arches = sorted(set(fields.get("Architectures", "").split()) - {"all"})
        raise UnknownArch(
            f"{suite} has no architecture {arch!r}; available: {', '.join(arches) or 'none listed'}"
        ) from None
    return [(suite, base, s) for s in stanzas]


def _ref(suite: str, base: str, stanza: Packages) -> PackageRef | None:
    """A PackageRef for a real -dbg image stanza, None for anything else."""
    name = stanza.get("Package", "")
    if not (name.startswith("linux-image-") and name.endswith("-dbg")) or "SHA256" not in stanza:
        return None
    parsed = parse_release(name[len("linux-image-") : -len("-dbg")])
    if parsed is None or parsed[1].endswith("unsigned"):
        return None
    try:
        if int(stanza.get("Installed-Size", "0")) < _MIN_INSTALLED_KB:
            return None
        size = int(stanza["Size"])
    except (KeyError, ValueError):
        return None
    return PackageRef(
        name=name,
        version=stanza["Version"],
        arch=stanza.get("Architecture", ""),
        url=f"{base}/{stanza['Filename']}",
        size=size,
        sha256=stanza["SHA256"],
        release=f"{parsed[0]}-{parsed[1]}",
        flavor=parsed[1],
        suite=suite,
        base=base,
    )


def _plain_ref(suite: str, base: str, stanza: Packages, release: str, flavor: str) -> PackageRef:
    return PackageRef(
        name=stanza["Package"],
        version=stanza["Version"],
        arch=stanza.get("Architecture", ""),
        url=f"{base}/{stanza['Filename']}",
        size=int(stanza["Size"]),
        sha256=stanza["SHA256"],
        release=release,
        flavor=flavor,
        suite=suite,
        base=base,
    )


def _newest(refs: list[PackageRef]) -> dict[str, PackageRef]:
    """Newest version per package name; on a tie the earlier suite of the group wins."""
    best: dict[str, PackageRef] = {}
    for ref in refs:
        old = best.get(ref.name)
        if old is None or Version(ref.version) > Version(old.version):
            best[ref.name] = ref
    return best


def _debug_refs(
    mirror: Mirror,
    suite: str,
    arch: str,
    *,
    required: bool,
    cache_dir: str | os.PathLike | None,
    max_age: float,
    refresh: bool,
) -> dict[str, PackageRef]:
    """The newest debug image of each release in the suite's group (suite, -updates, -security)."""
    refs: list[PackageRef] = []
    for i, one in enumerate(suite_group(suite)):
        stanzas = _suite_stanzas(
            mirror,
            one,
            arch,
            required=required and i == 0,
            cache_dir=cache_dir,
            max_age=max_age,
            refresh=refresh,
        )
        for s, base, stanza in stanzas:
            if (ref := _ref(s, base, stanza)) is not None:
                refs.append(ref)
    return _newest(refs)


def _sort_key(ref: PackageRef) -> tuple:
    return (ref.arch, Version(ref.version), ref.release, ref.flavor)


# --------------------------------------------------------------------------- public API


def list_debug_kernels(
    suite: str,
    arch: str | None = None,
    mirror: str | Mirror | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    max_age: float = DEFAULT_MAX_AGE,
    refresh: bool = False,
) -> list[PackageRef]:
    """All real debug kernel images of `suite` (and its -updates/-security) for `arch` or every arch.

    Meta packages (linux-image-amd64-dbg, linux-image-6.12-amd64-dbg) are left
    out. Sorted by arch, then version, then release.
    """
    m = mirror_for(mirror)
    arches = [arch] if arch else list(ARCHES)
    refs: list[PackageRef] = []
    for one in arches:
        refs += _debug_refs(
            m,
            suite,
            one,
            required=arch is not None or one == "amd64",
            cache_dir=cache_dir,
            max_age=max_age,
            refresh=refresh,
        ).values()
    return sorted(refs, key=_sort_key)


def resolve(
    package_or_release: str,
    suite: str = "bookworm",
    arch: str | None = None,
    mirror: str | Mirror | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    max_age: float = DEFAULT_MAX_AGE,
    refresh: bool = False,
) -> PackageRef:
    """Find the debug image package for a package name, a kernel release or a flavor.

    Accepts `linux-image-6.1.0-56-amd64-dbg` (the -dbg suffix is optional),
    `6.1.0-56-amd64`, `6.1.0-56` (default flavor of `arch`) or a bare flavor
    such as `cloud-amd64` (newest release of it). `arch` defaults to the
    flavor's architecture, else amd64. Raises UnknownPackage (with close
    matches), UnknownArch, UnknownSuite or MirrorError.
    """
    query = package_or_release.strip()
    rel = query[len("linux-image-") :] if query.startswith("linux-image-") else query
    for suffix in ("-dbg", "-unsigned"):
        rel = rel.removesuffix(suffix)
    parsed = parse_release(rel)
    flavor = parsed[1] if parsed else None
    bare_flavor = parsed is None and "." not in rel  # releases have dots, flavors never
    if arch is None:
        arch = flavor_arch(flavor or rel) if flavor or bare_flavor else None
        arch = arch or "amd64"
    refs = _debug_refs(
        mirror_for(mirror), suite, arch, required=True, cache_dir=cache_dir, max_age=max_age, refresh=refresh
    )
    if parsed:
        wanted = f"linux-image-{rel}-dbg"
    elif not bare_flavor:
        wanted = f"linux-image-{rel}-{DEFAULT_FLAVOR.get(arch, arch)}-dbg"
    else:  # the newest release of a flavor
        same = [r for r in refs.values() if r.flavor == rel]
        if same:
            return max(same, key=_sort_key)
        wanted = f"linux-image-{rel}-dbg"
    if wanted in refs:
        return refs[wanted]
    close = difflib.get_close_matches(wanted, list(refs), n=5, cutoff=0.75)
    if not close:
        close = [
            r.name
            for r in sorted(refs.values(), key=_sort_key, reverse=True)
            if flavor is None or r.flavor == flavor
        ][:5]
    hint = ""
    if flavor and flavor_arch(flavor) not in (None, arch):
        hint = f"; flavor {flavor} is built for {flavor_arch(flavor)}, not {arch}"
    raise UnknownPackage(
        f"no {wanted} in {'/'.join(suite_group(suite))} for {arch}{hint}; "
        + (f"close matches: {', '.join(close)}" if close else "no debug kernels there")
        + f"; see `kernsurf fetch list debian --suite {suite}`"
    )


def config_sources(
    ref: PackageRef,
    mirror: str | Mirror | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    max_age: float = DEFAULT_MAX_AGE,
) -> list[ConfigSource]:
    """Packages of `ref`'s version that may hold its kernel config, smallest first.

    linux-base-<rel> (7.x, usr/lib/modules/<rel>/config) and
    linux-image-<rel>[-unsigned] (/boot/config-<rel>), looked up in the suite
    that listed `ref` first, then the rest of its group.
    """
    names = {f"linux-base-{ref.release}", f"linux-image-{ref.release}-unsigned", f"linux-image-{ref.release}"}
    m = mirror_for(mirror)
    if ref.base:
        m = Mirror(m.main, ref.base) if ref.suite.endswith("-security") else Mirror(ref.base, m.security)
    family = ref.suite.split("-", 1)[0] if ref.suite else ""
    suites = [ref.suite] + [s for s in suite_group(family) if s != ref.suite] if family else []
    found: dict[str, PackageRef] = {}
    for one in suites:
        for s, base, stanza in _suite_stanzas(
            m, one, ref.arch, required=False, cache_dir=cache_dir, max_age=max_age
        ):
            name = stanza.get("Package")
            if (
                name in names
                and name not in found
                and stanza.get("Version") == ref.version
                and "SHA256" in stanza
            ):
                found[name] = _plain_ref(s, base, stanza, ref.release, ref.flavor)
        if found:
            break
    return [ConfigSource(r, config_paths(ref.release)) for r in sorted(found.values(), key=lambda r: r.size)]


def fetch(
    ref: PackageRef,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    *,
    config: bool = True,
    config_limit: int = DEFAULT_CONFIG_LIMIT,
    mirror: str | Mirror | None = None,
    modules: bool = True,
) -> FetchedImage:
    """Fetch `ref`'s vmlinux (and, if `config`, the kernel config; if `modules`, its modules) into the cache.

    Returns at once when the cache already holds it. See store.fetch_image for
    the guarantees (streaming, SHA256 check, locking, .part files).
    """
    sources = (lambda: config_sources(ref, mirror, cache_dir=cache_dir)) if config else None
    return fetch_image(
        ref,
        vmlinux_paths(ref.release),
        config_sources=sources,
        cache_dir=cache_dir,
        progress=progress,
        config_limit=config_limit,
        module_roots=module_roots(ref.release),
        modules=modules,
    )
