"""`kernsurf check`: every dependency of a BPF object against every build.

A dependency (ingest.bpf.objects.Dependency, or one parsed from its text
form `kind:name`, ingest.bpf.spec) gets one Cell per build: ok, warn (works,
but look: partly inlined, ambiguous name, changed since the build it is
compared with in its group, only present if the program guards it), fail
(will not load or attach, and why) or unknown (the build does not record
that fact). The facts come from the read layer (ingest.queries).

check_objects() is the whole command: read objects, parse --dep texts,
merge, evaluate.
"""

from __future__ import annotations

import fnmatch
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from ingest import groups
from ingest.bpf import core, gates, matches, sections, suggest, types
from ingest.bpf.objects import Dependency, read_bpf_object
from ingest.bpf.reads import Reads
from ingest.bpf.report import LEVELS, MARKS, REASONS, Cell, Column, ObjectDeps, Report, severity
from ingest.bpf.spec import (
    GUARDED_SPEC_KINDS,
    GUARDS,
    SPEC_KINDS,
    merge,
    merge_key,
    parse_retarget,
    parse_spec,
    retarget,
    spec,
)
from ingest.errors import BadDependency, NoDatabase, OutdatedDatabase, UnknownBuild, UnknownGroup
from ingest.queries import builds as builds_q
from ingest.queries import changes as changes_q
from ingest.queries import database as database_q
from ingest.queries import functions as functions_q
from ingest.queries import modules as modules_q
from ingest.queries import places
from ingest.queries import surfaces as surfaces_q
from ingest.queries import types as types_q
from ingest.queries.builds import BuildFacts
from ingest.queries.functions import FunctionFacts
from ingest.queries.typedefs import recorded as typedefs_recorded

__all__ = [
    "GUARDED_SPEC_KINDS",
    "GUARDS",
    "LEVELS",
    "MARKS",
    "REASONS",
    "SPEC_KINDS",
    "BadDependency",
    "Cell",
    "Column",
    "Report",
    "check_objects",
    "columns",
    "evaluate",
    "merge",
    "parse_spec",
    "severity",
    "spec",
    "verdict",
]

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
_TRACEPOINT_CHANGES = ("event struct changed", "raw prototype changed", "format changed")
_FENTRY_ATTACHES = ("fentry", "fexit", "fmod_ret")
_UNIQUE = ("Unique Global", "Unique Static")
_INIT_TEXT = "init text"  # the kprobe blacklist's reason for __init code


class BuildContext(NamedTuple):
    """One build as a check evaluates it: what it records, the values of the
    config options the gates read, and the query answers and layout reader of
    the evaluation."""

    build: BuildFacts
    config: dict[str, str]  # the values of gates.OPTIONS the build has
    reads: Reads  # answers shared by every build of one evaluation
    # The rows of a layout, shared by every build of one evaluation (layouts are
    # interned across builds); None: read them from the database each time.
    members: core.Members | None = None


def build_context(
    conn: sqlite3.Connection, build: int, reads: Reads | None = None, members: core.Members | None = None
) -> BuildContext:
    """Build `build` (a stored id) as a check evaluates it (`reads`: the evaluation's, else its own)."""
    facts = builds_q.build_facts(conn, build)
    if facts is None:
        raise UnknownBuild(f"no build with id {build} in the database")
    return BuildContext(
        build=facts,
        config=builds_q.config_values(conn, build, gates.OPTIONS),
        reads=reads or Reads(conn),
        members=members,
    )


Check = Callable[[sqlite3.Connection, Dependency, int, BuildContext], Cell]


_OK = Cell(level="ok", text="ok", reason="ok")


def _ok(text: str) -> Cell:
    return Cell(level="ok", text=text, reason="ok")


def _warn(text: str, reason: str) -> Cell:
    """A warning with its reason code (ingest.bpf.report.REASONS)."""
    return Cell(level="warn", text=text, reason=reason)


def _fail(text: str, reason: str) -> Cell:
    """A failure with its reason code (ingest.bpf.report.REASONS)."""
    return Cell(level="fail", text=text, reason=reason)


