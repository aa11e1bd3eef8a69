"""The files kernsurf ships beside its code: schema.sql, and what Datasette
serves (metadata.yml, templates/, plugins/).

The repository's top-level files are the one source. A wheel carries copies
that setup.py writes at build time: schema.sql beside the package modules
(`db.schema_sql()` reads it through `shipped`), the Datasette files under `_datasette/`. A
checkout or an editable install has no copies and reads the top-level files.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent

#: Where each shipped file lives inside the package of a wheel (setup.py writes them there).
PACKAGED = {
    "schema.sql": "schema.sql",
    "metadata.yml": "_datasette/metadata.yml",
    "templates": "_datasette/templates",
    "plugins": "_datasette/plugins",
}


def shipped(name: str) -> Path:
    """The path of a shipped file or directory (a key of PACKAGED): the
    wheel's copy when installed from one, else the checkout's top-level file."""
    for candidate in (_PACKAGE / PACKAGED[name], _CHECKOUT / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name}: neither in the installed package nor in a checkout at {_CHECKOUT}")


def metadata_path() -> Path:
    """Datasette's metadata.yml (canned queries, plugin settings)."""
    return shipped("metadata.yml")


def templates_dir() -> Path:
    """Datasette's template directory (the kernsurf pages)."""
    return shipped("templates")


def plugins_dir() -> Path:
    """Datasette's plugins directory (the kernsurf hooks)."""
    return shipped("plugins")
