"""kernsurf command line: thin wrappers over the ingest library."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click

from ingest import batch as builder
from ingest import manifest, pipeline
from ingest.archive import debian
from ingest.archive.store import human_size
from ingest.errors import ArchiveError


@click.group()
@click.version_option(package_name="kernsurf")
def cli() -> None:
    """kernsurf: what a Linux kernel build exposes, and how it changes."""


def _progress_bar(label: str):
    """A callback progress(done, total) drawing a click progress bar on stderr."""
    state: dict = {}

    def progress(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = click.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    return progress


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--db",
    "db_path",
    default="kernels.db",
    show_default=True,
    type=click.Path(path_type=Path),
    help="SQLite database to add the build to (created if missing).",
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
@click.option("--replace", is_flag=True, help="Replace the build if its build-id is already stored.")
@click.option("-j", "--jobs", type=int, help="Processes for the DWARF walk (default: all cores).")
@click.option("--timings", is_flag=True, help="Also print seconds per phase.")
def ingest(
    path: Path,
    db_path: Path,
    distro,
    pkg_version,
    release,
    arch,
    flavor,
    label,
    kallsyms,
    config: Path | None,
    replace: bool,
    jobs,
    timings: bool,
) -> None:
    """Ingest one kernel image (vmlinux with DWARF/BTF, or a raw BTF file) as a build."""
    identity = pipeline.Identity(distro, pkg_version, release, arch, flavor, label)
    if config is None and (path.parent / "config").is_file() and path.name != "config":
        config = path.parent / "config"
    try:
        result = pipeline.ingest(
            path,
            db_path,
            identity,
            replace=replace,
            jobs=jobs,
            progress=_progress_bar("DWARF units"),
            kallsyms=kallsyms,
            config=config,
        )
    except pipeline.IngestError as exc:
        raise click.ClickException(str(exc)) from None
    if result.skipped:
        click.echo(f"{result.name}: already in {db_path} (same build-id); use --replace to re-ingest")
        return
    b = result.build
    structs = sum(1 for x in b.layouts if x.kind != "enum")
    click.echo(
        f"{result.name}: {len(b.functions)} functions, {len(b.instances)} instances, "
        f"{sum(c.sites for c in b.calls)} caller sites ({len(b.calls)} edges), {len(b.symbols)} symbols, "
        f"{structs} structs/unions, {len(b.tracepoints)} tracepoints, {len(b.syscalls)} syscalls, "
        f"{len(b.lsm_hooks)} LSM hooks, {len(b.kfuncs)} kfuncs, {len(b.config)} config options "
        f"in {result.seconds:.1f} s, "
        f"{result.bytes_added / 1e6:.1f} MB added to {db_path}"
    )
    if timings:
        click.echo("phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.phases.items()))


# --------------------------------------------------------------------------- fetch


@cli.group()
def fetch() -> None:
    """Fetch kernel debug images from distribution archives into the cache.

    Images are cached under $XDG_CACHE_HOME/kernsurf (default ~/.cache/kernsurf),
    one directory per package and version; only the vmlinux (and the kernel
    config) is kept, never the .deb.

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
@click.option(
    "--mirror",
    metavar="URL",
    help=f"Debian mirror (default: ${debian.ENV_MIRROR}, else the machine's APT sources, else {debian.DEFAULT_MIRROR}).",
)
@click.option("--no-config", is_flag=True, help="Do not fetch the kernel config from the image package.")
def fetch_debian(
    package_or_release: str, suite: str, arch: str | None, mirror: str | None, no_config: bool
) -> None:
    """Fetch the vmlinux of a Debian debug kernel and print its path.

    PACKAGE_OR_RELEASE is a package (linux-image-6.1.0-56-amd64-dbg), a kernel
    release (6.1.0-56-amd64), an ABI (6.1.0-56: the arch's default flavor) or a
    flavor (cloud-amd64: its newest release). The download is checked against
    the archive index's SHA256; a cached image is reused.
    """
    try:
        ref = debian.resolve(package_or_release, suite=suite, arch=arch, mirror=mirror)
        click.echo(f"{ref.name} {ref.version} ({ref.suite}, {human_size(ref.size)})", err=True)
        image = debian.fetch(ref, progress=_progress_bar("downloading"), config=not no_config, mirror=mirror)
    except ArchiveError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in image.warnings:
        click.echo(f"warning: {warning}", err=True)
    if image.cached:
        click.echo("already in the cache", err=True)
    else:
        click.echo(f"downloaded {human_size(image.downloaded)}", err=True)
    if image.config_path:
        click.echo(f"config: {image.config_path}", err=True)
    click.echo(str(image.path))


