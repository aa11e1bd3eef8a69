"""libbpf's program section table (section_defs in libbpf.c), once.

The BPF object reader classifies each program section with it, and
`kernsurf check` reads the attach types of its text forms (`kprobe:vmap`,
`tp:sched/sched_switch`) from it.

A section is either exact (`xdp`, `tc/ingress`: its attach is its name) or
a prefix, written `SEC("prefix")` or `SEC("prefix/target")`. A prefix has a
canonical attach type (`tp` -> `tracepoint`) and says what its target names
in the kernel, or None when no kernel name is involved (uprobes, freplace).
"""

from __future__ import annotations

from typing import NamedTuple


class Prefix(NamedTuple):
    """What a section prefix means."""

    attach: str  # canonical attach type: "tracepoint" for tp, "fentry.s", ...
    target: str | None  # what the target names: function (a symbol), btf_function,
    # glob, syscall, tracepoint, raw_tracepoint, lsm_hook, iter,
    # struct_ops; None: nothing in the kernel


class Variant(NamedTuple):
    """A sleepable (.s) or writable (.w) attach type, as its base type and a flag."""

    attach: str  # the base attach type: fentry for fentry.s
    detail: str  # "sleepable" or "writable"


class Section(NamedTuple):
    """One program section, classified."""

    attach: str | None  # canonical attach type; None when libbpf does not know the section
    what: str | None  # what the target names (Prefix.target)
    target: str | None  # the text after "prefix/", None without one


# Base attach types first, each followed by its variants and short spellings:
# ATTACH_KINDS below keeps this order.
PREFIXES: dict[str, Prefix] = {
    "kprobe": Prefix("kprobe", "function"),
    "kretprobe": Prefix("kretprobe", "function"),
    "fentry": Prefix("fentry", "btf_function"),
    "fexit": Prefix("fexit", "btf_function"),
    "fmod_ret": Prefix("fmod_ret", "btf_function"),
    "fentry.s": Prefix("fentry.s", "btf_function"),
    "fexit.s": Prefix("fexit.s", "btf_function"),
    "fmod_ret.s": Prefix("fmod_ret.s", "btf_function"),
    "kprobe.multi": Prefix("kprobe.multi", "glob"),
    "kretprobe.multi": Prefix("kretprobe.multi", "glob"),
    "kprobe.session": Prefix("kprobe.session", "glob"),
    "tracepoint": Prefix("tracepoint", "tracepoint"),
    "tp": Prefix("tracepoint", "tracepoint"),
    "raw_tracepoint": Prefix("raw_tracepoint", "raw_tracepoint"),
    "raw_tp": Prefix("raw_tracepoint", "raw_tracepoint"),
    "raw_tracepoint.w": Prefix("raw_tracepoint.w", "raw_tracepoint"),
    "raw_tp.w": Prefix("raw_tracepoint.w", "raw_tracepoint"),
    "tp_btf": Prefix("tp_btf", "raw_tracepoint"),
    "lsm": Prefix("lsm", "lsm_hook"),
    "lsm.s": Prefix("lsm.s", "lsm_hook"),
    "lsm_cgroup": Prefix("lsm_cgroup", "lsm_hook"),
    "ksyscall": Prefix("ksyscall", "syscall"),
    "kretsyscall": Prefix("kretsyscall", "syscall"),
    "iter": Prefix("iter", "iter"),
    "iter.s": Prefix("iter.s", "iter"),
    "struct_ops": Prefix("struct_ops", "struct_ops"),
    "struct_ops.s": Prefix("struct_ops.s", "struct_ops"),
    "freplace": Prefix("freplace", None),  # the target is a BPF function, not the kernel's
    # user space: no kernel symbol
    "uprobe": Prefix("uprobe", None),
    "uretprobe": Prefix("uretprobe", None),
    "uprobe.s": Prefix("uprobe.s", None),
    "uretprobe.s": Prefix("uretprobe.s", None),
    "uprobe.multi": Prefix("uprobe.multi", None),
    "uretprobe.multi": Prefix("uretprobe.multi", None),
    "uprobe.multi.s": Prefix("uprobe.multi.s", None),
    "uretprobe.multi.s": Prefix("uretprobe.multi.s", None),
    "uprobe.session": Prefix("uprobe.session", None),
    "uprobe.session.s": Prefix("uprobe.session.s", None),
    "usdt": Prefix("usdt", None),
    "usdt.s": Prefix("usdt.s", None),
}

