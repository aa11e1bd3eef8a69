"""kernsurf command line: thin wrappers over the ingest library.

Each command parses its options, makes one library call and prints the
result. Errors: any `ingest.errors.KernsurfError` becomes a one-line
`Error: ...` with exit status 1 (KernsurfGroup), whichever command raised it.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ingest.archive import debian, store, ubuntu
from ingest.archive.store import human_size
from ingest.errors import KernsurfError, NoDatabase
from ingest.publish.artefact import DEFAULT_LEVEL

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

    from ingest import pipeline
    from ingest.catalog import batch

F = TypeVar("F", bound=Callable[..., Any])


class KernsurfGroup(click.Group):
    """A command group that reports any KernsurfError as a one-line click error."""

    group_class = type  # subgroups (fetch) are KernsurfGroups too

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KernsurfError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # an input the library read without a domain error of its own
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None


@click.group(cls=KernsurfGroup)
@click.version_option(package_name="kernsurf")
def cli() -> None:
    """kernsurf: what a Linux kernel build exposes, and how it changes."""


# --------------------------------------------------------------------------- shared options


def db_option(help: str) -> Callable[[F], F]:
    """--db: the SQLite database a command works on (kernels.db by default; not a directory)."""
    return click.option(
        "--db",
        "db_path",
        default="kernels.db",
        show_default=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help=help,
    )


def mirror_option(help: str) -> Callable[[F], F]:
    """--mirror URL: the Debian mirror to ask."""
    return click.option("--mirror", metavar="URL", help=help)


def json_option(f: F) -> F:
    """--json: print JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def _existing(db_path: Path, how: str) -> Path:
    """`db_path` if the database exists, else a NoDatabase error saying how to create one."""
    if not db_path.exists():
        raise NoDatabase(f"{db_path}: no such database ({how})")
    return db_path


def _progress_bar(label: str) -> Callable[[int, int], None]:
    """A callback progress(done, total) drawing a click progress bar on stderr."""
    bars: list[ProgressBar[int]] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(click.progressbar(length=total, label=label, file=sys.stderr))
            bars[0].__enter__()
        bar = bars[0]
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    return progress


def _table(header: tuple[str, ...], rows: Sequence[tuple[object, ...]], right: tuple[int, ...] = ()) -> None:
    """Print rows as aligned columns; columns in `right` are right-aligned."""
    cells = [tuple(str(c) for c in header)] + [
        tuple("" if c is None else str(c) for c in row) for row in rows
    ]
    widths = [max(len(row[k]) for row in cells) for k in range(len(header))]
    for row in cells:
        click.echo(
            "  ".join(
                c.rjust(w) if k in right else c.ljust(w) for k, (c, w) in enumerate(zip(row, widths))
            ).rstrip()
        )


# --------------------------------------------------------------------------- ingest


