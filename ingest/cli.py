"""kernsurf command line: thin wrappers over the ingest library."""
from __future__ import annotations

from pathlib import Path

import click

from . import pipeline


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
            bar = state["bar"] = click.progressbar(length=total, label=label, file=click.get_text_stream("stderr"))
            bar.__enter__()
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    return progress


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--db", "db_path", default="kernels.db", show_default=True, type=click.Path(path_type=Path),
              help="SQLite database to add the build to (created if missing).")
@click.option("--distro", help="Distribution, e.g. debian.")
@click.option("--version", "pkg_version", help="Package version, e.g. 6.1.192-2.")
@click.option("--release", help="Kernel release (default: from the image's linux_banner).")
@click.option("--arch", help="Architecture (default: from the ELF machine).")
@click.option("--flavor", help="Flavor (default: the release's suffix, e.g. amd64, cloud-amd64).")
@click.option("--label", help="Display name of the build (default: the release).")
@click.option("--kallsyms", "--system-map", "kallsyms", type=click.Path(exists=True, path_type=Path),
              help="For a BTF-only input: /proc/kallsyms or System.map with its symbols.")
@click.option("--replace", is_flag=True, help="Replace the build if its build-id is already stored.")
@click.option("-j", "--jobs", type=int, help="Processes for the DWARF walk (default: all cores).")
def ingest(path: Path, db_path: Path, distro, pkg_version, release, arch, flavor, label, kallsyms,
           replace: bool, jobs) -> None:
    """Ingest one kernel image (vmlinux with DWARF/BTF, or a raw BTF file) as a build."""
    identity = pipeline.Identity(distro, pkg_version, release, arch, flavor, label)
    try:
        result = pipeline.ingest(path, db_path, identity, replace=replace, jobs=jobs,
                                 progress=_progress_bar("DWARF units"), kallsyms=kallsyms)
    except pipeline.IngestError as exc:
        raise click.ClickException(str(exc)) from None
    if result.skipped:
        click.echo(f"{result.name}: already in {db_path} (same build-id); use --replace to re-ingest")
        return
    b = result.build
    structs = sum(1 for x in b.layouts if x.kind != "enum")
    click.echo(f"{result.name}: {len(b.functions)} functions, {len(b.instances)} instances, "
               f"{sum(c.sites for c in b.calls)} caller sites ({len(b.calls)} edges), {len(b.symbols)} symbols, "
               f"{structs} structs/unions in {result.seconds:.1f} s, "
               f"{result.bytes_added / 1e6:.1f} MB added to {db_path}")
