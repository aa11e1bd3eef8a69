"""`kernsurf check`: every dependency of a BPF object against every build.

A dependency (bpf_object.Dependency, or one parsed from its text form
`kind:name`) gets one Cell per build: ok, warn (works, but look: partly
inlined, ambiguous name, changed since the previous build of its group, only
present if the program guards it), fail (will not load or attach, and why) or
unknown (the build does not record that fact)."""

from __future__ import annotations

import fnmatch
import json
import sqlite3
from dataclasses import dataclass, field, replace

from ingest.bpf.objects import Dependency
from ingest.errors import BadDependency

LEVELS = ("ok", "warn", "fail", "unknown")
MARKS = {"ok": "✓", "warn": "⚠", "fail": "✗", "unknown": "?"}
# CO-RE relocations a program can guard (bpf_core_*_exists): absence is a warning.
GUARDS = frozenset(("field_exists", "type_exists", "enumval_exists", "type_matches"))
_PROTOTYPE_CHANGES = (
    "param added",
    "param removed",
    "param renamed",
    "param type changed",
    "params reordered",
    "return type changed",
    "prototype added",
    "prototype removed",
)
_FIELD_CHANGES = ("field type changed", "field removed", "field added")
_PROGRAM_KINDS = {  # attach type -> the surface it names
    "kprobe": "function",
    "kretprobe": "function",
    "fentry": "function",
    "fexit": "function",
    "fmod_ret": "function",
    "kprobe.multi": "function",
    "kretprobe.multi": "function",
    "kprobe.session": "function",
    "tracepoint": "tracepoint",
    "raw_tracepoint": "raw_tracepoint",
    "tp_btf": "raw_tracepoint",
    "lsm": "lsm_hook",
    "lsm_cgroup": "lsm_hook",
    "ksyscall": "syscall",
    "kretsyscall": "syscall",
    "iter": "iter",
    "struct_ops": "struct_ops",
}

#: libbpf's short section names, accepted in text forms.
_SECTION_ALIASES = {"tp": "tracepoint", "raw_tp": "raw_tracepoint"}


@dataclass(frozen=True, slots=True)
class Column:
    """One build as a column of the report."""

    build_id: int
    build: str
    label: str
    group: str | None
    previous: int | None  # the build it is compared with in its group


@dataclass(frozen=True, slots=True)
class Cell:
    level: str  # one of LEVELS
    text: str  # "ok", "absent", "inlined (Full)", "not attachable (notrace)", ...


@dataclass(slots=True)
class Report:
    dependencies: list[Dependency]
    columns: list[Column]
    cells: list[list[Cell]] = field(default_factory=list)  # [dependency][column]

    def worst(self, column: int) -> str:
        """The worst level of one column."""
        return max((row[column].level for row in self.cells), key=severity, default="ok")

    def as_dict(self) -> dict:
        return {
            "builds": [
                {"build": c.build, "label": c.label, "group": c.group, "worst": self.worst(k)}
                for k, c in enumerate(self.columns)
            ],
            "dependencies": [
                {
                    "kind": d.kind,
                    "name": d.name,
                    "attach": d.attach,
                    "detail": d.detail,
                    "programs": list(d.programs),
                    "spec": spec(d),
                    "results": {
                        c.build: {"level": cell.level, "text": cell.text}
                        for c, cell in zip(self.columns, row)
                    },
                }
                for d, row in zip(self.dependencies, self.cells)
            ],
        }

    def text(self) -> str:
        """A terminal table: one row per dependency, one column per build."""
        if not self.columns:
            return "no builds in the database"
        heads = [c.label for c in self.columns]
        names = [spec(d) for d in self.dependencies]
        name_w = max([len(n) for n in names] + [10])
        widths = [max(len(h), 2) for h in heads]
        lines = [" " * name_w + "  " + "  ".join(h.ljust(w) for h, w in zip(heads, widths))]
        notes: dict[str, int] = {}
        for n, row in zip(names, self.cells):
            marks = []
            for cell, w in zip(row, widths):
                mark = MARKS[cell.level]
                if cell.level != "ok":
                    mark += str(notes.setdefault(cell.text, len(notes) + 1))
                marks.append(mark.ljust(w))
            lines.append(n.ljust(name_w) + "  " + "  ".join(marks).rstrip())
        if notes:
            lines += [""] + [f"  {k}: {text}" for text, k in notes.items()]
        counts = {level: sum(c.level == level for row in self.cells for c in row) for level in LEVELS}
        lines += [
            "",
            f"{len(self.dependencies)} dependencies × {len(self.columns)} builds: "
            + ", ".join(f"{counts[lv]} {lv}" for lv in LEVELS if counts[lv]),
        ]
        return "\n".join(lines)