VARIANTS: dict[str, Variant] = {
    "fentry.s": Variant("fentry", "sleepable"),
    "fexit.s": Variant("fexit", "sleepable"),
    "fmod_ret.s": Variant("fmod_ret", "sleepable"),
    "lsm.s": Variant("lsm", "sleepable"),
    "iter.s": Variant("iter", "sleepable"),
    "struct_ops.s": Variant("struct_ops", "sleepable"),
    "raw_tracepoint.w": Variant("raw_tracepoint", "writable"),
}

#: Sections matched exactly; their attach is the section name itself.
EXACT = frozenset(
    (
        "socket",
        "sk_reuseport",
        "sk_reuseport/migrate",
        "tc",
        "tc/ingress",
        "tc/egress",
        "tcx/ingress",
        "tcx/egress",
        "netkit/primary",
        "netkit/peer",
        "classifier",
        "action",
        "syscall",
        "xdp",
        "xdp.frags",
        "xdp/devmap",
        "xdp.frags/devmap",
        "xdp/cpumap",
        "xdp.frags/cpumap",
        "perf_event",
        "lwt_in",
        "lwt_out",
        "lwt_xmit",
        "lwt_seg6local",
        "sockops",
        "sk_skb",
        "sk_skb/stream_parser",
        "sk_skb/stream_verdict",
        "sk_skb/verdict",
        "sk_msg",
        "lirc_mode2",
        "flow_dissector",
        "cgroup_skb/ingress",
        "cgroup_skb/egress",
        "cgroup/skb",
        "cgroup/sock_create",
        "cgroup/sock_release",
        "cgroup/sock",
        "cgroup/post_bind4",
        "cgroup/post_bind6",
        "cgroup/bind4",
        "cgroup/bind6",
        "cgroup/connect4",
        "cgroup/connect6",
        "cgroup/connect_unix",
        "cgroup/sendmsg4",
        "cgroup/sendmsg6",
        "cgroup/sendmsg_unix",
        "cgroup/recvmsg4",
        "cgroup/recvmsg6",
        "cgroup/recvmsg_unix",
        "cgroup/getpeername4",
        "cgroup/getpeername6",
        "cgroup/getpeername_unix",
        "cgroup/getsockname4",
        "cgroup/getsockname6",
        "cgroup/getsockname_unix",
        "cgroup/sysctl",
        "cgroup/getsockopt",
        "cgroup/setsockopt",
        "cgroup/dev",
        "sk_lookup",
        "netfilter",
    )
)

#: Data sections holding struct_ops maps.
STRUCT_OPS_SECTIONS = (".struct_ops", ".struct_ops.link")

#: The dependency kind each kind of target is checked as.
_TARGET_KINDS = {"function": "function", "btf_function": "function", "glob": "function"}


def dependency_kind(target: str) -> str:
    """The dependency kind of what a section's target names: a kprobe's
    symbol, an fentry's BTF function and a kprobe.multi glob are all functions."""
    return _TARGET_KINDS.get(target, target)


#: Base attach type naming a kernel target -> the kind of dependency it names.
ATTACH_KINDS: dict[str, str] = {
    p.attach: dependency_kind(p.target)
    for p in PREFIXES.values()
    if p.target is not None and p.attach not in VARIANTS
}
#: libbpf's short spellings of base attach types: tp, raw_tp.
ALIASES: dict[str, str] = {
    prefix: p.attach for prefix, p in PREFIXES.items() if prefix != p.attach and p.attach in ATTACH_KINDS
}
#: Attach types of programs that probe user-space binaries (uprobe, usdt): no kernel dependency.
USER_ATTACHES = frozenset(
    p.attach for p in PREFIXES.values() if p.attach.startswith(("uprobe", "uretprobe", "usdt"))
)
#: Attach types whose target is a glob pattern of symbols.
GLOB_ATTACHES = frozenset(p.attach for p in PREFIXES.values() if p.target == "glob")


def classify(section: str) -> Section:
    """The attach type of a program section and what its target names."""
    if section in EXACT:
        return Section(attach=section, what=None, target=None)
    prefix, sep, rest = section.partition("/")
    hit = PREFIXES.get(prefix)
    if hit is None:
        return Section(attach=None, what=None, target=None)
    return Section(attach=hit.attach, what=hit.target, target=rest if sep else None)