@fetch.command("list")
@click.argument("distro", type=click.Choice(["debian"]))
@click.option(
    "--suite",
    default="bookworm",
    show_default=True,
    help="Suite to list; its -updates and -security suites are included.",
)
@click.option("--arch", type=click.Choice(debian.ARCHES), help="Only this architecture (default: all).")
@click.option("--mirror", metavar="URL", help="Mirror to ask (default as for `fetch debian`).")
def fetch_list(distro: str, suite: str, arch: str | None, mirror: str | None) -> None:
    """List the debug kernels an archive offers: release, arch, flavor, version, size.

    A * in the last column marks images already in the local cache.
    """
    try:
        refs = debian.list_debug_kernels(suite, arch, mirror)
    except ArchiveError as exc:
        raise click.ClickException(str(exc)) from None
    rows = [
        (
            r.release,
            r.arch,
            r.flavor,
            r.version,
            f"{r.size / 1e6:.0f}",
            r.suite,
            "*" if debian.cached_image(r) else "",
        )
        for r in refs
    ]
    _table(("release", "arch", "flavor", "version", "size MB", "suite", "cached"), rows, right=(4,))
    click.echo(f"{len(rows)} debug kernels in {suite} for {arch or 'all architectures'}", err=True)


def _table(header: tuple[str, ...], rows: list[tuple], right: tuple[int, ...] = ()) -> None:
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


# --------------------------------------------------------------------------- build


@cli.command("build")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@click.option(
    "--db",
    "db_path",
    default="kernels.db",
    show_default=True,
    type=click.Path(path_type=Path),
    help="SQLite database to fill (created if missing).",
)
@click.option(
    "-j",
    "--jobs",
    default=2,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Parallel downloads (the ingest itself runs one build at a time on all cores).",
)
@click.option("--mirror", metavar="URL", help="Debian mirror (default as for `fetch debian`).")
@click.option("--no-config", is_flag=True, help="Do not fetch kernel configs.")
@click.option(
    "--prune",
    is_flag=True,
    help="Delete each image from the cache once it is in the database (disk stays at about -j + 1 images).",
)
def build_command(
    manifest_path: Path, db_path: Path, jobs: int, mirror: str | None, no_config: bool, prune: bool
) -> None:
    """Fetch and ingest the builds a manifest lists, and record its groups.

    Incremental: builds already in the database are not fetched again, so
    re-running after adding one build to the manifest fetches and ingests only
    that one. Then the groups are stored and the post-build steps
    (differences, search index) run. See manifests/default.yml for the format.
    """
    try:
        spec = manifest.load(manifest_path)
    except manifest.ManifestError as exc:
        raise click.ClickException(str(exc)) from None
    fetcher = builder.DebianFetcher(mirror, config=not no_config)
    try:
        result = builder.build(
            spec,
            db_path,
            jobs=jobs,
            fetcher=fetcher,
            prune=prune,
            report=lambda line: click.echo(line, err=True),
        )
    except builder.BuildError as exc:
        _build_table(exc.result, db_path)
        raise click.ClickException(str(exc)) from None
    except sqlite3.Error as exc:
        raise click.ClickException(f"{db_path}: {exc}") from None
    _build_table(result, db_path)