def severity(level: str) -> int:
    """The order of LEVELS by badness (ok < unknown < warn < fail)."""
    return {"ok": 0, "unknown": 1, "warn": 2, "fail": 3}[level]


# --------------------------------------------------------------------------- text form


def spec(dep: Dependency) -> str:
    """The text form: `attach:name` for a program target (kprobe:vmap,
    tracepoint:sched/sched_switch), `kind:name` otherwise (field:dma_buf_ops.vmap,
    kfunc:bpf_task_acquire, helper:bpf_loop); a CO-RE probe or a weak extern adds
    `?` (field?:task_struct.x, kfunc?:bpf_task_acquire)."""
    if dep.attach:
        if dep.kind == "tracepoint" and dep.detail:
            return f"{dep.attach}:{dep.detail}/{dep.name}"
        return f"{dep.attach}:{dep.name}"
    return f"{dep.kind}{'?' if dep.detail in GUARDS or dep.detail == 'weak' else ''}:{dep.name}"


def parse_spec(text: str) -> Dependency:
    """The inverse of spec()."""
    head, sep, name = text.strip().partition(":")
    if not sep or not name:
        raise BadDependency(f"{text!r}: expected kind:name, e.g. kprobe:vmap or field:dma_buf_ops.vmap")
    guarded = head.endswith("?")
    head = _SECTION_ALIASES.get(head.rstrip("?"), head.rstrip("?"))
    if head in _PROGRAM_KINDS:
        kind = _PROGRAM_KINDS[head]
        if head in ("kprobe.multi", "kretprobe.multi", "kprobe.session"):
            return Dependency("function", name, head, (), "glob")
        if kind == "tracepoint":
            system, _, event = name.rpartition("/")
            return Dependency(kind, event, head, (), system or None)
        return Dependency(kind, name, head, (), None)
    if head in _CHECKS:
        guard = {"field": "field_exists", "enum_value": "enumval_exists"}.get(head, "type_exists")
        if head in _WEAK_KINDS:
            guard = "weak"
        elif head == "helper":  # the bpf_func_id enumerator the kernel must have
            guard, guarded = "BPF_FUNC_" + name.removeprefix("bpf_"), True
        elif head == "map_type" and not name.startswith("BPF_MAP_TYPE_"):
            name = "BPF_MAP_TYPE_" + name.upper()
        return Dependency(head, name, None, (), guard if guarded else None)
    raise BadDependency(
        f"{text!r}: unknown kind {head!r}; use a program type ({', '.join(_PROGRAM_KINDS)}) "
        f"or one of {', '.join(sorted(k for k in _CHECKS if k not in _PROGRAM_KINDS.values()))}"
    )


def merge(dependencies: list[Dependency]) -> list[Dependency]:
    """One row per target: the same kind, name and attach type (and system of
    a tracepoint) are merged and their programs united. A field or enum value
    the program probes (bpf_core_field_exists, ...) stays a probe: its reads
    are taken to be guarded by the probe. A struct, enum or type is a probe
    only when every use is. Program targets first, then by kind, in
    first-seen order."""
    merged: dict[tuple, Dependency] = {}
    for dep in dependencies:
        key = (dep.kind, dep.name, dep.attach, dep.detail if dep.kind == "tracepoint" else None)
        old = merged.get(key)
        if old is None:
            merged[key] = dep
            continue
        if dep.kind in ("field", "enum_value"):  # any probe guards the reads
            detail = old.detail if old.detail in GUARDS or dep.detail not in GUARDS else dep.detail
        else:  # a probe only if every use is
            detail = old.detail if old.detail not in GUARDS or dep.detail in GUARDS else dep.detail
        merged[key] = replace(
            old, detail=detail, programs=tuple(sorted(set(old.programs) | set(dep.programs)))
        )
    kinds = list(dict.fromkeys(d.kind for d in merged.values()))
    return sorted(merged.values(), key=lambda d: (d.attach is None, kinds.index(d.kind)))


