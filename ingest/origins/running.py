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

import gzip
import hashlib
import platform
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from ingest import assemble, surfaces
from ingest.assemble import ModuleFacts, UnitPart, _btf_prototypes
from ingest.cdecl import LayoutBuilder
from ingest.errors import BadBtf, IngestError
from ingest.model import AttachFacts, Build, BuildInfo, Layout, Module, Symbol, Tracepoint, Variable
from ingest.origins.facts import Sources
from ingest.pipeline import Identity, IngestResult, collector_off, store
from ingest.readers import elf
from ingest.readers.btf import BtfInfo, read_btf
from ingest.surfaces import kconfig
from ingest.surfaces.kfuncs import read_kfuncs

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


class KallsymsEntry(NamedTuple):
    """One line of /proc/kallsyms."""

    address: int
    kind: str  # the type letter: t, T, d, ...
    name: str
    module: str | None  # the [module] tag; None: vmlinux


@dataclass(frozen=True, slots=True)
class Tracefs:
    """What tracefs and debugfs told; None: not mounted (or not readable)."""

    events: list[Tracepoint] | None
    filter_functions: set[tuple[str, str | None]] | None  # (name, module)
    blacklist: set[tuple[str, str | None]] | None  # (name, module)
    source: str | None  # the tracefs directory


def read_running(root: Path = Path("/"), release: str | None = None, arch: str | None = None) -> Build:
    """The running system below `root` as a BTF-only build whose sources say what each fact came from."""
    vmlinux = root / "sys/kernel/btf/vmlinux"
    try:
        data = vmlinux.read_bytes()
    except OSError:
        raise IngestError(
            f"{vmlinux}: no kernel BTF (the kernel lacks CONFIG_DEBUG_INFO_BTF); "
            "fetch its debug package instead (kernsurf fetch debuginfod --running)"
        ) from None
    try:
        btf = read_btf(data)
    except BadBtf as exc:
        raise IngestError(f"{vmlinux}: bad BTF ({exc})") from None
    banner = read_text(root / "proc/version")
    release = release or elf.release(banner)
    entries = read_kallsyms(root / "proc/kallsyms")
    config, config_source = read_config(root, release)
    tracefs = read_tracefs(root)
    modules_dir = root / "sys/kernel/btf"
    module_btfs = sorted(p for p in modules_dir.iterdir() if p.name != "vmlinux" and p.is_file())
    loaded = _proc_modules(root / "proc/modules")
    no_modules = config.get("CONFIG_MODULES") == "n"
    symbols = _symbols(entries, None)
    build_id = read_build_id(root / "sys/kernel/notes")
    sha = hashlib.sha256(data).hexdigest()
    info = BuildInfo(
        build_id=build_id or sha,
        distro=None,
        version=elf.package_version(banner),
        release=release,
        arch=arch or ARCHES.get(platform.machine(), platform.machine()),
        flavor=None,
        compiler=banner_compiler(banner),
        dwarf_version=None,
        has_dwarf=False,
        has_btf=True,
        has_symtab=bool(symbols),
        file_size=len(data),
        sha256=sha,
        path=str(vmlinux),
    )
    modules = None
    if module_btfs or loaded or no_modules:

        def modules(
            layouts: list[Layout], types: LayoutBuilder | None, prototyped: frozenset[str]
        ) -> Iterator[ModuleFacts]:
            for path in module_btfs:
                yield _module(path, btf, types, entries, tracefs, loaded.get(path.name))

    build = assemble.assemble(info, [], symbols, btf, modules)
    variables = [
        Variable(
            e.name, e.address, None, "STB_LOCAL" if e.kind.islower() else "STB_GLOBAL", None, False, False
        )
        for e in entries
        if e.module is None and e.kind in "dDbBrRgGvV"
    ]
    # Without CONFIG_KALLSYMS_ALL, kallsyms lists text symbols only: its few data symbols are not the variables.
    every_symbol = config.get("CONFIG_KALLSYMS_ALL") == "y" or (not config and len(variables) > 1000)
    surfaces.add_surfaces(build, None, btf, variables if every_symbol else None)
    build.config = config
    if tracefs.filter_functions is not None:
        build.attach = _attach(symbols, tracefs)
    if tracefs.events is not None:
        build.tracepoints = _with_events(build.tracepoints, tracefs.events, {x.name for x in build.layouts})
    build.sources = _sources(build, entries, config_source, tracefs, bool(module_btfs), no_modules)
    return build


def _sources(
    build: Build,
    entries: list[KallsymsEntry],
    config: str | None,
    tracefs: Tracefs,
    module_btf: bool,
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


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def banner_compiler(banner: str | None) -> str | None:
    """The compiler a `linux_banner` names: "gcc (GCC) 15.3.0" of
    "Linux version 6.18.44 (b@h) (gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46) #1 ..."."""
    m = re.match(r"Linux version \S+ \([^)]*\) \((.*?)\) #", banner or "")
    if not m:
        return None
    return re.split(r", (?:GNU ld|LLD|ld)\b", m.group(1))[0].strip() or None


def read_build_id(path: Path) -> str | None:
    """The GNU build-id of `/sys/kernel/notes` (the kernel's ELF notes, raw), None when absent."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    offset = 0
    while offset + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from("<III", data, offset)
        name_at = offset + 12
        desc_at = name_at + (namesz + 3) // 4 * 4
        end = desc_at + (descsz + 3) // 4 * 4
        if end > len(data):
            return None
        if kind == 3 and data[name_at : name_at + namesz].rstrip(b"\0") == b"GNU":
            return data[desc_at : desc_at + descsz].hex()
        offset = end
    return None


def read_kallsyms(path: Path) -> list[KallsymsEntry]:
    """Every symbol of /proc/kallsyms, with its [module] tag; empty when unreadable."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or len(parts[1]) != 1:
            continue
        try:
            address = int(parts[0], 16)
        except ValueError:
            raise IngestError(f"{path}: not a kallsyms file (bad line {line[:60]!r})") from None
        module = parts[3].strip("[]") if len(parts) > 3 else None
        out.append(KallsymsEntry(address, parts[1], parts[2], module))
    return out


def _symbols(entries: list[KallsymsEntry], module: str | None) -> list[Symbol]:
    out = []
    for e in entries:
        if e.module != module or e.kind not in "tTwW" or e.name.startswith("__pfx_"):
            continue
        stem, suffixes = elf.split_symbol(e.name)
        binding = "STB_GLOBAL" if e.kind == "T" else "STB_WEAK" if e.kind in "wW" else "STB_LOCAL"
        out.append(Symbol(e.name, stem, suffixes, e.address, 0, binding, ".text", module=module))
    return out


def config_text(root: Path, release: str | None) -> tuple[str, str] | None:
    """The running kernel's config text and where it came from: `/boot/config-<release>`,
    else `/proc/config.gz`; None when neither is there."""
    boot = root / f"boot/config-{release}"
    if release and boot.is_file():
        return boot.read_text(errors="replace"), f"/boot/config-{release}"
    try:
        text = gzip.decompress((root / "proc/config.gz").read_bytes()).decode(errors="replace")
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    return text, "/proc/config.gz"


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
    base: BtfInfo,
    types: LayoutBuilder | None,
    entries: list[KallsymsEntry],
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
        return ModuleFacts(module, UnitPart([], [], {}, []), [], {}, [])
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
        part=UnitPart([], [], {}, []),
        symbols=symbols,
        prototypes=_btf_prototypes(btf, builder.texts),
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