@cli.command()
@click.argument("path", type=click.Path(path_type=Path), required=False)
@db_option("SQLite database to add the build to (created if missing).")
@click.option(
    "--running",
    is_flag=True,
    help="Ingest the running kernel: /sys/kernel/btf (vmlinux and loaded modules), /proc/kallsyms, "
    "/proc/version, /sys/kernel/notes, its config, and tracefs when mounted.",
)
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default="/",
    help="With --running: read /sys, /proc and /boot below this directory (a copy of another machine's).",
)
@click.option("--distro", help="Distribution, e.g. debian.")
@click.option("--version", "pkg_version", help="Package version, e.g. 6.1.192-2.")
@click.option("--release", help="Kernel release (default: from the image's linux_banner).")
@click.option("--arch", help="Architecture (default: from the ELF machine).")
@click.option("--flavor", help="Flavor (default: the release's suffix, e.g. amd64, cloud-amd64).")
@click.option("--label", help="Display name of the build (default: the release).")
@click.option(
    "--kallsyms",
    "--system-map",
    "kallsyms",
    type=click.Path(exists=True, path_type=Path),
    help="For a BTF-only input: /proc/kallsyms or System.map with its symbols.",
)
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The build's kernel config (default: a file named config beside PATH, as the cache keeps it).",
)
@click.option(
    "--modules",
    "modules",
    metavar="DIR|none",
    help="The build's loadable modules: a tree of .ko (.ko.xz, .ko.zst, .ko.gz) files (default: the "
    "modules/ tree the cache keeps beside PATH, if any); `none` to read vmlinux alone.",
)
@click.option("--replace", is_flag=True, help="Replace the build if its build-id is already stored.")
@click.option("-j", "--jobs", type=int, help="Processes for the DWARF walk (default: all cores).")
@click.option("--timings", is_flag=True, help="Also print seconds per phase.")
def ingest(
    path: Path | None,
    db_path: Path,
    running: bool,
    root: Path,
    distro: str | None,
    pkg_version: str | None,
    release: str | None,
    arch: str | None,
    flavor: str | None,
    label: str | None,
    kallsyms: Path | None,
    config: Path | None,
    modules: str | None,
    replace: bool,
    jobs: int | None,
    timings: bool,
) -> None:
    """Ingest one kernel image (vmlinux with DWARF/BTF, or a raw BTF file) and its modules as a build."""
    from ingest import pipeline

    identity = pipeline.Identity(distro, pkg_version, release, arch, flavor, label)
    if running == (path is not None):
        raise click.UsageError("give either PATH or --running")
    if running:
        from ingest.origins.running import ingest_running

        _ingest_summary(ingest_running(db_path, root, identity, replace=replace), db_path, timings)
        return
    assert path is not None
    from ingest.origins import btfhub

    if btfhub.is_archive(path) or (path.is_dir() and btfhub.archives(path)):
        _ingest_btfhub(path, db_path, identity, replace, timings)
        return
    if config is None and (path.parent / "config").is_file() and path.name != "config":
        config = path.parent / "config"
    tree = store.modules_dir(path) if modules is None and path.is_file() else None
    if modules is not None and modules != "none":
        tree = Path(modules)
    result = pipeline.ingest(
        path,
        db_path,
        identity,
        replace=replace,
        jobs=jobs,
        progress=_progress_bar("DWARF units"),
        kallsyms=kallsyms,
        config=config,
        modules=tree,
        module_progress=_progress_bar("modules") if tree is not None else None,
    )
    _ingest_summary(result, db_path, timings)


def _ingest_btfhub(
    path: Path, db_path: Path, identity: pipeline.Identity, replace: bool, timings: bool
) -> None:
    """One BTFHub archive, or every archive of a BTFHub tree (exit status 1 when any failed)."""
    from ingest.origins import btfhub

    if not path.is_dir():
        _ingest_summary(btfhub.ingest_archive(path, db_path, identity, replace), db_path, timings)
        return
    failed = 0
    for walked in btfhub.ingest_tree(path, db_path, replace):
        if walked.result is None:
            failed += 1
            click.echo(f"error: {walked.error}", err=True)
        else:
            _ingest_summary(walked.result, db_path, timings)
    if failed:
        raise click.ClickException(
            f"{failed} archive(s) of {path} failed (see above); the others are in {db_path}"
        )


