"""What a page says for a name it does not know: a redirect to the page meant,
for the spellings users type (`/tracepoint/kvm:kvm_exit` as perf and bpftrace
write it, `/tracepoint/kvm/kvm_exit` as libbpf does, `/diff/6.1/6.12` with the
labels the pages show), else close names to try (a 404 that suggests)."""

from __future__ import annotations

import sqlite3

from ingest.queries import names as names_q
from ingest.queries import surfaces as surfaces_q
from ingest.web.context import Context, Page, segment

SUGGESTIONS = 5  # close names a 404 offers


def suggest(conn: sqlite3.Connection, ctx: Context, page: Page, table: str) -> Page:
    """`page`, with `suggestions` (close names of `table`) when it found nothing."""
    if not page.get("found") and table in ctx.tables and isinstance(page.get("name"), str):
        use_index = names_q.indexed(conn, ctx.tables)
        page["suggestions"] = names_q.close_names(conn, str(page["name"]), table, SUGGESTIONS, use_index)
    return page


def tracepoint_redirect(conn: sqlite3.Connection, name: str) -> str | None:
    """The page of `system:event` or `system/event`, when some build has that event in that system."""
    for sep in (":", "/"):
        system, found, event = name.partition(sep)
        if found and system and event and surfaces_q.tracepoint_in_system(conn, system, event):
            return f"/tracepoint/{segment(event)}"
    return None


def diff_redirect(ctx: Context, a: str, b: str) -> str | None:
    """The diff page of the builds that one group labels `a` and `b` (either
    may already be a build's name), when that is not the page asked for."""
    names = {build.name for build in ctx.builds.values()}
    for group in ctx.groups:
        labels = {m.label: m.build.name for m in group.members}
        full_a = a if a in names else labels.get(a)
        full_b = b if b in names else labels.get(b)
        if full_a and full_b and (full_a, full_b) != (a, b):
            return f"/diff/{segment(full_a)}/{segment(full_b)}"
    return None