def _build_table(result, db_path: Path) -> None:
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
@click.option(
    "--db",
    "db_path",
    default="kernels.db",
    show_default=True,
    type=click.Path(path_type=Path),
    help="SQLite database holding both builds.",
)
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
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

    from ingest import db, diff

    if not db_path.exists():
        raise click.ClickException(
            f"{db_path}: no such database (create it with `kernsurf ingest` or `kernsurf build`)"
        )
    conn = db.connect(db_path)
    try:
        try:
            result = diff.compare(conn, build_a, build_b, kinds, pattern)
        except (diff.UnknownBuild, diff.BadKind) as exc:
            raise click.ClickException(str(exc.args[0])) from None
        if store:
            if kinds or pattern:
                raise click.ClickException("--store keeps whole diffs only: drop --kind and --name")
            pair = diff.store_pair(conn, result.id_a, result.id_b, result.changes)
            click.echo(f"stored {len(result.changes)} changes as pair {pair} in {db_path}", err=True)
    finally:
        conn.close()
    click.echo(json.dumps(result.as_dict(), indent=1) if as_json else result.text())


# --------------------------------------------------------------------------- check


@cli.command("check")
@click.argument("objects", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--db",
    "db_path",
    default="kernels.db",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The kernsurf database to check against.",
)
@click.option("--group", help="Only the builds of this group (e.g. Regular), compared in its order.")
@click.option(
    "--dep",
    "deps",
    multiple=True,
    metavar="KIND:NAME",
    help="An extra dependency, e.g. kprobe:vmap, field:dma_buf_ops.vmap, tracepoint:sched/sched_switch.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--strict", is_flag=True, help="Exit with status 2 when any dependency fails on any build.")
def check_command(
    objects: tuple[Path, ...],
    db_path: Path,
    group: str | None,
    deps: tuple[str, ...],
    as_json: bool,
    strict: bool,
) -> None:
    """Will these BPF programs work on these kernels? Reads each compiled BPF
    object (clang -target bpf -g): its program sections (kprobe/, fentry/,
    tp/, raw_tp/, tp_btf/, lsm/, ksyscall/, kprobe.multi/, iter/,
    struct_ops/ ...), CO-RE field/type/enum accesses and kfunc calls, and
    checks every dependency on every build: ✓ ok, ⚠ works but look (partly
    inlined, ambiguous, changed since the previous build of its group,
    absent but guarded by the program), ✗ fails (absent, inlined,
    transformed, not attachable and why), ? not recorded.

    \b
      kernsurf check prog.bpf.o --db kernels.db
      kernsurf check prog.bpf.o --group Regular --json
      kernsurf check --dep kprobe:vmap --dep field:dma_buf_ops.vmap
    """
    import json

    from ingest import db
    from ingest.bpf import check
    from ingest.bpf import objects as bpf_object

    if not objects and not deps:
        raise click.ClickException(
            "nothing to check: give a BPF object (clang -target bpf -g -O2 -c prog.c) or --dep"
        )
    try:
        dependencies = check.merge(
            [dep for path in objects for dep in _read_object(path, bpf_object)]
            + [check.parse_spec(text) for text in deps]
        )
    except check.BadDependency as exc:
        raise click.ClickException(str(exc)) from None
    if not db_path.exists():
        raise click.ClickException(
            f"{db_path}: no such database (create it with `kernsurf build` or `kernsurf ingest`)"
        )
    conn = db.open_readonly(db_path)
    try:
        report = check.evaluate(conn, dependencies, group)
    except LookupError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    except sqlite3.Error as exc:
        raise click.ClickException(f"{db_path}: not a kernsurf database ({exc})") from None
    finally:
        conn.close()
    click.echo(json.dumps(report.as_dict(), indent=1, ensure_ascii=False) if as_json else report.text())
    if strict and any(cell.level == "fail" for row in report.cells for cell in row):
        sys.exit(2)


def _read_object(path: Path, bpf_object) -> list:
    try:
        obj = bpf_object.read_bpf_object(path)
    except bpf_object.BadBpfObject as exc:
        raise click.ClickException(str(exc)) from None
    for section in obj.unknown_sections:
        click.echo(f"warning: {path}: unknown program section {section!r} (not checked)", err=True)
    return obj.dependencies