def _ingest_summary(result: pipeline.IngestResult, db_path: Path, timings: bool = False) -> None:
    """The one-line summary of an ingest, and a warning per unreadable module."""
    from ingest.modules.tree import summary as module_summary
    from ingest.origins.facts import unknown

    if result.skipped or result.build is None:
        click.echo(f"{result.name}: already in {db_path} (same build-id); use --replace to re-ingest")
        return
    b = result.build
    structs = sum(1 for x in b.layouts if x.kind != "enum")
    click.echo(
        f"{result.name}: {len(b.functions)} functions, {len(b.instances)} instances, "
        f"{sum(c.sites for c in b.calls)} caller sites ({len(b.calls)} edges), {len(b.symbols)} symbols, "
        f"{structs} structs/unions, {len(b.tracepoints)} tracepoints, {len(b.syscalls)} syscalls, "
        f"{len(b.lsm_hooks)} LSM hooks, {len(b.kfuncs)} kfuncs, {len(b.config)} config options"
        + (f", {module_summary(b.modules)}" if b.modules is not None else "")
        + f" in {result.seconds:.1f} s, "
        f"{result.bytes_added / 1e6:.1f} MB added to {db_path}"
    )
    for m in b.modules or ():
        if m.error:
            click.echo(f"warning: module {m.path} unreadable: {m.error}", err=True)
    if b.sources and (missing := unknown(b.sources)):
        click.echo(f"unknown for this build: {', '.join(missing)}")
    if b.info.release is None:
        click.echo(
            f"note: the input does not say its kernel release, so the build is named {result.name}; "
            'give --release (e.g. --release "$(uname -r)") and --replace to name it'
        )
    if timings:
        click.echo("phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.phases.items()))


# --------------------------------------------------------------------------- fetch


@cli.group()
def fetch() -> None:
    """Fetch kernel debug images from distribution archives into the cache.

    Images are cached under $XDG_CACHE_HOME/kernsurf (default ~/.cache/kernsurf),
    one directory per package and version; only the vmlinux, the kernel config
    and the debug modules (zstd-compressed, in modules/) are kept, never the .deb.

    \b
      kernsurf fetch debian 6.1.0-56-amd64 --suite bookworm
      kernsurf fetch debian linux-image-6.12.113+deb13-arm64-dbg --suite trixie
      kernsurf fetch list debian --suite trixie --arch arm64
    """


@fetch.command("debian")
@click.argument("package_or_release")
@click.option(
    "--suite",
    default="bookworm",
    show_default=True,
    help="Debian suite; its -updates and -security suites are searched too.",
)
@click.option(
    "--arch", type=click.Choice(debian.ARCHES), help="Architecture (default: from the flavor, else amd64)."
)
@mirror_option(
    f"Debian mirror (default: ${debian.ENV_MIRROR}, else the machine's APT sources, else {debian.DEFAULT_MIRROR})."
)
@click.option("--no-config", is_flag=True, help="Do not fetch the kernel config from the image package.")
@click.option(
    "--modules/--no-modules",
    default=True,
    show_default=True,
    help="Also keep the package's debug modules (.ko.zst in the cache entry's modules/).",
)
def fetch_debian(
    package_or_release: str, suite: str, arch: str | None, mirror: str | None, no_config: bool, modules: bool
) -> None:
    """Fetch the vmlinux of a Debian debug kernel and print its path.

    PACKAGE_OR_RELEASE is a package (linux-image-6.1.0-56-amd64-dbg), a kernel
    release (6.1.0-56-amd64), an ABI (6.1.0-56: the arch's default flavor) or a
    flavor (cloud-amd64: its newest release). The download is checked against
    the archive index's SHA256; a cached image is reused.
    """
    ref = debian.resolve(package_or_release, suite=suite, arch=arch, mirror=mirror)
    click.echo(f"{ref.name} {ref.version} ({ref.suite}, {human_size(ref.size)})", err=True)
    image = debian.fetch(
        ref, progress=_progress_bar("downloading"), config=not no_config, mirror=mirror, modules=modules
    )
    _fetched(image)


@fetch.command("ubuntu")
@click.argument("package_or_release")
@click.option(
    "--suite",
    default="noble",
    show_default=True,
    help="Ubuntu suite; its -updates and -security are searched too.",
)
@click.option(
    "--flavor", help="Flavor for an ABI such as 6.8.0-31 (default: generic): aws, azure, gcp, lowlatency, ..."
)
@click.option("--arch", type=click.Choice(ubuntu.ARCHES), help="Architecture (default: amd64).")
@mirror_option(f"ddebs mirror (default: ${ubuntu.ENV_DDEBS}, else {ubuntu.DDEBS}).")
@click.option(
    "--archive",
    metavar="URL",
    help=f"Main archive holding the config package (default: ${ubuntu.ENV_ARCHIVE}, else Ubuntu's archive or ports).",
)
@click.option("--no-config", is_flag=True, help="Do not fetch the kernel config (linux-modules-<release>).")
@click.option(
    "--modules/--no-modules",
    default=True,
    show_default=True,
    help="Also keep the dbgsym package's debug modules.",
)
def fetch_ubuntu(
    package_or_release: str,
    suite: str,
    flavor: str | None,
    arch: str | None,
    mirror: str | None,
    archive: str | None,
    no_config: bool,
    modules: bool,
) -> None:
    """Fetch the vmlinux of an Ubuntu debug kernel (a .ddeb from a ddebs mirror) and print its path.

    PACKAGE_OR_RELEASE is a package (linux-image-unsigned-6.8.0-31-generic-dbgsym), a
    release (6.8.0-31-generic, 6.8.0-1008-aws), an ABI (6.8.0-31, with --flavor) or a
    flavor (aws: its newest release). Checked against the index's SHA256; cached once.
    """
    ref = ubuntu.resolve(package_or_release, suite=suite, arch=arch, mirror=mirror, flavor=flavor)
    click.echo(f"{ref.name} {ref.version} ({ref.suite}, {human_size(ref.size)})", err=True)
    image = ubuntu.fetch(
        ref, progress=_progress_bar("downloading"), config=not no_config, archive=archive, modules=modules
    )
    _fetched(image)


def _fetched(image: store.FetchedImage) -> None:
    """What a fetch from an archive did, on stderr; the vmlinux path on stdout."""
    for warning in image.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        "already in the cache" if image.cached else f"downloaded {human_size(image.downloaded)}", err=True
    )
    if image.config_path:
        click.echo(f"config: {image.config_path}", err=True)
    if image.modules_path:
        click.echo(f"modules: {image.modules_path}", err=True)
    click.echo(str(image.path))


