"""/check: `kernsurf check` of dependency lines and uploaded BPF objects, as a
dependencies x builds matrix with numbered reasons."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import groupby
from typing import NamedTuple
from urllib.parse import urlencode

from ingest.bpf import check, sections
from ingest.bpf import objects as bpf_objects
from ingest.bpf.objects import Dependency
from ingest.bpf.report import REASONS, ObjectDeps
from ingest.bpf.spec import merge_key
from ingest.errors import BadBpfObject, BadDependency
from ingest.queries import builds as builds_q
from ingest.queries import functions as functions_q
from ingest.web.context import Page, segment

MAX_CHECK_DEPS = 500
#: Symbols a glob dependency (kprobe.multi:tcp_*) may match in a build; `*a*` matches ~60 % of them.
MAX_GLOB_MATCHES = 10_000


#: Dependency kinds with a page of their own: kind -> URL segment.
DEPENDENCY_PAGES = {
    "function": "function",
    "struct": "struct",
    "enum": "struct",
    "type": "type",
    "struct_ops": "struct",
    "field": "struct",
    "tracepoint": "tracepoint",
    "raw_tracepoint": "tracepoint",
    "syscall": "syscall",
    "lsm_hook": "lsm",
    "kfunc": "kfunc",
    "kconfig": "config",
}


def dependency_url(dep: Dependency) -> str | None:
    """The page that explains a `kernsurf check` dependency, if any."""
    seg = DEPENDENCY_PAGES.get(dep.kind)
    if seg is None or dep.detail == "glob":
        return None
    name = dep.name.split(".")[0] if dep.kind == "field" else dep.name
    return f"/{seg}/{segment(name)}"


class ParsedObject(NamedTuple):
    """One uploaded BPF object, read: its dependencies and warnings, or why it is unusable."""

    name: str
    dependencies: tuple[Dependency, ...]
    warnings: tuple[str, ...]
    error: str | None


def parse_objects(files: Sequence[tuple[str, bytes]]) -> list[ParsedObject]:
    """Read uploaded objects [(filename, bytes)]; an unusable one carries its error."""
    out = []
    for filename, data in files:
        try:
            obj = bpf_objects.parse_bpf_object(data, filename)
        except BadBpfObject as exc:
            out.append(ParsedObject(filename, (), (), str(exc)))
            continue
        warnings = [
            f"{filename}: unknown program section {sec!r} (not checked)" for sec in obj.unknown_sections
        ]
        user = [p.name for p in obj.programs if p.attach in sections.USER_ATTACHES]
        if user:
            warnings.append(
                f"{filename}: user-space programs ({', '.join(user)}: uprobe/usdt) depend on user binaries,"
                " not on the kernel: not checked"
            )
        out.append(ParsedObject(filename, tuple(obj.dependencies), tuple(warnings), None))
    return out


def check_form(
    text: str | None, group: str | None, objects: Sequence[ParsedObject]
) -> tuple[Page, list[Dependency]]:
    """The page before the report: the dependencies of the lines and of the uploaded
    objects (parse_objects), merged, with errors and warnings about the input."""
    errors = [obj.error for obj in objects if obj.error]
    warnings = [w for obj in objects for w in obj.warnings]
    out: Page = {
        "deps_text": text,
        "group": group,
        "errors": errors,
        "warnings": warnings,
        "report": None,
        "objects": [obj.name for obj in objects],
        "link": None,
    }
    found = [d for obj in objects for d in obj.dependencies]
    for line in (text or "").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                found.append(check.parse_spec(line))
            except BadDependency as exc:
                errors.append(str(exc))
    deps = check.merge(found)
    if len(deps) > MAX_CHECK_DEPS:
        errors.append(f"{len(deps)} dependencies: at most {MAX_CHECK_DEPS} per check")
        deps = []
    if deps:
        out["deps_text"] = "\n".join(check.spec(d) for d in deps)
        out["link"] = "/check?" + urlencode(
            {k: v for k, v in (("deps", out["deps_text"]), ("group", group)) if v}
        )
    return out, deps


def check_report(
    conn: sqlite3.Connection,
    deps: list[Dependency],
    group: str | None,
    objects: Sequence[tuple[str, Sequence[Dependency]]] = (),
) -> Page:
    """The report of `deps` over the builds (of `group`): the table, its reasons
    and counts, and the summary (per object of `objects` [(name, its
    dependencies)], else of all the dependencies as one program).
    Raises LookupError for an unknown group."""
    report = check.evaluate(conn, deps, group)
    index = {merge_key(d): k for k, d in enumerate(report.dependencies)}
    report.objects = [
        ObjectDeps(
            name=name,
            dependencies=tuple(sorted({index[merge_key(d)] for d in found if merge_key(d) in index})),
        )
        for name, found in objects
    ]
    notes: dict[str, int] = {}
    rows = []
    for dep, cells in zip(report.dependencies, report.cells):
        rows.append(
            {
                "spec": check.spec(dep),
                "programs": list(dep.programs),
                "url": dependency_url(dep),
                "cells": [
                    {
                        "level": c.level,
                        "mark": check.MARKS[c.level],
                        "text": c.text,
                        "reason": c.reason,
                        "note": notes.setdefault(c.text, len(notes) + 1) if c.level != "ok" else None,
                    }
                    for c in cells
                ],
            }
        )
    heads = [
        {"group": name or "Other builds", "span": len(list(cols))}
        for name, cols in groupby(report.columns, key=lambda c: c.group)
    ]
    counts = {lv: sum(c.level == lv for row in report.cells for c in row) for lv in check.LEVELS}
    return {
        "report": report.as_dict(),
        "columns": [
            {"label": c.label, "build": c.build, "worst": report.worst(k)}
            for k, c in enumerate(report.columns)
        ],
        "heads": heads,
        "rows": rows,
        "notes": [{"n": n, "text": t} for t, n in notes.items()],
        "counts": counts,
        "summary": _summary(report),
        "instead": [
            {
                "spec": check.spec(dep),
                "label": col.label,
                "suggestions": [x.as_dict() for x in cell.suggestions],
            }
            for dep, cells in zip(report.dependencies, report.cells)
            for col, cell in zip(report.columns, cells)
            if cell.suggestions
        ],
        "reasons": REASONS,
        "groups": builds_q.group_names(conn),
    }


def _summary(report: check.Report) -> Page:
    """The summary table for the page: per object and build the verdict, and the causes."""
    data = report.summary()
    return {
        "rows": [
            {"object": r["object"], "verdicts": [r["results"][c.build] for c in report.columns]}
            for r in data["objects"]
        ],
        "affected": [data["affected"][c.build] for c in report.columns],
        "causes": data["causes"],
    }


def too_broad(
    conn: sqlite3.Connection, deps: Sequence[Dependency], limit: int = MAX_GLOB_MATCHES
) -> str | None:
    """Why a check is refused before it runs (a glob matching more than `limit`
    functions in a build, counted in SQLite), None when it is not."""
    for dep in deps:
        if dep.kind == "function" and dep.detail == "glob":
            n = functions_q.glob_count(conn, check.glob_prefix(dep.name), check.sql_glob(dep.name))
            if n > limit:
                return f"{check.spec(dep)}: glob matches {n} functions; at most {limit}"
    return None
