"""The running system as a build (`kernsurf ingest --running`).

Reads, below a root ("/" on the machine itself; a copied tree in tests):
- `/sys/kernel/btf/vmlinux`, and each loaded module's split BTF `/sys/kernel/btf/<module>`
  with its size and dependencies from `/proc/modules`;
- `/proc/kallsyms`: function and data symbols, module ones tagged `[module]`
  (addresses are zero unless read as root: then addresses are unknown);
- `/proc/version` (the `linux_banner`: release, package version, compiler) and
  `/sys/kernel/notes` (the GNU build-id, which the debug vmlinux carries too);
- the config: `/boot/config-<release>`, else `/proc/config.gz`;
- when tracefs is mounted (`/sys/kernel/tracing`, or `tracing/` of debugfs): the
  trace events (`events/<system>/<event>/format`) and `available_filter_functions`
  (ftrace-ability); when debugfs is: the kprobe blacklist (`kprobes/blacklist`).

What none of them gave is recorded as unknown (ingest.origins.facts).
"""

from __future__ import annotations

import io
import platform
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ingest.errors import BadBtf, IngestError
from ingest.join.build import join_build
from ingest.model import AttachFacts, Build, Module, Symbol, Tracepoint, Variable
from ingest.modules.module import ModuleFacts
from ingest.pipeline import Identity, IngestResult, build_of, collector_off, store, surfaces_of
from ingest.readers import elf, kallsyms
from ingest.readers.btf import BtfInfo, read_btf
from ingest.readers.procfs import config_text, read_build_id, read_text
from ingest.surfaces import kconfig
from ingest.surfaces.kfuncs import read_kfuncs
from ingest.types.cdecl import LayoutBuilder
from ingest.vmlinux.prototypes import btf_prototypes
from ingest.vmlinux.read import read_vmlinux
from ingest.vmlinux.sources import Sources
from ingest.vmlinux.units import UnitPart

#: `uname -m` -> the architecture names builds use (Debian's).
ARCHES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "i386",
    "i686": "i386",
    "armv7l": "armhf",
    "ppc64le": "ppc64el",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
#: The reason stored for a function in the running kernel's kprobe blacklist (it does not say why).
BLACKLISTED = "kprobe blacklist"
_TRACEFS = ("sys/kernel/tracing", "sys/kernel/debug/tracing")


@dataclass(frozen=True, slots=True)
class Tracefs:
    """What tracefs and debugfs told; None: not mounted (or not readable)."""

    events: list[Tracepoint] | None
    filter_functions: set[tuple[str, str | None]] | None  # (name, module)
    blacklist: set[tuple[str, str | None]] | None  # (name, module)
    source: str | None  # the tracefs directory


def read_running(root: Path = Path("/"), release: str | None = None, arch: str | None = None) -> Build:
    """The running system below `root` as a BTF-only build whose sources say what each fact came from."""
    vmlinux_path = root / "sys/kernel/btf/vmlinux"
    try:
        data = vmlinux_path.read_bytes()
    except OSError:
        raise IngestError(
            f"{vmlinux_path}: no kernel BTF (the kernel lacks CONFIG_DEBUG_INFO_BTF); "
            "fetch its debug package instead (kernsurf fetch debuginfod --running)"
        ) from None
    banner = read_text(root / "proc/version")
    release = release or elf.release(banner)
    entries = kallsyms.read_entries(root / "proc/kallsyms")
    config, config_source = read_config(root, release)
    tracefs = read_tracefs(root)
    module_btfs = sorted(
        p for p in (root / "sys/kernel/btf").iterdir() if p.name != "vmlinux" and p.is_file()
    )
    loaded = _proc_modules(root / "proc/modules")
    no_modules = config.get("CONFIG_MODULES") == "n"
    symbols = _symbols(entries, None)
    # Without CONFIG_KALLSYMS_ALL, kallsyms lists text symbols only: its few data symbols are not the variables.
    variables = [
        Variable(
            e.name, e.address, None, "STB_LOCAL" if e.kind.islower() else "STB_GLOBAL", None, False, False
        )
        for e in entries
        if e.module is None and e.kind in "dDbBrRgGvV"
    ]
    every_symbol = config.get("CONFIG_KALLSYMS_ALL") == "y" or (not config and len(variables) > 1000)
    blob = read_vmlinux(vmlinux_path, io.BytesIO(data), Identity())  # types and prototypes of the BTF
    build_id = read_build_id(root / "sys/kernel/notes")
    vmlinux = replace(
        blob,
        info=replace(
            blob.info,
            build_id=build_id or blob.info.sha256,
            version=elf.package_version(banner),
            release=release,
            arch=arch or ARCHES.get(platform.machine(), platform.machine()),
            flavor=None,
            compiler=banner_compiler(banner),
            has_symtab=bool(symbols),
        ),
        symbols=symbols,
        data_symbols=variables if every_symbol else None,
    )
    modules = None
    if module_btfs or loaded or no_modules:
        modules = [
            _module(p, vmlinux.btf, vmlinux.types, entries, tracefs, loaded.get(p.name)) for p in module_btfs
        ]
    joined = join_build(vmlinux, modules)
    surfaces = surfaces_of(vmlinux, joined)  # its memory is None: a BTF blob
    if tracefs.filter_functions is not None:  # tracefs knows what the BTF cannot
        surfaces = replace(surfaces, attach=_attach(symbols, tracefs))
    if tracefs.events is not None:
        structs = {x.name for x in vmlinux.layouts}
        surfaces = replace(surfaces, tracepoints=_with_events(surfaces.tracepoints, tracefs.events, structs))
    build = build_of(vmlinux, joined, surfaces, config)
    build.sources = _sources(build, entries, config_source, tracefs, no_modules)
    return build