@fetch.command("rpm")
@click.argument("package_or_release")
@click.option(
    "--repo",
    metavar="URL",
    envvar="KERNSURF_RPM_REPO",
    required=True,
    help="The debuginfo repository (the URL holding repodata/; default: $KERNSURF_RPM_REPO).",
)
@click.option(
    "--distro",
    default="rpm",
    show_default=True,
    help="Cache and build distro name: fedora, centos, alma, ...",
)
@click.option("--arch", help="Only packages of this RPM arch (x86_64, aarch64, ...).")
@click.option(
    "--modules/--no-modules", default=True, show_default=True, help="Also keep the package's debug modules."
)
def fetch_rpm(package_or_release: str, repo: str, distro: str, arch: str | None, modules: bool) -> None:
    """Fetch the vmlinux of an RPM distribution's kernel-debuginfo and print its path.

    PACKAGE_OR_RELEASE is a package name (kernel-debuginfo: its newest), a
    version (6.8.5-301.fc40) or a release (6.8.5-301.fc40.x86_64). The package
    is found from repodata/repomd.xml and its primary index, streamed once and
    checked against the index's SHA256.
    """
    from ingest.archive import rpm

    ref = rpm.resolve(package_or_release, repo, arch=arch, distro=distro)
    click.echo(f"{ref.name} {ref.version} {ref.arch} ({human_size(ref.size)})", err=True)
    _fetched(rpm.fetch(ref, progress=_progress_bar("downloading"), modules=modules))


@fetch.command("debuginfod")
@click.argument("build_id", required=False)
@click.option(
    "--running", is_flag=True, help="The running kernel's build-id, its loaded modules' and its config."
)
@click.option(
    "--url",
    "urls",
    metavar="URL",
    help="Servers to ask, space-separated, in order (default: $DEBUGINFOD_URLS).",
)
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default="/",
    help="With --running: read /sys, /proc and /boot below this directory.",
)
@click.option(
    "--module",
    "module_ids",
    multiple=True,
    metavar="NAME=BUILD-ID",
    help="Also fetch this module's debug file by its build-id (repeatable; --running finds the loaded ones).",
)
def fetch_debuginfod(
    build_id: str | None, running: bool, urls: str | None, root: Path, module_ids: tuple[str, ...]
) -> None:
    """Fetch a debug vmlinux by its GNU build-id from debuginfod servers and print its path.

    The file is checked to carry the build-id asked for; a broken transfer is
    resumed. With --running, the loaded modules' debug files come too, by their
    build-ids, where a server has them.
    """
    from ingest.archive import debuginfod

    if running == (build_id is not None):
        raise click.UsageError("give either BUILD_ID or --running")
    servers = debuginfod.servers(urls)
    progress = _progress_bar("downloading")
    modules = dict(debuginfod.module_id(text) for text in module_ids)
    if running:
        image = debuginfod.fetch_running(servers, root, progress=progress, modules=modules)
    else:
        assert build_id is not None
        image = debuginfod.fetch(build_id, servers, progress=progress, modules=modules or None)
    click.echo(
        "already in the cache"
        if image.cached
        else f"downloaded {human_size(image.downloaded)} from {image.url}",
        err=True,
    )
    if image.modules_missing:
        click.echo(
            f"warning: no server has the debug file of {len(image.modules_missing)} module(s): "
            + ", ".join(image.modules_missing),
            err=True,
        )
    if image.config_path:
        click.echo(f"config: {image.config_path}", err=True)
    if image.modules_path:
        click.echo(f"modules: {image.modules_path}", err=True)
    click.echo(str(image.path))