# --------------------------------------------------------------------------- columns


def columns(conn: sqlite3.Connection, group: str | None = None) -> list[Column]:
    """The builds to check, in group order: every build once (its first group
    decides its label and the build it is compared with), or one group's members."""
    groups: dict[int, tuple[str, str, list[tuple[int, str, str]]]] = {}
    for gid, gname, kind, bid, bname, label in conn.execute(
        "SELECT g.id, g.name, g.kind, m.build_id, b.name, m.label FROM groups g"
        " JOIN group_members m ON m.group_id = g.id JOIN builds b ON b.id = m.build_id"
        " ORDER BY g.position, g.id, m.position"
    ):
        groups.setdefault(gid, (gname, kind, []))[2].append((bid, bname, label))
    if group is not None:
        chosen = [g for g in groups.values() if g[0] == group]
        if not chosen:
            names = ", ".join(g[0] for g in groups.values()) or "none"
            raise LookupError(f"no group {group!r} in the database (groups: {names})")
        groups = {0: chosen[0]}
    out: dict[int, Column] = {}
    for gname, kind, members in groups.values():
        for k, (bid, bname, label) in enumerate(members):
            previous = None if k == 0 else members[0][0] if kind == "variants" else members[k - 1][0]
            if bid not in out or (out[bid].previous is None and previous is not None):
                out[bid] = Column(bid, bname, label if bid not in out else out[bid].label, gname, previous)
    if group is None:
        for bid, bname in conn.execute("SELECT id, name FROM builds ORDER BY version_sort, name"):
            out.setdefault(bid, Column(bid, bname, bname, None, None))
    return list(out.values())


# --------------------------------------------------------------------------- evaluation


def evaluate(conn: sqlite3.Connection, dependencies: list[Dependency], group: str | None = None) -> Report:
    """The report of `dependencies` against the builds (of `group`)."""
    builds_columns = {row[1] for row in conn.execute("PRAGMA table_info(builds)")}
    if "n_tracepoints" not in builds_columns:
        raise LookupError(
            "the database predates `kernsurf check`: upgrade it by running `kernsurf build` "
            "(or any `kernsurf ingest`) on it, then re-ingest builds with --replace"
        )
    report = Report(list(dependencies), columns(conn, group))
    facts = {c.build_id: _build_facts(conn, c.build_id) for c in report.columns}
    for dep in report.dependencies:
        report.cells.append([_cell(conn, dep, c, facts[c.build_id]) for c in report.columns])
    return report


def _build_facts(conn: sqlite3.Connection, build: int) -> dict:
    row = conn.execute(
        "SELECT has_dwarf, has_btf, has_symtab, n_tracepoints, n_config FROM builds WHERE id = ?", (build,)
    ).fetchone()
    return {
        "has_dwarf": bool(row[0]),
        "has_btf": bool(row[1]),
        "has_symtab": bool(row[2]),
        "surfaces": row[3] is not None,
        "has_config": bool(row[4]),
    }


def verdict(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict | None = None) -> Cell:
    """The cell of one dependency in one build, without comparing builds."""
    facts = facts or _build_facts(conn, build)
    check = _CHECKS.get(dep.kind)
    if check is None:
        return Cell("unknown", f"{dep.kind} dependencies are not recorded")
    if dep.kind not in _TYPE_KINDS and not facts["surfaces"]:
        return Cell("unknown", "build ingested before attachability and surfaces were recorded")
    return check(conn, dep, build, facts)


def _cell(conn: sqlite3.Connection, dep: Dependency, col: Column, facts: dict) -> Cell:
    cell = verdict(conn, dep, col.build_id, facts)
    if cell.level == "ok" and col.previous is not None:
        changed = _changed(conn, dep, col)
        if changed:
            return Cell("warn", changed)
    return cell