def _sources(
    build: Build,
    entries: list[kallsyms.Entry],
    config: str | None,
    tracefs: Tracefs,
    no_modules: bool,
) -> Sources:
    info = build.info
    kallsyms = "/proc/kallsyms" if entries else None
    addressed = kallsyms if any(e.address for e in entries) else None
    tracing = tracefs.source
    return {
        "build_id": "/sys/kernel/notes" if info.build_id != info.sha256 else None,
        "release": "/proc/version" if info.release else None,
        "compiler": "/proc/version" if info.compiler else None,
        "types": "/sys/kernel/btf/vmlinux",
        "prototypes": "/sys/kernel/btf/vmlinux",
        "instances": None,
        "symbols": kallsyms,
        "addresses": addressed,
        "variables": kallsyms if build.variables is not None else None,
        "config": config,
        "trace_events": f"{tracing}/events" if tracefs.events is not None else None,
        "raw_tracepoints": "/sys/kernel/btf/vmlinux",
        "syscalls": None,
        "ftrace": f"{tracing}/available_filter_functions" if tracefs.filter_functions is not None else None,
        "kprobe_blacklist": "/sys/kernel/debug/kprobes/blacklist" if tracefs.blacklist is not None else None,
        "kfuncs": "/sys/kernel/btf/vmlinux",
        # A kernel without CONFIG_MODULES has them all; else only the loaded ones are seen.
        "modules": "CONFIG_MODULES is not set"
        if no_modules
        else "loaded modules: /sys/kernel/btf, /proc/modules"
        if build.modules is not None
        else None,
    }


def banner_compiler(banner: str | None) -> str | None:
    """The compiler a `linux_banner` names: "gcc (GCC) 15.3.0" of
    "Linux version 6.18.44 (b@h) (gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46) #1 ..."."""
    m = re.match(r"Linux version \S+ \([^)]*\) \((.*?)\) #", banner or "")
    if not m:
        return None
    return re.split(r", (?:GNU ld|LLD|ld)\b", m.group(1))[0].strip() or None


def _symbols(entries: list[kallsyms.Entry], module: str | None) -> list[Symbol]:
    out = []
    for e in entries:
        if e.module != module or e.kind not in "tTwW" or e.name.startswith("__pfx_"):
            continue
        stem, suffixes = elf.split_symbol(e.name)
        binding = "STB_GLOBAL" if e.kind == "T" else "STB_WEAK" if e.kind in "wW" else "STB_LOCAL"
        out.append(Symbol(e.name, stem, suffixes, e.address, 0, binding, ".text", module=module))
    return out


def read_config(root: Path, release: str | None) -> tuple[dict[str, str], str | None]:
    """The running kernel's config and where it came from ({} and None when not there)."""
    found = config_text(root, release)
    options = kconfig.parse_config(found[0]) if found else {}
    return options, found[1] if found and options else None


