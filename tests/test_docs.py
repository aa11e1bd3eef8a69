"""The documentation keeps up with the code (sqlite-utils' test_docs pattern):
every command is in README.md's command table, every `check` dependency form
is in the README, every docs/concepts.md link in the repository has its
heading, and every name the library exports resolves."""

from __future__ import annotations

import re

import click
import pytest

import ingest
from ingest.cli import cli
from tests.support import ROOT

README = (ROOT / "README.md").read_text()
CONCEPTS = ROOT / "docs" / "concepts.md"


def _commands(group: click.Group, prefix: str = "kernsurf") -> list[str]:
    """`kernsurf ingest`, `kernsurf fetch debian`, ...: every leaf command."""
    out = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += _commands(command, f"{prefix} {name}")
        else:
            out.append(f"{prefix} {name}")
    return out


def _command_table() -> str:
    start = README.index("## Commands")
    return README[start : README.index("\n## ", start + 1)]


@pytest.mark.parametrize("command", _commands(cli))
def test_every_command_is_in_the_readme_table(command):
    rows = [line for line in _command_table().splitlines() if line.startswith("| `")]
    assert any(row.startswith(f"| `{command} ") or row.startswith(f"| `{command}`") for row in rows), command


def _spec_kinds() -> tuple[str, ...]:
    """Every head the KIND:NAME text form accepts, read from the code."""
    from ingest.bpf import check

    try:
        from ingest.bpf import spec
    except ImportError:
        spec = check
    kinds = getattr(spec, "SPEC_KINDS", None) or getattr(check, "SPEC_KINDS", None)
    if kinds is None:  # before ingest.bpf.spec: the tables of check.parse_spec
        kinds = (*check._PROGRAM_KINDS, *check._SECTION_ALIASES, *check._CHECKS)
    guarded = getattr(spec, "GUARDED_SPEC_KINDS", ())
    return tuple(dict.fromkeys((*kinds, *guarded)))


@pytest.mark.parametrize("kind", _spec_kinds())
def test_every_dependency_form_is_in_the_readme(kind):
    assert f"`{kind}:" in README, f"README.md has no example of the text form {kind}:NAME"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_concepts_links_have_their_headings():
    anchors = {
        _anchor(line.lstrip("#")) for line in CONCEPTS.read_text().splitlines() if re.match(r"#{1,6} ", line)
    }
    files = [ROOT / "schema.sql", ROOT / "metadata.yml", ROOT / "README.md"]
    for folder in ("ingest", "plugins", "templates", "docs", "scripts", "tests"):
        files += [
            p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".html", ".md", ".sql", ".yml")
        ]
    links = {
        (path.relative_to(ROOT), anchor)
        for path in files
        for anchor in re.findall(r"concepts\.md#([a-z0-9-]+)", path.read_text(errors="replace"))
    }
    assert links, "no links to docs/concepts.md found"
    missing = sorted(f"{path}: #{anchor}" for path, anchor in links if anchor not in anchors)
    assert not missing, missing


def test_concepts_has_the_linked_sections():
    text = CONCEPTS.read_text()
    for anchor in (
        "instances",
        "callers",
        "symbols-and-transformations",
        "function-status",
        "prototypes",
        "attachability",
        "types",
        "surfaces",
        "differences",
        "not-recorded",
    ):
        assert any(_anchor(line.lstrip("#")) == anchor for line in text.splitlines() if line.startswith("#"))


def test_concepts_names_every_change_kind():
    from ingest.changes.diff import CHANGE_KINDS

    text = CONCEPTS.read_text()
    for kind in CHANGE_KINDS:
        assert f"`{kind}`" in re.sub(r"\s+", " ", text), kind


def test_library_exports_resolve():
    for name in ingest.__all__:
        assert getattr(ingest, name) is not None, name