@fetch.command("list")
@click.argument("distro", type=click.Choice(["debian", "ubuntu"]))
@click.option(
    "--suite",
    help="Suite to list (default: bookworm, noble for ubuntu); its -updates and -security suites are included.",
)
@click.option(
    "--arch",
    type=click.Choice(sorted({*debian.ARCHES, *ubuntu.ARCHES})),
    help="Only this architecture (default: all).",
)
@mirror_option("Mirror to ask (default as for `fetch debian` / `fetch ubuntu`).")
def fetch_list(distro: str, suite: str | None, arch: str | None, mirror: str | None) -> None:
    """List the debug kernels an archive offers: release, arch, flavor, version, size.

    A * in the last column marks images already in the local cache.
    """
    suite = suite or ("noble" if distro == "ubuntu" else "bookworm")
    lister = ubuntu.list_debug_kernels if distro == "ubuntu" else debian.list_debug_kernels
    refs = lister(suite, arch, mirror)
    rows = [
        (
            r.release,
            r.arch,
            r.flavor,
            r.version,
            f"{r.size / 1e6:.0f}",
            r.suite,
            "*" if store.cached_image(r) else "",
        )
        for r in refs
    ]
    _table(("release", "arch", "flavor", "version", "size MB", "suite", "cached"), rows, right=(4,))
    click.echo(f"{len(rows)} debug kernels in {suite} for {arch or 'all architectures'}", err=True)


# --------------------------------------------------------------------------- build


@cli.command("build")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@db_option("SQLite database to fill (created if missing).")
@click.option(
    "-j",
    "--jobs",
    default=2,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Parallel downloads (the ingest itself runs one build at a time on all cores).",
)
@mirror_option("Debian mirror (default as for `fetch debian`).")
@click.option("--no-config", is_flag=True, help="Do not fetch kernel configs.")
@click.option(
    "--modules/--no-modules", default=True, show_default=True, help="Also fetch each package's debug modules."
)
@click.option(
    "--prune",
    is_flag=True,
    help="Delete each image and its modules from the cache once in the database (disk stays at about -j + 1 images).",
)
def build_command(
    manifest_path: Path,
    db_path: Path,
    jobs: int,
    mirror: str | None,
    no_config: bool,
    modules: bool,
    prune: bool,
) -> None:
    """Fetch and ingest the builds a manifest lists, and record its groups.

    Incremental: builds already in the database are not fetched again, so
    re-running after adding one build to the manifest fetches and ingests only
    that one. Then the groups are stored and the post-build steps
    (differences, search index) run. See manifests/default.yml for the format.
    """
    from ingest.catalog import batch, manifest

    spec = manifest.load(manifest_path)
    fetcher = batch.DebianFetcher(mirror, config=not no_config, modules=modules)
    try:
        result = batch.build(
            spec,
            db_path,
            jobs=jobs,
            fetcher=fetcher,
            prune=prune,
            report=lambda line: click.echo(line, err=True),
        )
    except batch.BuildError as exc:
        assert isinstance(exc.result, batch.BuildResult)
        _build_table(exc.result, db_path)
        raise
    except sqlite3.Error as exc:
        raise click.ClickException(f"{db_path}: {exc}") from None
    _build_table(result, db_path)


def _build_table(result: batch.BuildResult, db_path: Path) -> None:
    """The per-build table of `kernsurf build`, its failures on stderr, and a summary line."""
    rows = [
        (
            r.spec.id,
            r.name or r.spec.label,
            r.state,
            "" if r.cached is None else "cache" if r.cached else f"{r.fetch_seconds:.0f}",
            f"{r.ingest_seconds:.0f}" if r.ingest_seconds else "",
            f"{r.downloaded / 1e6:.0f}" if r.downloaded else "",
            f"{r.db_size / 1e6:.0f}" if r.db_size else "",
        )
        for r in result.rows
    ]
    _table(
        ("build", "name", "state", "fetch s", "ingest s", "downloaded MB", "DB MB"), rows, right=(3, 4, 5, 6)
    )
    for r in result.failed:
        click.echo(f"{r.spec.id}: {r.error}", err=True)
    hooks = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.finalizers)
    click.echo(
        f"{len(result.rows)} builds in {result.seconds:.0f} s, downloaded {human_size(result.downloaded)}, "
        f"{db_path} is {human_size(result.db_size)}; {result.groups} groups" + (f"; {hooks}" if hooks else "")
    )


# --------------------------------------------------------------------------- diff