def _proc_modules(path: Path) -> dict[str, tuple[int | None, tuple[str, ...]]]:
    """/proc/modules: name -> (size, the modules it uses)."""
    text = read_text(path) or ""
    out: dict[str, tuple[int | None, tuple[str, ...]]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            # "name size refcount users state address": `users` are the modules using it
            out[parts[0]] = (int(parts[1]) if parts[1].isdigit() else None, ())
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            for user in parts[3].strip(",").split(","):
                if user in out and user != "-":
                    size, depends = out[user]
                    out[user] = (size, (*depends, parts[0]))
    return out


def _module(
    path: Path,
    base: BtfInfo | None,
    types: LayoutBuilder | None,
    entries: list[kallsyms.Entry],
    tracefs: Tracefs,
    loaded: tuple[int | None, tuple[str, ...]] | None,
) -> ModuleFacts:
    """One loaded module from its split BTF and its tagged kallsyms lines."""
    name = path.name
    size, depends = loaded or (None, ())
    symbols = _symbols(entries, name)
    try:
        btf = read_btf(path.read_bytes(), base=base)
    except (OSError, BadBtf) as exc:
        module = Module(name=name, path=f"{name}.ko", depends=depends, size=size, error=f"split BTF: {exc}")
        return ModuleFacts(module, UnitPart.empty(), [], {}, [])
    builder = LayoutBuilder(btf.graph, base=types)
    module = Module(
        name=name,
        path=f"{name}.ko",  # the running kernel does not say where below lib/modules/<release>/ it lies
        depends=depends,
        size=size,
        layouts=[lay for lay in builder.named() if lay.name],
        attach=_attach(symbols, tracefs, name) if tracefs.filter_functions is not None else {},
        btf_funcs=frozenset(btf.funcs),
    )
    return ModuleFacts(
        module=module,
        part=UnitPart.empty(),
        symbols=symbols,
        prototypes=btf_prototypes(btf, builder.texts),
        tracepoints=[],  # tracefs does not say which module registers an event
        kfuncs=[replace(k, module=name) for k in read_kfuncs(None, btf)],
    )


def _attach(symbols: list[Symbol], tracefs: Tracefs, module: str | None = None) -> dict[str, AttachFacts]:
    """ftrace-ability from available_filter_functions, kprobe refusals from the blacklist, per symbol."""
    traced = tracefs.filter_functions or set()
    blocked = tracefs.blacklist or set()
    return {
        s.name: AttachFacts(
            ftrace=(s.name, module) in traced,
            kprobe_blocked=BLACKLISTED if (s.name, module) in blocked else None,
        )
        for s in symbols
    }


def read_tracefs(root: Path) -> Tracefs:
    """Trace events, ftrace-able functions and the kprobe blacklist, where mounted and readable."""
    tracing = next((root / d for d in _TRACEFS if (root / d / "events").is_dir()), None)
    blacklist = _name_list(root / "sys/kernel/debug/kprobes/blacklist", last=True)
    if tracing is None:
        return Tracefs(None, None, blacklist, None)
    events = []
    for fmt in sorted(tracing.glob("events/*/*/format")):
        system = fmt.parent.parent.name
        if system != "ftrace":  # ftrace's own events (function, ...) are not tracepoints
            event = _event(fmt, system)
            if event is not None:
                events.append(event)
    filters = _name_list(tracing / "available_filter_functions", last=False)
    return Tracefs(events, filters, blacklist, "/" + str(tracing.relative_to(root)))


def _name_list(path: Path, last: bool) -> set[tuple[str, str | None]] | None:
    """(name, module) of each line: "name [module]", or with `last` "0xstart-0xend\\tname [module]"."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    out = set()
    for line in text.splitlines():
        parts = line.split()
        if last:
            parts = parts[1:]
        if parts:
            out.add((parts[0], parts[1].strip("[]") if len(parts) > 1 else None))
    return out


def _event(path: Path, system: str) -> Tracepoint | None:
    """One event's `format` file: its name, print format and, for syscall events, the fields."""
    text = read_text(path)
    if not text:
        return None
    name = re.search(r"^name: (\S+)", text, re.M)
    if name is None:
        return None
    fields = [
        m.group(1).strip()
        for m in re.finditer(r"^\s*field:(.*?);", text, re.M)
        if not m.group(1).split()[-1].startswith("common_")
    ]
    fmt = re.search(r"^print fmt: (.*)$", text, re.M)
    event = Tracepoint(name=name.group(1), system=system, print_fmt=fmt.group(1) if fmt else None)
    if system == "syscalls":
        enter = event.name.startswith("sys_enter_")
        event.event_class = "syscall_enter" if enter else "syscall_exit"
        event.syscall = event.name.removeprefix("sys_enter_").removeprefix("sys_exit_")
        event.fields = "; ".join(fields)
    return event


def _with_events(found: list[Tracepoint], events: list[Tracepoint], layouts: set[str]) -> list[Tracepoint]:
    """The raw tracepoints BTF gave, joined with tracefs's events (one per name, sorted)."""
    by_name = {t.name: t for t in found}
    for event in events:
        if event.syscall is not None:
            event.struct = (
                "syscall_trace_enter" if event.event_class == "syscall_enter" else "syscall_trace_exit"
            )
        elif f"trace_event_raw_{event.name}" in layouts:  # TRACE_EVENT: the class is the event
            event.struct = f"trace_event_raw_{event.name}"
            event.event_class = event.name
        raw = by_name.get(event.name)
        if raw is not None:
            event.raw_prototype = raw.raw_prototype
            event.module = raw.module
        by_name[event.name] = event
    return [by_name[n] for n in sorted(by_name)]


def ingest_running(
    db_path: Path, root: Path = Path("/"), identity: Identity | None = None, replace: bool = False
) -> IngestResult:
    """Read the running system below `root` and store it in `db_path` as one build
    (a no-op when its build-id is stored, unless `replace`)."""
    identity = identity or Identity()
    start = time.perf_counter()
    with collector_off():
        build = read_running(root, identity.release, identity.arch)
        info = build.info
        info.distro = identity.distro or info.distro
        info.version = identity.version or info.version
        info.flavor = identity.flavor or info.flavor
        return store(build, db_path, start, replace=replace, label=identity.label)
