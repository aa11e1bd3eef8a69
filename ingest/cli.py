"""kernsurf command line: thin wrappers over the ingest library."""
from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="kernsurf")
def cli() -> None:
    """kernsurf: what a Linux kernel build exposes, and how it changes."""
