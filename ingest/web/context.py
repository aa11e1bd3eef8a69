"""What every page shares: the builds, their groups, the tables present, and
URLs of canned queries and pages."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlencode

from ingest.queries import builds as builds_q
from ingest.queries import database as database_q
from ingest.queries.builds import BuildRow

MASK64 = (1 << 64) - 1
DIFF_TABLES = frozenset(("diff_pairs", "changes", "change_kinds", "change_list"))

#: The template context a page builder returns.
Page = dict[str, object]


@dataclass(frozen=True)
class Member:
    """A build in a group, under the group's label for it."""

    build: BuildRow
    label: str


@dataclass(frozen=True)
class Group:
    """Builds compared with each other (ingest.groups): a series or variants."""

    id: int | None  # None: the builds no group names
    name: str
    kind: str
    members: list[Member] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """Builds, groups and tables of one database (kept while it is immutable)."""

    tables: frozenset[str]
    builds: dict[int, BuildRow]
    groups: list[Group]

    @property
    def diffs(self) -> bool:
        """Whether the database has the tables of stored differences."""
        return DIFF_TABLES <= self.tables


def load_context(conn: sqlite3.Connection) -> Context:
    """The builds in version order and their groups; builds no group names
    form a last series, "Other builds" (or "All builds" when there are no groups)."""
    tables = frozenset(database_q.tables(conn))
    builds = {b.id: b for b in builds_q.builds(conn)}
    groups: list[Group] = []
    if {"groups", "group_members"} <= tables:
        for row in builds_q.group_members(conn):
            if row.build_id not in builds:
                continue
            if not groups or groups[-1].id != row.group_id:
                groups.append(Group(id=row.group_id, name=row.group, kind=row.kind))
            groups[-1].members.append(Member(builds[row.build_id], row.label))
    grouped = {m.build.id for g in groups for m in g.members}
    rest = [Member(b, b.name) for b in builds.values() if b.id not in grouped]
    if rest:
        groups.append(
            Group(id=None, name="Other builds" if groups else "All builds", kind="series", members=rest)
        )
    return Context(tables=tables, builds=builds, groups=groups)


def _plain_query_url(query: str, fmt: str | None) -> str:
    return f"/kernels/{query}" + (f".{fmt}" if fmt else "")


class Links:
    """URLs of canned queries; `query_url(query, format)` is Datasette's
    urls.query for the served database (a plain /kernels/... without a server)."""

    def __init__(self, query_url: Callable[[str, str | None], str] = _plain_query_url):
        self.query_url = query_url

    def url(self, query: str, fmt: str | None = None, **params: str | None) -> str:
        """URL of a canned query (or table) in `fmt` ("json", "csv") with parameters."""
        given = {k: v for k, v in params.items() if v is not None}
        return self.query_url(query, fmt) + ("?" + urlencode(given) if given else "")

    def data(self, query: str, **params: str | None) -> dict[str, str]:
        """{"html": ..., "json": ..., "csv": ...} for a canned query."""
        return {
            "html": self.url(query, **params),
            "json": self.url(query, "json", **params),
            "csv": self.url(query, "csv", _size="max", **params),
        }


def segment(name: str) -> str:
    """A name as one URL path segment: %-escaped, "+" and "." kept (6.12.1+deb13-amd64)."""
    return quote(name, safe="+")


def decode(raw: str) -> str:
    """A name from a URL segment (the page routes see the raw, %-escaped path)."""
    return unquote(raw)


def hex_address(address: int | None) -> str | None:
    """A stored (signed 64-bit) address in hex."""
    return None if address is None else format(address & MASK64, "x")