@cli.command("diff")
@click.argument("build_a")
@click.argument("build_b")
@db_option("SQLite database holding both builds.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Only these items (function, struct, union, enum, type) or change kinds "
    "('param type changed', 'field offset changed', ...); repeatable.",
)
@click.option(
    "--name",
    "pattern",
    metavar="PATTERN",
    help="Only items with this name, or matching this glob (dma_buf*).",
)
@json_option
@click.option(
    "--store", is_flag=True, help="Also store the changes in the database (table changes, view change_list)."
)
def diff_command(
    build_a: str,
    build_b: str,
    db_path: Path,
    kinds: tuple[str, ...],
    pattern: str | None,
    as_json: bool,
    store: bool,
) -> None:
    """What changed from BUILD_A to BUILD_B: functions (parameters, return
    type, inline/transformation/collision/symbol status, kprobe/fentry
    attachability), structs and unions (fields, offsets, size), enums (values),
    tracepoints, syscalls, LSM hooks, kfuncs and config options.

    Builds are named by their name (kernsurf ingest --label), their id, or a
    prefix of their ELF build-id.

    \b
      kernsurf diff 6.1.0-56-amd64 6.12.113+deb13-amd64 --kind struct --name 'dma_buf*'
      kernsurf diff 1 2 --kind 'param type changed' --json
    """
    import json

    from ingest import db
    from ingest.changes import diff

    _existing(db_path, "create it with `kernsurf ingest` or `kernsurf build`")
    conn = db.connect(db_path)
    try:
        result = diff.compare(conn, build_a, build_b, kinds, pattern)
        if store:
            if kinds or pattern:
                raise click.ClickException("--store keeps whole diffs only: drop --kind and --name")
            pair = diff.store_pair(conn, result.id_a, result.id_b, result.changes)
            click.echo(f"stored {len(result.changes)} changes as pair {pair} in {db_path}", err=True)
    finally:
        conn.close()
    click.echo(json.dumps(result.as_dict(), indent=1) if as_json else result.text())


@cli.command("delete")
@click.argument("builds", nargs=-1, required=True, metavar="BUILD...")
@db_option("The kernsurf database to delete the builds from.")
def delete_command(builds: tuple[str, ...], db_path: Path) -> None:
    """Delete builds from the database: their rows, their places in groups,
    the stored differences of pairs they are in, and the shared names, texts,
    prototypes and layouts no other build uses. Builds are named as for
    `kernsurf diff` (name, id or build-id prefix); each is deleted in one transaction.

    \b
      kernsurf delete 6.12.107+deb13-amd64 --db kernels.db
    """
    from ingest import db
    from ingest.changes import diff

    _existing(db_path, "there is nothing to delete")
    conn = db.connect(db_path)
    try:
        for ref in builds:
            build = diff.resolve_build(conn, ref)
            removed = db.delete_build(conn, build)
            shared = ", ".join(f"{n} {table}" for table, n in removed.items() if n) or "no shared rows"
            click.echo(f"deleted {ref} (and {shared} only it used) from {db_path}")
    finally:
        conn.close()


@cli.command("merge")
@click.argument("shards", nargs=-1, required=True, metavar="SHARD...", type=click.Path(path_type=Path))
@db_option("The database to merge into (created if missing).")
def merge_command(shards: tuple[Path, ...], db_path: Path) -> None:
    """Add the builds of other kernsurf databases (shards built on other
    machines) that DB lacks, with their groups; each shard in one transaction,
    each fact still stored once (docs/storage.md#merging-shards). A build
    already in DB (same build-id) is skipped. Then the groups' differences and
    the search index are brought up to date, as after `kernsurf build`.

    \b
      kernsurf merge shard-1.db shard-2.db --db kernels.db
    """
    from ingest import db
    from ingest.catalog.batch import finalizers
    from ingest.db.merge import merge

    conn = db.connect(db_path)
    try:
        for shard in shards:
            done = merge(conn, shard, say=lambda line: click.echo(line, err=True))
            skipped = f" ({len(done.skipped)} already in {db_path})" if done.skipped else ""
            click.echo(f"merged {len(done.merged)} builds from {shard}{skipped}")
        for finalize in finalizers():
            click.echo(f"running {finalize.__module__}.{finalize.__qualname__}", err=True)
            finalize(conn)
    finally:
        conn.close()


# --------------------------------------------------------------------------- check