def _unknown(text: str, reason: str = "not_recorded") -> Cell:
    return Cell(level="unknown", text=text, reason=reason)


# --------------------------------------------------------------------------- the command


def check_objects(
    database: sqlite3.Connection | Path | str,
    objects: Sequence[Path | str] = (),
    dep_texts: Sequence[str] = (),
    group: str | None = None,
    retargets: Sequence[str] = (),
) -> Report:
    """`kernsurf check`: the report of the BPF objects at `objects` and the
    dependencies in text form `dep_texts` against the builds of `database`
    (a connection, or the path of a database to open read-only), or of one
    group of them. `retargets` are `PROGRAM=FUNCTION` texts: the attach
    target the object's loader really gives that program. Unknown program
    sections are listed in Report.warnings, user-space programs in Report.notes.

    Raises BadDependency (nothing to check, a bad text form, a retarget of no
    program), BadBpfObject, NoDatabase (no such file, not a kernsurf
    database), UnknownGroup (no such group) and OutdatedDatabase (a database
    made before `kernsurf check`)."""
    if not objects and not dep_texts:
        raise BadDependency(
            "nothing to check: give a BPF object (clang -target bpf -g -O2 -c prog.c) or --dep"
        )
    targets = dict(parse_retarget(text) for text in retargets)
    per_object: list[tuple[str, list[Dependency]]] = []
    warnings: list[str] = []
    notes: list[str] = []
    seen: set[str] = set()
    for path in objects:
        obj = read_bpf_object(Path(path))
        seen |= {p.name for p in obj.programs}
        per_object.append((Path(path).name, retarget(obj.dependencies, obj.programs, targets)))
        warnings += [
            f"{path}: unknown program section {section!r} (not checked)" for section in obj.unknown_sections
        ]
        user = [p for p in obj.programs if p.attach in sections.USER_ATTACHES]
        if user:
            notes.append(
                f"{Path(path).name}: {len(user)} user-space program(s) ("
                + ", ".join(f"{p.name} {p.section}" for p in user)
                + ") depend on user binaries, not on the kernel: not checked"
            )
    missing = sorted(set(targets) - seen)
    if missing:
        raise BadDependency(f"--retarget: no program {', '.join(missing)} in the objects")
    if dep_texts:
        per_object.append(("--dep", [parse_spec(text) for text in dep_texts]))
    dependencies = merge([d for _, deps in per_object for d in deps])
    if isinstance(database, sqlite3.Connection):
        report = evaluate(database, dependencies, group)
    else:
        report = _evaluate_file(Path(database), dependencies, group)
    index = {merge_key(d): k for k, d in enumerate(report.dependencies)}
    report.objects = [
        ObjectDeps(name=name, dependencies=tuple(sorted({index[merge_key(d)] for d in deps})))
        for name, deps in per_object
    ]
    report.warnings, report.notes = warnings, notes
    return report


def _evaluate_file(path: Path, dependencies: list[Dependency], group: str | None) -> Report:
    """evaluate() against the database file at `path`, opened read-only."""
    if not path.exists():
        raise NoDatabase(f"{path}: no such database (create it with `kernsurf build` or `kernsurf ingest`)")
    from ingest import db  # sqlite-utils only when a file is opened: `kernsurf check` starts fast

    conn = db.open_readonly(path)
    try:
        return evaluate(conn, dependencies, group)
    except sqlite3.Error as exc:
        raise db.database_error(path, exc) from None
    finally:
        conn.close()


# --------------------------------------------------------------------------- columns


