"""Config gates: the kernel config options an attach mechanism needs, once.

`kernsurf check` applies them where a build has its config recorded: a
missing option fails the dependency (reason config_missing), naming the
option; without a config the gate is not applied. The sources of each fact
are in docs/concepts.md#check-verdicts-and-reason-codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from ingest.bpf.objects import Dependency


class Gate(NamedTuple):
    """One option a mechanism needs."""

    option: str  # CONFIG_KPROBES
    word: str | None  # for a list option (CONFIG_LSM): the word it must contain; None: set to y or m
    arches: frozenset[str] | None  # the build arches it applies to; None: every arch
    note: str  # appended to the failure text, e.g. "(arm64 has it from 6.4)"


_X86_ARM64 = frozenset(("amd64", "x86_64", "arm64", "aarch64"))
_KPROBES = (Gate("CONFIG_KPROBES", None, None, ""),)
_TRAMPOLINE = (
    Gate("CONFIG_DEBUG_INFO_BTF", None, None, ""),
    Gate("CONFIG_BPF_JIT", None, None, ""),
)
_DIRECT_CALLS = Gate(
    "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS", None, _X86_ARM64, "(x86-64 from 5.5, arm64 from 6.4)"
)
_LSM = (
    Gate("CONFIG_BPF_LSM", None, None, ""),
    Gate("CONFIG_LSM", "bpf", None, "(the LSMs enabled at boot unless lsm= says otherwise)"),
    *_TRAMPOLINE,
)

#: Attach type -> (what it is called in the text, the options it needs).
GATES: dict[str, tuple[str, tuple[Gate, ...]]] = {
    "kprobe": ("kprobes", _KPROBES),
    "kretprobe": ("kretprobes", _KPROBES),
    "ksyscall": ("ksyscall (kprobe) programs", _KPROBES),
    "kretsyscall": ("kretsyscall (kprobe) programs", _KPROBES),
    # kprobe.multi attaches through fprobe, not kprobes (kernel/trace/bpf_trace.c: #ifdef CONFIG_FPROBE)
    "kprobe.multi": ("kprobe.multi programs", (Gate("CONFIG_FPROBE", None, None, ""),)),
    "kretprobe.multi": ("kretprobe.multi programs", (Gate("CONFIG_FPROBE", None, None, ""),)),
    "kprobe.session": ("kprobe.session programs", (Gate("CONFIG_FPROBE", None, None, ""),)),
    "fentry": ("fentry programs", (*_TRAMPOLINE, _DIRECT_CALLS)),
    "fexit": ("fexit programs", (*_TRAMPOLINE, _DIRECT_CALLS)),
    "fmod_ret": ("fmod_ret programs", (*_TRAMPOLINE, _DIRECT_CALLS)),
    "lsm": ("lsm programs", _LSM),
    "lsm_cgroup": ("lsm_cgroup programs", _LSM),
}
#: Trace events of system `syscalls` (sys_enter_*, sys_exit_*).
_SYSCALL_EVENTS = ("syscall trace events", (Gate("CONFIG_FTRACE_SYSCALLS", None, None, ""),))
#: fentry/fexit on a module's function (SEC("fentry/mod:func")) needs module BTF.
_MODULE_BTF = Gate("CONFIG_DEBUG_INFO_BTF_MODULES", None, None, "")
#: The option fentry/fexit into a module's function need (its split BTF).
MODULE_BTF = _MODULE_BTF.option

#: Every kernel config that can run BPF says whether it has the bpf() syscall;
#: a config that does not mention it is partial, and the gates are not applied.
_COMPLETE = "CONFIG_BPF_SYSCALL"
#: Every option a gate reads (for ingest.bpf.check.build_context).
OPTIONS: tuple[str, ...] = tuple(
    sorted(
        {g.option for _, gates in (*GATES.values(), _SYSCALL_EVENTS) for g in gates}
        | {_MODULE_BTF.option, _COMPLETE}
    )
)


def gates(dep: Dependency) -> tuple[str, tuple[Gate, ...]] | None:
    """What `dep`'s mechanism is called and the options it needs; None when ungated."""
    if dep.kind == "tracepoint" and dep.detail == "syscalls":
        return _SYSCALL_EVENTS
    found = GATES.get(dep.attach or "")
    if found is not None and dep.detail and "module:" in dep.detail:
        return found[0], (*found[1], _MODULE_BTF)
    return found


def missing(dep: Dependency, arch: str | None, config: Mapping[str, str]) -> str | None:
    """Why the build's config (option -> value, of OPTIONS) stops `dep`'s
    mechanism, None when every gate is met. An option a complete config does
    not list is off (Kconfig writes every visible option, "is not set" included)."""
    found = gates(dep)
    if found is None or _COMPLETE not in config:
        return None
    what, needed = found
    for gate in needed:
        if gate.arches is not None and arch not in gate.arches:
            continue
        value = config.get(gate.option)
        if gate.word is not None:
            words = (value or "").strip('"').split(",")
            if gate.word not in words:
                return f"{gate.option} lacks {gate.word!r}: {what} need it {gate.note}".rstrip()
        elif value not in ("y", "m"):
            state = "is not set" if value is not None else "is absent"
            return f"{gate.option} {state}: {what} need it {gate.note}".rstrip()
    return None