@cli.command("check")
@click.argument("objects", nargs=-1, type=click.Path(path_type=Path))
@db_option("The kernsurf database to check against.")
@click.option("--group", help="Only the builds of this group (e.g. Regular), compared in its order.")
@click.option(
    "--dep",
    "deps",
    multiple=True,
    metavar="KIND:NAME",
    help="An extra dependency, e.g. kprobe:vmap, field:dma_buf_ops.vmap, tracepoint:sched/sched_switch.",
)
@click.option(
    "--retarget",
    "retargets",
    multiple=True,
    metavar="PROGRAM=FUNCTION",
    help="The attach target the loader really gives PROGRAM (bpf_program__set_attach_target), "
    "e.g. file_read_entry=ext4_file_read_iter; repeatable.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default=None,
    help="Output: a terminal table (default), JSON, or Markdown for CI job summaries and PR comments.",
)
@json_option
@click.option(
    "--summary",
    is_flag=True,
    help="Per object and build: works / works with warnings / fails / unknown, and the causes by reason code.",
)
@click.option("--strict", is_flag=True, help="Exit with status 2 when any dependency fails on any build.")
@click.option(
    "--fail-on",
    type=click.Choice(["fail", "warn", "unknown"]),
    default=None,
    help="Exit with status 2 when any cell is at least this bad (ok < unknown < warn < fail).",
)
def check_command(
    objects: tuple[Path, ...],
    db_path: Path,
    group: str | None,
    deps: tuple[str, ...],
    retargets: tuple[str, ...],
    fmt: str | None,
    as_json: bool,
    summary: bool,
    strict: bool,
    fail_on: str | None,
) -> None:
    """Will these BPF programs work on these kernels? Reads each compiled BPF
    object (clang -target bpf -g): its program sections (kprobe/, fentry/,
    tp/, raw_tp/, tp_btf/, lsm/, ksyscall/, kprobe.multi/, iter/,
    struct_ops/ ...), CO-RE field/type/enum accesses and kfunc calls, and
    checks every dependency on every build: ✓ ok, ⚠ works but look (partly
    inlined, ambiguous, changed since the previous build of its group,
    absent but guarded by the program), ✗ fails (absent, inlined,
    transformed, not attachable, a config option missing), ? not recorded
    or in no build. Each verdict has a stable reason code (docs/concepts.md).

    Exit status: 0, 1 on an error, 2 with --strict (any ✗) or --fail-on
    LEVEL (any cell at least that bad).

    \b
      kernsurf check prog.bpf.o --db kernels.db
      kernsurf check prog.bpf.o --group Regular --format json
      kernsurf check *.bpf.o --summary --format markdown >> "$GITHUB_STEP_SUMMARY"
      kernsurf check fsslower.bpf.o --retarget file_read_entry=ext4_file_read_iter
      kernsurf check --dep kprobe:vmap --dep field:dma_buf_ops.vmap --strict
    """
    import json

    from ingest.bpf import check

    if as_json and fmt not in (None, "json"):
        raise click.UsageError("--json is --format json; give one of them")
    fmt = "json" if as_json else fmt or "text"
    report = check.check_objects(db_path, objects, deps, group, retargets)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=1, ensure_ascii=False))
    elif summary:
        click.echo(report.summary_text(markdown=fmt == "markdown"))
        for note in report.notes:
            click.echo(f"note: {note}" if fmt == "text" else f"> {note}")
    else:
        click.echo(report.markdown() if fmt == "markdown" else report.text())
    bar = fail_on or ("fail" if strict else None)
    if bar is not None and report.at_least(bar):
        sys.exit(2)


# --------------------------------------------------------------------------- index, serve


@cli.command("index")
@db_option("The kernsurf database whose search index to refill.")
def index_command(db_path: Path) -> None:
    """Refill the name search index (/search, the name_search table) with
    every function, type, tracepoint, syscall, LSM hook, kfunc and config
    option name. `kernsurf serve` does this itself when the database changed.
    """
    from ingest.web import serve

    click.echo(f"search index: {serve.search_index(db_path)} names in {db_path}")


@cli.command("serve", context_settings={"ignore_unknown_options": True})
@click.argument("db_path", metavar="DB", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8001, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--prepare-only", is_flag=True, help="Only refresh the search index and the inspect file; do not serve."
)
@click.option(
    "--public",
    is_flag=True,
    help="For strangers: the /-/ information endpoints off, security headers on (docs/serving.md#limits).",
)
@click.option(
    "--download/--no-download", default=True, show_default=True, help="Offer the .db file at /kernels."
)
@click.option(
    "--time-limit",
    "time_limit",
    default=3000,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="MS",
    help="Time limit of any one SQL query (pages, /check, ad-hoc SQL); a /check over it gets a 503.",
)
@click.option(
    "--sql-threads",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="SQL threads; /check and ad-hoc SQL hold at most one each, the rest serve the pages.",
)
@click.argument("datasette_options", nargs=-1, type=click.UNPROCESSED)
def serve_command(
    db_path: Path,
    host: str,
    port: int,
    prepare_only: bool,
    public: bool,
    download: bool,
    time_limit: int,
    sql_threads: int,
    datasette_options: tuple[str, ...],
) -> None:
    """Serve DB read-only with Datasette and the kernsurf pages.

    When DB is newer than DB.inspect.json beside it, first refill the search
    index and write that inspect file (`datasette inspect`). Then serve it
    immutable with the packaged metadata, templates and plugins. Options
    kernsurf does not know are passed to `datasette serve`.

    \b
      kernsurf serve kernels.db --port 8080
      kernsurf serve kernels.db --public --no-download --host 0.0.0.0
    """
    from ingest.web import serve

    profile = serve.Profile(
        public=public, download=download, sql_time_limit_ms=time_limit, sql_threads=sql_threads
    )
    serve.serve(db_path, host, port, datasette_options, prepare_only, profile=profile)