def columns(conn: sqlite3.Connection, group: str | None = None) -> list[Column]:
    """The builds to check, in group order: every build once (its first group
    decides its label and the build it is compared with), or one group's members."""
    by_group: dict[int, list[builds_q.GroupMember]] = {}
    for member in builds_q.group_members(conn):
        by_group.setdefault(member.group_id, []).append(member)
    chosen = list(by_group.values())
    if group is not None:
        chosen = [members for members in chosen if members[0].group == group][:1]
        if not chosen:
            names = ", ".join(members[0].group for members in by_group.values()) or "none"
            raise UnknownGroup(f"no group {group!r} in the database (groups: {names})")
    out: dict[int, Column] = {}
    for members in chosen:
        for member, before in groups.comparisons(members[0].kind, members):
            previous = before.build_id if before is not None else None
            seen = out.get(member.build_id)
            if seen is None or (seen.previous is None and previous is not None):
                out[member.build_id] = Column(
                    build_id=member.build_id,
                    build=member.build,
                    label=member.label if seen is None else seen.label,
                    group=member.group,
                    previous=previous,
                )
    if group is None:
        for build in builds_q.build_refs(conn):
            out.setdefault(
                build.id,
                Column(build_id=build.id, build=build.name, label=build.name, group=None, previous=None),
            )
    return list(out.values())


# --------------------------------------------------------------------------- evaluation


def evaluate(conn: sqlite3.Connection, dependencies: list[Dependency], group: str | None = None) -> Report:
    """The report of `dependencies` against the builds (of `group`)."""
    if not database_q.records_surfaces(conn):
        raise OutdatedDatabase(
            "the database predates `kernsurf check`: upgrade it by running `kernsurf build` "
            "(or any `kernsurf ingest`) on it, then re-ingest builds with --replace"
        )
    report = Report(dependencies=list(dependencies), columns=columns(conn, group))
    reads, members = Reads(conn), types_q.member_reader(conn)  # shared by builds: each read once
    facts = {c.build_id: build_context(conn, c.build_id, reads, members) for c in report.columns}
    ways = suggest.Suggester(conn, report.columns, facts)
    for dep in report.dependencies:
        row = [_cell(conn, dep, c, facts[c.build_id]) for c in report.columns]
        report.cells.append([_with_suggestions(ways, dep, c, cell) for c, cell in zip(report.columns, row)])
    return report


def _with_suggestions(ways: suggest.Suggester, dep: Dependency, col: Column, cell: Cell) -> Cell:
    """The cell with its ways out (ingest.bpf.suggest), computed for ✗ and ⚠ cells only."""
    if cell.level not in ("fail", "warn"):
        return cell
    found = ways(dep, col, cell)
    return replace(cell, suggestions=found) if found else cell


def verdict(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext | None = None) -> Cell:
    """The cell of one dependency in one build, without comparing builds: the
    check of its kind, unless a config gate of its mechanism (ingest.bpf.gates)
    is missing on a build whose config is recorded."""
    facts = facts or build_context(conn, build)
    check = _CHECKS.get(dep.kind)
    if check is None:
        return _unknown(f"{dep.kind} dependencies are not recorded")
    if facts.build.has_config:
        missing = gates.missing(dep, facts.build.arch, facts.config)
        if missing is not None:
            return _fail(missing, "config_missing")
    if dep.kind not in _TYPE_KINDS and not facts.build.surfaces:
        return _unknown("build ingested before attachability and surfaces were recorded")
    return check(conn, dep, build, facts)


def _cell(conn: sqlite3.Connection, dep: Dependency, col: Column, facts: BuildContext) -> Cell:
    """The verdict, turned into a warning when the dependency changed since the build compared with."""
    cell = verdict(conn, dep, col.build_id, facts)
    if cell.level == "ok" and col.previous is not None:
        changed = _changed(conn, dep, col.previous, col.build_id)
        if changed is not None:
            return _warn(*changed)
    return cell


# --------------------------------------------------------------------------- functions