def _name_id(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def _function(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    if dep.detail == "glob":
        return _glob(conn, dep.name, build)
    if dep.detail and "module:" in dep.detail:
        return Cell(
            "unknown", f"in module {dep.detail.split('module:')[1].split()[0]}: modules are not ingested"
        )
    if "." in dep.name:  # a clone symbol named exactly, e.g. foo.isra.0
        return _exact_symbol(conn, dep, build)
    row = conn.execute(
        "SELECT inline, collision, kprobe, fentry, n_symbols, suffixes FROM function_status"
        " WHERE build_id = ? AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, dep.name),
    ).fetchone()
    if row is None:
        return Cell("fail", "absent")
    inline, collision, kprobe, fentry, n_symbols, suffixes = row
    how = dep.attach or "kprobe"
    verdict = fentry if how in ("fentry", "fexit", "fmod_ret") else kprobe
    if verdict is None:
        return Cell("unknown", "attachability not recorded")
    if verdict != "✓":
        reason = verdict[3:-1]
        if reason.startswith("only "):
            return Cell("fail", f"transformed: {reason}")
        if reason == "fully inlined":
            return Cell("fail", "inlined (Full): no symbol")
        return Cell("fail", f"not attachable: {reason}" if reason != "no symbol" else "no symbol")
    if collision and collision not in ("Unique Global", "Unique Static"):
        return Cell("warn", f"ambiguous: {collision}")
    if inline == "Selective":
        return Cell("warn", "inlined (Selective): some calls bypass the probe")
    return Cell("ok", "ok")


def _exact_symbol(conn: sqlite3.Connection, dep: Dependency, build: int) -> Cell:
    rows = conn.execute(
        "SELECT ftrace, kprobe_blocked FROM symbols WHERE build_id = ?"
        " AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, dep.name),
    ).fetchall()
    if not rows:
        return Cell("fail", "absent")
    ftrace, blocked = rows[0]
    if blocked:
        return Cell("fail", f"not attachable: {blocked}")
    if dep.attach in ("fentry", "fexit", "fmod_ret"):
        return Cell("fail", "not attachable: no BTF FUNC for a transformed copy")
    return Cell("warn", f"ambiguous: {len(rows)} symbols") if len(rows) > 1 else Cell("ok", "ok")


def _glob(conn: sqlite3.Connection, pattern: str, build: int) -> Cell:
    prefix = pattern.split("*")[0].split("?")[0].split("[")[0]
    rows = conn.execute(
        "SELECT n.name, s.kprobe_blocked FROM symbols s JOIN names n ON n.id = s.name_id"
        " WHERE s.build_id = ? AND n.name >= ? AND n.name < ?",
        (build, prefix, prefix + "\U0010ffff"),
    ).fetchall()
    hits = [(n, b) for n, b in rows if fnmatch.fnmatchcase(n, pattern)]
    usable = [n for n, b in hits if b is None]
    if not usable:
        return Cell("fail", "no attachable symbol matches" if hits else "no symbol matches")
    return Cell("ok", f"{len(usable)} symbols")


def _tracepoint(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    row = conn.execute(
        "SELECT system FROM tracepoints WHERE build_id = ?"
        " AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, dep.name),
    ).fetchone()
    if row is None or row[0] is None:
        return Cell("fail", "absent" if row is None else "raw tracepoint only (no trace event)")
    if dep.detail and row[0] != dep.detail:
        return Cell("fail", f"in system {row[0]}")
    return Cell("ok", "ok")


def _raw_tracepoint(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    row = conn.execute(
        "SELECT raw_prototype_id FROM tracepoints WHERE build_id = ?"
        " AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, dep.name),
    ).fetchone()
    if row is None:
        return Cell("fail", "absent")
    if row[0] is None and dep.attach == "tp_btf":
        return Cell("fail", f"no BTF typedef btf_trace_{dep.name}")
    return Cell("ok", "ok")


def _lsm_hook(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    row = conn.execute(
        "SELECT bpf_lsm FROM lsm_hooks WHERE build_id = ?"
        " AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, dep.name),
    ).fetchone()
    if row is None:
        return Cell("fail", "absent")
    return Cell("ok", "ok") if row[0] else Cell("fail", f"not attachable: no bpf_lsm_{dep.name}")


def _syscall(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    row = conn.execute(
        "SELECT number FROM syscalls WHERE build_id = ? AND abi = 'native'"
        " AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, dep.name),
    ).fetchone()
    return Cell("ok", f"nr {row[0]}") if row else Cell("fail", "absent")


def _kfunc(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    row = conn.execute(
        "SELECT source FROM kfuncs WHERE build_id = ? AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, dep.name),
    ).fetchone()
    if row is not None:
        return Cell("ok", "ok")
    known = conn.execute(
        "SELECT 1 FROM functions WHERE build_id = ? AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, dep.name),
    ).fetchone()
    what = "a function, but not a kfunc" if known else "absent"
    return (
        Cell("warn", f"{what} (weak extern: the program copes)")
        if dep.detail == "weak"
        else Cell("fail", what)
    )


def _iter(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    row = conn.execute(
        "SELECT btf_func FROM functions WHERE build_id = ?"
        " AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, f"bpf_iter_{dep.name}"),
    ).fetchone()
    if row is None:
        return Cell("fail", f"absent (no bpf_iter_{dep.name})")
    return Cell("ok", "ok") if row[0] else Cell("fail", f"no BTF FUNC bpf_iter_{dep.name}")


def _layouts(conn: sqlite3.Connection, name: str, build: int, kinds=("struct", "union")) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT layout_id FROM types WHERE build_id = ? AND name_id = (SELECT id FROM names WHERE name = ?)"
            f" AND kind IN ({','.join('?' * len(kinds))})",
            (build, name, *kinds),
        )
    ]


def _absent(dep: Dependency, what: str) -> Cell:
    if dep.detail in GUARDS:
        return Cell("warn", f"{what} (the program checks for it)")
    return Cell("fail", what)


def _struct(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    kinds = ("enum",) if dep.kind == "enum" else ("struct", "union")
    if _layouts(conn, dep.name, build, kinds):
        return Cell("ok", "ok")
    if dep.kind == "type" and _layouts(conn, dep.name, build, ("enum",)):
        return Cell("ok", "ok")
    if dep.kind == "type":
        return Cell("unknown", "only structs, unions and enums are recorded")
    return _absent(dep, "absent")


def _field(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    root, *path = dep.name.split(".")
    layouts = _layouts(conn, root, build)
    if not layouts:
        return _absent(dep, f"struct {root} absent")
    current, where = layouts, root
    for k, member in enumerate(path):
        found = None
        for layout in current:
            found = conn.execute(
                "SELECT coalesce(c.text, t.text) FROM struct_fields f JOIN type_texts t ON t.id = f.type_id"
                " LEFT JOIN type_texts c ON c.id = f.canon_id WHERE f.layout_id = ? AND f.name = ?",
                (layout, member),
            ).fetchone()
            if found:
                break
        if found is None:
            return _absent(dep, f"no field {member} in {where}")
        if k + 1 < len(path):
            inner = _aggregate_name(found[0])
            if inner is None:
                return Cell("unknown", f"{where}.{member} is {found[0]}, not a named struct")
            current, where = _layouts(conn, inner, build), inner
    return Cell("ok", "ok")


def _aggregate_name(type_text: str) -> str | None:
    """`struct sched_entity` (or an array of it) -> sched_entity."""
    words = type_text.split("[")[0].split()
    if len(words) >= 2 and words[-2] in ("struct", "union") and "*" not in type_text:
        return words[-1]
    return None


def _enum_value(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    enum, _, value = dep.name.partition("::")
    layouts = _layouts(conn, enum, build, ("enum",)) if enum else []
    if enum and not layouts:
        return _absent(dep, f"enum {enum} absent")
    query = (
        "SELECT value FROM enum_values WHERE name = ? AND layout_id IN (SELECT value FROM json_each(?))"
        if layouts
        else "SELECT e.value FROM enum_values e JOIN types t ON t.layout_id = e.layout_id"
        " WHERE e.name = ? AND t.build_id = ?"
    )
    row = conn.execute(query, (value, json.dumps(layouts)) if layouts else (value, build)).fetchone()
    return Cell("ok", f"= {row[0]}") if row else _absent(dep, f"no value {value}")


def _struct_ops(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    return _struct(conn, Dependency("struct", dep.name, None, dep.programs, None), build, facts)


def _kconfig(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    if not facts["has_config"]:
        return Cell("unknown", "no kernel config recorded for this build")
    row = conn.execute(
        "SELECT value FROM config_options WHERE build_id = ?"
        " AND name_id = (SELECT id FROM names WHERE name = ?)",
        (build, dep.name),
    ).fetchone()
    if row is None or row[0] == "n":
        what = "not set" if row else "absent"
        return (
            Cell("warn", f"{what} (weak extern: the program copes)")
            if dep.detail == "weak"
            else Cell("fail", what)
        )
    return Cell("ok", f"= {row[0]}")


def _enumerator(enum: str, value: str):
    """A check that the kernel's `enum` has `value` (helpers, map types)."""

    def check(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
        wanted = dep.detail if enum == "bpf_func_id" else dep.name  # BPF_FUNC_loop, BPF_MAP_TYPE_RINGBUF
        if not _layouts(conn, enum, build, ("enum",)):
            return Cell("unknown", f"enum {enum} not recorded")
        found = _enum_value(conn, Dependency("enum_value", f"{enum}::{wanted}", None, (), None), build, facts)
        return Cell("ok", "ok") if found.level == "ok" else Cell("fail", "absent: too old a kernel")

    return check


def _ksym(conn: sqlite3.Connection, dep: Dependency, build: int, facts: dict) -> Cell:
    return Cell("unknown", "kernel variables are not recorded")


#: Extern kinds a program may declare __weak (absence is then a warning).
_WEAK_KINDS = frozenset(("kfunc", "ksym", "kconfig"))
_TYPE_KINDS = frozenset(
    ("struct", "field", "enum", "enum_value", "type", "struct_ops", "kconfig", "helper", "map_type")
)
_CHECKS = {
    "function": _function,
    "tracepoint": _tracepoint,
    "raw_tracepoint": _raw_tracepoint,
    "lsm_hook": _lsm_hook,
    "syscall": _syscall,
    "kfunc": _kfunc,
    "iter": _iter,
    "struct": _struct,
    "enum": _struct,
    "type": _struct,
    "field": _field,
    "enum_value": _enum_value,
    "struct_ops": _struct_ops,
    "ksym": _ksym,
    "kconfig": _kconfig,
    "helper": _enumerator("bpf_func_id", "BPF_FUNC_"),
    "map_type": _enumerator("bpf_map_type", "BPF_MAP_TYPE_"),
}


def _changed(conn: sqlite3.Connection, dep: Dependency, col: Column) -> str | None:
    """What changed for `dep` since the build this column is compared with
    (from the stored group diffs), or None."""
    if dep.kind in ("function", "kfunc") and dep.detail != "glob":
        item, name, kinds, detail = "function", dep.name, _PROTOTYPE_CHANGES, None
    elif dep.kind == "field":
        root, _, path = dep.name.partition(".")
        item, name, kinds, detail = None, root, _FIELD_CHANGES, path
    elif dep.kind in ("tracepoint", "raw_tracepoint"):
        item, name, kinds, detail = (
            "tracepoint",
            dep.name,
            ("event struct changed", "raw prototype changed", "format changed"),
            None,
        )
    else:
        return None
    rows = conn.execute(
        "SELECT c.change_kind, c.detail, c.old, c.new FROM changes c JOIN diff_pairs p ON p.id = c.pair_id"
        " WHERE p.build_a = ? AND p.build_b = ? AND c.name_id = (SELECT id FROM names WHERE name = ?)"
        f" AND c.change_kind IN ({','.join('?' * len(kinds))})" + (" AND c.item_kind = ?" if item else ""),
        (col.previous, col.build_id, name, *kinds, *((item,) if item else ())),
    ).fetchall()
    if detail is not None:
        rows = [r for r in rows if r[1] == detail or (r[1] or "").startswith(detail + ".")]
    if not rows:
        return None
    kind, what, old, new = rows[0]
    text = f"changed: {kind}" + (f" {what}" if what else "")
    if old and new:
        text += " ({} → {})".format(*_clip(old, new))
    return text + (f" and {len(rows) - 1} more" if len(rows) > 1 else "")


def _clip(old: str, new: str, width: int = 60) -> tuple[str, str]:
    """Long old/new values (print formats) cut to `width` characters around
    where they start to differ: `kernsurf diff` has the whole text."""
    if len(old) <= width and len(new) <= width:
        return old, new
    same = next((k for k, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    start = max(0, same - 15)

    def cut(text: str) -> str:
        part = text[start : start + width]
        return ("…" if start else "") + part + ("…" if start + width < len(text) else "")

    return cut(old), cut(new)