# --------------------------------------------------------------------------- publish, pull


@cli.command("publish")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@db_option("The database to publish (only read: DIR gets a copy).")
@click.option(
    "--level",
    default=DEFAULT_LEVEL,
    show_default=True,
    type=click.IntRange(1, 22),
    help="zstd compression level of DB.zst.",
)
def publish_command(out_dir: Path, db_path: Path, level: int) -> None:
    """Write the read-only artefact of a database into DIR: the database with its
    search index built and VACUUMed (a copy: the source is not touched), its
    zstd-compressed copy DB.zst, and manifest.json (builds, format and schema
    version, sizes, sha256) for `kernsurf pull`.

    \b
      kernsurf publish site/ --db kernels.db
    """
    from ingest.publish import artefact as publish

    done = publish.publish(db_path, out_dir, level, report=lambda line: click.echo(line, err=True))
    m = done.manifest
    click.echo(
        f"published {len(m.builds)} builds (schema {m.schema_version}, format {m.format}, "
        f"{done.names} names indexed) in {done.seconds:.1f} s to {out_dir}: {m.database.file} "
        f"{human_size(m.database.size)}, {m.compressed.file} {human_size(m.compressed.size)} "
        f"({m.database.size / max(m.compressed.size, 1):.1f}x), {publish.MANIFEST}"
    )


@cli.command("export")
@click.argument("out", type=click.Path(path_type=Path))
@db_option("The kernsurf database to export from (only read).")
@click.option(
    "--build",
    "builds",
    multiple=True,
    metavar="BUILD",
    help="A build to keep (name, id or build-id prefix); repeatable.",
)
@click.option(
    "--group", "groups", multiple=True, metavar="GROUP", help="Keep the builds of this group; repeatable."
)
@click.option(
    "--arch", "arches", multiple=True, metavar="ARCH", help="Keep the builds of this arch; repeatable."
)
@click.option("--since", metavar="RELEASE", help="Keep the builds of this release and later (e.g. 6.1).")
def export_command(
    out: Path,
    db_path: Path,
    builds: tuple[str, ...],
    groups: tuple[str, ...],
    arches: tuple[str, ...],
    since: str | None,
) -> None:
    """Write OUT, a new standalone database holding only the selected builds
    (those every given option admits) and what they use, with the same schema,
    views and pages: `kernsurf serve OUT` serves it.

    \b
      kernsurf export small.db --db kernels.db --arch arm64 --since 6.12
    """
    from ingest.publish.export import Selection, export

    _existing(db_path, "there is nothing to export")
    done = export(db_path, out, Selection(builds=builds, groups=groups, arches=arches, since=since))
    size = out.stat().st_size / 1e6
    click.echo(f"exported {len(done.kept)} builds ({', '.join(done.kept)}) to {out}: {size:.1f} MB")


@cli.command("pull")
@click.argument("url")
@db_option("Where to write the downloaded database.")
@click.option(
    "--replace", is_flag=True, help="Overwrite DB when it exists and is not the published database."
)
def pull_command(url: str, db_path: Path, replace: bool) -> None:
    """Download the database `kernsurf publish` published at URL (its
    manifest.json, or the directory holding it; http, https or a local
    path): refuse a format this kernsurf
    cannot read, resume an interrupted download, check the sha256,
    decompress, and only then replace DB.

    \b
      kernsurf pull https://example.org/kernels/ --db kernels.db
    """
    from ingest.publish import pull

    done = pull.pull(url, db_path, replace, progress=_progress_bar("downloading"))
    m = done.manifest
    what = f"{len(m.builds)} builds, schema {m.schema_version}, published {m.published_at}"
    if done.up_to_date:
        click.echo(f"{db_path} is already the published database ({what})")
        return
    resumed = f", resumed at {human_size(done.resumed_from)}" if done.resumed_from else ""
    click.echo(
        f"{db_path}: {human_size(m.database.size)} ({what}); downloaded {human_size(done.downloaded)}{resumed}"
    )