def _function(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    if dep.detail == "glob":
        return _glob(conn, dep.name, build)
    wanted = dep.detail.split("module:")[1].split()[0] if dep.detail and "module:" in dep.detail else None
    if wanted is not None and not facts.build.modules_read:
        return _unknown(f"in module {wanted}: modules are not read")
    if "." in dep.name:  # a clone symbol named exactly, e.g. foo.isra.0
        return _exact_symbol(conn, dep, build)
    func = functions_q.function(conn, build, dep.name)
    if func is None:
        return _missing_function(dep.name, build, facts)
    home = functions_q.function_home(conn, build, dep.name) if facts.build.modules_read else None
    copies = places.copies_named(conn, build, dep.name) if home is not None else []
    if wanted is not None and wanted != home and wanted not in {c.module for c in copies}:
        return _fail(f"not in module {wanted} (in {'module ' + home if home else 'vmlinux'})", "absent")
    if not facts.build.surfaces or not facts.build.has_symtab:
        return _unknown("attachability not recorded")
    fentry = dep.attach in _FENTRY_ATTACHES
    if not facts.build.ftrace_recorded:
        return _unverified(conn, dep.name, build, func, facts, fentry)
    why = why_not_attachable(func, facts, fentry)
    if why is not None:
        return _fail(*why)
    if not fentry and not facts.build.blacklist_recorded:
        return _warn("symbol present; kprobe blacklist not recorded", "unverified")
    where = None
    if wanted is not None:  # fentry/module:func: that module's copy
        where = _in_module(facts.reads, build, wanted)
    elif home is not None:
        where = _in_copies(facts.reads, build, home, copies, dep.attach is not None)
    also = f"; {where}" if where else ""
    if func.collision and func.collision not in _UNIQUE:
        return _warn(f"ambiguous: {func.collision}{also}", "ambiguous")
    if func.inline == "Selective":
        return _warn(f"inlined (Selective): some calls bypass the probe{also}", "inlined_partly")
    if home is not None:
        return _in_module_cell(build, home, facts, "fentry/fexit into" if fentry else None, where)
    return _OK


def _in_module_cell(
    build: int, home: str, facts: BuildContext, btf_for: str | None, where: str | None = None
) -> Cell:
    """✓ in module `home` (or `where` says in which); ✗ when what `btf_for`
    says ("fentry/fexit into") needs the module's BTF and the config lacks it."""
    if btf_for and facts.build.has_config and facts.config.get(gates.MODULE_BTF) not in ("y", "m"):
        return _fail(f"{gates.MODULE_BTF} is not set: {btf_for} module {home} need it", "config_missing")
    return _ok(where or _in_module(facts.reads, build, home))


def _in_module(reads: Reads, build: int, module: str) -> str:
    """ "in module ext4 (must be loaded: ext4, jbd2, mbcache, crc16)"."""
    return f"in module {module} (must be loaded: {', '.join(reads(modules_q.module_chain, build, module))})"


def _in_copies(reads: Reads, build: int, home: str, copies: list[places.ModuleCopy], attach: bool) -> str:
    """Which module to load for which copy of a function several modules hold.
    A probe (`attach`) reaches only the copies with a symbol of the name: one
    such module is named alone ("in module kvm_intel (must be loaded: kvm_intel,
    kvm); no symbol of that name in kvm"); several, or a `function:`, list each
    ("in modules kvm, kvm_intel (must be loaded: kvm for kvm's copy; kvm_intel,
    kvm for kvm_intel's copy)")."""
    targets = [c.module for c in copies if c.exact] if attach else [c.module for c in copies]
    if len(targets) <= 1:
        module = targets[0] if targets else home
        others = sorted({c.module for c in copies} - {module}) if attach else []
        inlined = f"; no symbol of that name in {', '.join(others)}" if others else ""
        return _in_module(reads, build, module) + inlined
    loads = [f"{', '.join(reads(modules_q.module_chain, build, m))} for {m}'s copy" for m in targets]
    return f"in modules {', '.join(targets)} (must be loaded: {'; '.join(loads)})"


def _missing_function(name: str, build: int, facts: BuildContext) -> Cell:
    """A function the build lacks: unknown when no build has it, or when it
    may be in a module that was not read; absent when the build's modules
    were read, or the source file that defines it elsewhere is built into
    this vmlinux (docs/concepts.md#not-recorded)."""
    if not facts.reads(functions_q.function_anywhere, name):
        return _unknown(
            "in no build of the database (a placeholder its loader retargets? see --retarget)",
            "absent_everywhere",
        )
    if facts.build.modules_read and facts.build.modules_complete:
        return _fail(
            f"absent (not in vmlinux or its {facts.reads(modules_q.module_count, build)} modules)", "absent"
        )
    cu = _defining_unit_in(facts.reads, name, build)
    if cu is not None:
        return _fail(f"absent ({cu} is in vmlinux)", "absent")
    return _unknown(
        "not in vmlinux or its loaded modules; the others not read"
        if facts.build.modules_read
        else "not in vmlinux; modules not read",
        "not_recorded",
    )


def _defining_unit_in(reads: Reads, name: str, build: int) -> str | None:
    """A compile unit that defines `name` on another build and is built into
    `build` (some instance of `build` has it), None when there is none."""
    for unit in reads(functions_q.defining_units, name):
        if unit.builds - {build} and build in reads(functions_q.unit_builds, unit.cu_path_id):
            return unit.path
    return None


def _unverified(
    conn: sqlite3.Connection, name: str, build: int, func: FunctionFacts, facts: BuildContext, fentry: bool
) -> Cell:
    """A function on a build without ftrace records or kprobe blacklist (a
    BTF blob with kallsyms): what the symbols and the BTF say, the rest unknown."""
    if fentry and not facts.build.has_btf:
        return _fail("not attachable: build has no BTF", "not_attachable")
    if not functions_q.has_exact_symbol(conn, build, name):
        if func.n_symbols > 0:
            return _fail(f"transformed: only {func.suffixes or 'renamed'} copies", "transformed")
        return _fail("no symbol", "not_attachable")
    if not fentry:
        return _warn("symbol present; kprobe blacklist not recorded", "unverified")
    if func.btf_func == 0:
        return _fail("not attachable: no BTF FUNC", "not_attachable")
    return _warn("BTF FUNC and symbol present; ftrace records not recorded", "unverified")


def why_not_attachable(func: FunctionFacts, facts: BuildContext, fentry: bool) -> tuple[str, str] | None:
    """Why a kprobe (or, with `fentry`, an fentry/fexit) cannot attach to the
    function, as (text, reason), None when it can: the decision of the
    function_status view's kprobe and fentry columns (docs/concepts.md#attachability)."""
    if fentry and not facts.build.has_btf:
        return "not attachable: build has no BTF", "not_attachable"
    if func.ftrace is None:  # no symbol of its own
        if func.n_symbols > 0:
            return f"transformed: only {func.suffixes or 'renamed'} copies", "transformed"
        if func.inline == "Full":
            return "inlined (Full): no symbol", "inlined_full"
        return "no symbol", "absent"
    if func.kprobe_blocked == _INIT_TEXT:  # freed after boot: ftrace drops it too
        return f"not attachable: {_INIT_TEXT} (freed after boot)", "not_attachable"
    if not fentry:
        if func.kprobe_blocked is not None:
            return f"not attachable: {func.kprobe_blocked}", "not_attachable"
        return None
    if func.btf_func == 0:
        return "not attachable: no BTF FUNC", "not_attachable"
    if func.ftrace == 0:
        return "not attachable: notrace", "not_attachable"
    return None


def _exact_symbol(conn: sqlite3.Connection, dep: Dependency, build: int) -> Cell:
    found = functions_q.symbol_states(conn, build, dep.name)
    if not found:
        return _fail("absent", "absent")
    if found[0].kprobe_blocked:
        return _fail(f"not attachable: {found[0].kprobe_blocked}", "not_attachable")
    if dep.attach in _FENTRY_ATTACHES:
        return _fail("not attachable: no BTF FUNC for a transformed copy", "not_attachable")
    return _warn(f"ambiguous: {len(found)} symbols", "ambiguous") if len(found) > 1 else _OK


def glob_prefix(pattern: str) -> str:
    """The literal start of a glob: the symbols worth reading are the names starting with it."""
    return pattern.split("*")[0].split("?")[0].split("[")[0]


def sql_glob(pattern: str) -> str:
    """A glob of kprobe.multi as SQLite GLOB: the same, but "[!" negates as "[^"."""
    return pattern.replace("[!", "[^")


def _glob(conn: sqlite3.Connection, pattern: str, build: int) -> Cell:
    # SQLite narrows the rows (a Python filter over all of a build's symbols took seconds);
    # fnmatch decides, so a "[^" means what it always meant.
    narrow = "*" if "[" in pattern else pattern
    found = functions_q.symbols_from(conn, build, glob_prefix(pattern), narrow)
    hits = [s for s in found if fnmatch.fnmatchcase(s.name, pattern)]
    usable = [s for s in hits if s.kprobe_blocked is None]
    if not usable:
        if hits:
            return _fail("no attachable symbol matches", "not_attachable")
        return _fail("no symbol matches", "absent")
    return _ok(f"{len(usable)} symbols")


# --------------------------------------------------------------------------- surfaces


def _tracepoint(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    tp = surfaces_q.tracepoint(conn, build, dep.name)
    if not facts.build.events_recorded and (tp is None or tp.system is None):
        return _unknown("trace events not recorded for this build (BTF-only input)")
    if tp is None:
        return _missing_event(facts.reads, dep.name)
    if tp.system is None:
        return _fail("raw tracepoint only (no trace event)", "not_attachable")
    if dep.detail and tp.system != dep.detail:
        return _fail(f"in system {tp.system}", "absent")
    home = surfaces_q.tracepoint_home(conn, build, dep.name) if facts.build.modules_read else None
    return _ok(_in_module(facts.reads, build, home)) if home is not None else _OK


def _missing_event(reads: Reads, name: str) -> Cell:
    """A tracepoint the build lacks: unknown when no build has it (a module's event?)."""
    if not reads(surfaces_q.tracepoint_anywhere, name):
        return _unknown("in no build of the database (a module's event?)", "absent_everywhere")
    return _fail("absent", "absent")


def _raw_tracepoint(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    tp = surfaces_q.tracepoint(conn, build, dep.name)
    if tp is None:
        return _missing_event(facts.reads, dep.name)
    if tp.system == "syscalls":  # per-syscall events are trace events only, built on raw_syscalls
        return _fail(
            "a syscall trace event, not a tracepoint (use raw_syscalls sys_enter/sys_exit)", "not_attachable"
        )
    if tp.raw_prototype_id is None and dep.attach == "tp_btf":
        return _fail(f"no BTF typedef btf_trace_{dep.name}", "not_attachable")
    return _OK


def _lsm_hook(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    attaches = surfaces_q.lsm_hook_attaches(conn, build, dep.name)
    if attaches is None:
        return _fail("absent", "absent")
    return _OK if attaches else _fail(f"not attachable: no bpf_lsm_{dep.name}", "not_attachable")


def _syscall(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    if not facts.build.syscalls_recorded:
        return _unknown("syscall tables not recorded for this build (BTF-only input)", "not_recorded")
    number = surfaces_q.syscall_number(conn, build, dep.name)
    return _ok(f"nr {number}") if number is not None else _fail("absent", "absent")


def _kfunc(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    if surfaces_q.is_kfunc(conn, build, dep.name):
        home = surfaces_q.kfunc_home(conn, build, dep.name) if facts.build.modules_read else None
        # A module registers its kfuncs by its split BTF: none without CONFIG_DEBUG_INFO_BTF_MODULES.
        return _OK if home is None else _in_module_cell(build, home, facts, "kfuncs of")
    if functions_q.function(conn, build, dep.name):
        what = "a function, but not a kfunc"
    elif facts.build.modules_read:
        what = f"absent (not a kfunc of vmlinux or its {facts.reads(modules_q.module_count, build)} modules)"
    else:  # a module may register it: unknown, not absent
        return _unknown("not a kfunc of vmlinux; modules not read", "not_recorded")
    return _weak_or_fail(dep, what)


def _weak_or_fail(dep: Dependency, what: str, reason: str = "absent") -> Cell:
    """A missing extern: a warning when the program declared it __weak, else a
    failure with `reason`."""
    if dep.detail == "weak":
        return _warn(f"{what} (weak extern: the program copes)", "weak")
    return _fail(what, reason)


def _iter(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    func = functions_q.function(conn, build, f"bpf_iter_{dep.name}")
    if func is None:
        return _fail(f"absent (no bpf_iter_{dep.name})", "absent")
    return _OK if func.btf_func else _fail(f"no BTF FUNC bpf_iter_{dep.name}", "not_attachable")


def _kconfig(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    if not facts.build.has_config:
        return _unknown("no kernel config recorded for this build")
    value = surfaces_q.config_value(conn, build, dep.name)
    if value is None or value == "n":
        return _weak_or_fail(dep, "not set" if value is not None else "absent", "config_missing")
    return _ok(f"= {value}")


def _ksym(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    """A `__ksym` variable. Typed externs resolve through a BTF VAR, untyped
    ones through kallsyms (refused when the name has several addresses); the
    Dependency does not say which, so the symbol is what is required."""
    if not builds_q.records_variables(conn, build):
        return _unknown("kernel variables not recorded for this build")
    found = surfaces_q.variables(conn, build, dep.name)
    if not found:
        return _weak_or_fail(dep, "absent")
    per_cpu = " (per-CPU)" if any(v.per_cpu for v in found) else ""
    addresses = {v.address for v in found if v.address is not None}
    if len(addresses) > 1 and not any(v.btf_var for v in found):
        return _warn(
            f"{len(addresses)} symbols of this name: libbpf refuses an untyped extern as ambiguous",
            "ambiguous",
        )
    if not any(v.btf_var for v in found):
        return _ok(f"ok{per_cpu}: symbol only, no BTF VAR (a typed extern needs one)")
    return _ok(f"ok{per_cpu}")


# --------------------------------------------------------------------------- types


def _absent(dep: Dependency, what: str, reason: str | None = None) -> Cell:
    """A missing type, field or value: a warning when the program probes for
    it, else a failure (reason field_missing for a field, absent otherwise)."""
    if dep.detail in GUARDS:
        return _warn(f"{what} (the program checks for it)", "guarded")
    return _fail(what, reason or ("field_missing" if dep.kind == "field" else "absent"))


def _struct(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    if dep.detail == "type_matches" and dep.local:
        return _type_matches(conn, dep, build)
    if dep.kind == "type":
        found = types.find_type(conn, build, dep.name, dep.detail)
        if found.level == "ok":
            return _ok(found.text)
        return _unknown(found.text) if found.level == "unknown" else _absent(dep, found.text)
    kinds = ("enum",) if dep.kind == "enum" else ("struct", "union")
    if types_q.layouts(conn, build, dep.name, kinds):
        return _OK
    return _absent(dep, "absent")


def _type_matches(conn: sqlite3.Connection, dep: Dependency, build: int) -> Cell:
    """bpf_core_type_matches(): libbpf's match rules (ingest.bpf.matches); a probe."""
    assert dep.local is not None
    found = matches.matches(conn, build, dep.kind, dep.name, dep.local)
    if found is None:
        if dep.kind == "type" and not typedefs_recorded(conn, build):
            return _unknown("typedefs not recorded for this build (re-ingest it with --replace)")
        return _absent(dep, f"no {dep.kind} {dep.name}")
    ok, why = found
    return _ok(why) if ok else _absent(dep, f"does not match: {why}", "kind_mismatch")


def _field(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    """A CO-RE field access, resolved as libbpf does (ingest.bpf.core)."""
    found = core.resolve_field(conn, build, dep.name, dep.local, facts.members)
    if found.ok:
        return _OK
    if found.reason in ("absent", "field_missing"):
        return _absent(dep, found.text)
    if found.reason == "kind_mismatch":
        return _fail(found.text, "kind_mismatch")
    return _unknown(found.text)


def _enum_value(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    enum, _, value = dep.name.partition("::")
    layouts = types_q.layouts(conn, build, enum, ("enum",)) if enum else []
    if enum and not layouts:
        return _absent(dep, f"enum {enum} absent")
    number = (
        types_q.enum_value(conn, layouts, value) if layouts else types_q.any_enum_value(conn, build, value)
    )
    return _ok(f"= {number}") if number is not None else _absent(dep, f"no value {value}")


def _struct_ops(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    return _struct(
        conn,
        Dependency(kind="struct", name=dep.name, attach=None, programs=dep.programs, detail=None),
        build,
        facts,
    )


def _alternatives(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
    """A CO-RE alternative group (ingest.bpf.alternatives): ✓ when its first
    member resolves, ⚠ fallback when only a later one does, ✗ when none does;
    "?" when a member that might resolve is not recorded."""
    failures: list[Cell] = []
    unknown: Cell | None = None
    for k, member in enumerate(dep.members):
        cells = [verdict(conn, part, build, facts) for part in member]
        worst = max(cells, key=lambda c: severity(c.level))
        text = " & ".join(part.name for part in member)
        if worst.level == "ok":
            if k == 0:
                return _ok(f"via {text}")
            return _warn(f"only the fallback {text} resolves ({failures[0].text})", "fallback")
        if worst.level == "unknown":
            unknown = unknown or worst
        else:
            failures.append(worst)
    if unknown is not None:
        return _unknown(unknown.text, unknown.reason)
    return _fail("no member resolves: " + "; ".join(c.text for c in failures), failures[0].reason)


def _enumerator(enum: str) -> Check:
    """A check that the kernel's `enum` has the dependency's enumerator:
    bpf_func_id for helpers (BPF_FUNC_loop, in detail), bpf_map_type for map
    types (BPF_MAP_TYPE_RINGBUF, the name)."""

    def check(conn: sqlite3.Connection, dep: Dependency, build: int, facts: BuildContext) -> Cell:
        wanted = dep.detail if enum == "bpf_func_id" else dep.name
        if not types_q.layouts(conn, build, enum, ("enum",)):
            return _unknown(f"enum {enum} not recorded")
        value = Dependency(kind="enum_value", name=f"{enum}::{wanted}", attach=None, programs=(), detail=None)
        found = _enum_value(conn, value, build, facts)
        return _OK if found.level == "ok" else _fail("absent: too old a kernel", "absent")

    return check


_TYPE_KINDS = frozenset(
    (
        "struct",
        "field",
        "enum",
        "enum_value",
        "type",
        "struct_ops",
        "kconfig",
        "helper",
        "map_type",
        "alternatives",
    )
)
_CHECKS: dict[str, Check] = {
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
    "helper": _enumerator("bpf_func_id"),
    "map_type": _enumerator("bpf_map_type"),
    "alternatives": _alternatives,
}


# --------------------------------------------------------------------------- changes


def _changed(conn: sqlite3.Connection, dep: Dependency, before: int, after: int) -> tuple[str, str] | None:
    """What changed for `dep` between build `before` and build `after` (from
    the stored group diffs), as (text, reason), or None."""
    detail: str | None = None  # a field's path below its struct
    kinds: tuple[str, ...]
    if dep.kind in ("function", "kfunc") and dep.detail != "glob":
        item, name, kinds = "function", dep.name, _PROTOTYPE_CHANGES
    elif dep.kind == "field":
        root, _, detail = dep.name.partition(".")
        item, name, kinds = None, root, _FIELD_CHANGES
    elif dep.kind in ("tracepoint", "raw_tracepoint"):
        item, name, kinds = "tracepoint", dep.name, _TRACEPOINT_CHANGES
    else:
        return None
    found = changes_q.changes_between(conn, before, after, name, kinds, item)
    if detail is not None:
        found = [c for c in found if c.detail == detail or (c.detail or "").startswith(detail + ".")]
    if not found:
        return None
    first = found[0]
    text = f"changed: {first.kind}" + (f" {first.detail}" if first.detail else "")
    if first.old and first.new:
        text += " ({} → {})".format(*_clip(first.old, first.new))
    reason = "prototype_changed" if item == "function" else "changed"
    return text + (f" and {len(found) - 1} more" if len(found) > 1 else ""), reason


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
