"""The kinds of interned facts (docs/storage.md): for each, the columns that
identify a fact and the per-build values stored beside it. Their tables are
named after them; ingest.db.facts writes and collects them, ingest.db.values
keeps their values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Family:
    """One kind of interned fact; its tables are named after it (docs/storage.md)."""

    name: str  # e.g. instance: instance_facts, instance_members, instance_values, instance_<value>_runs
    key: tuple[str, ...]  # the content columns a fact is matched on
    #: Per-build integer values, stored with the fact as its first build had them; a
    #: build's own are its value base's (value_bases) plus the delta of its run in
    #: <name>_<value>_runs, or, where no delta can say them (NULL on one side), a row
    #: of <name>_values.
    values: tuple[str, ...] = ()

    @property
    def facts(self) -> str:
        return f"{self.name}_facts"

    @property
    def members(self) -> str:
        """(build_id, block, bits): the build has fact block * 64 + k for each bit k set."""
        return f"{self.name}_members"

    @property
    def values_table(self) -> str:
        """(build_id, <name>_id, values...)."""
        return f"{self.name}_values"

    def runs_table(self, value: str) -> str:
        return f"{self.name}_{value}_runs"


INSTANCES = Family(
    name="instance",
    key=(
        "name_id",
        "external",
        "decl_path_id",
        "cu_path_id",
        "inline",
        "defined",
        "module_name_id",
        "occurrence",
    ),
    values=("decl_line", "address"),
)
CALLS = Family(name="call", key=("callee_id", "caller_id", "inline", "sites"))
SYMBOLS = Family(
    name="symbol",
    key=(
        "name_id",
        "stem_id",
        "suffixes",
        "binding",
        "section",
        "ftrace",
        "kprobe_blocked",
        "module_name_id",
        "occurrence",
    ),
    # A function's size changes between series (82 % of 6.12's symbols that 6.1 has
    # differ in size alone): a value, so that the symbol stays one fact.
    values=("size", "address"),
)
FUNCTIONS = Family(
    name="function",
    key=(
        "name_id",
        "collision",
        "inline",
        "suffixes",
        "n_instances",
        "n_symbols",
        "prototype_id",
        "prototype_source",
        "ftrace",
        "kprobe_blocked",
        "btf_func",
        "module_name_id",
    ),
)
TYPES = Family(name="type", key=("name_id", "layout_id", "kind", "module_name_id"))
VARIABLES = Family(
    name="variable",
    key=("name_id", "size", "binding", "section", "per_cpu", "btf_var", "occurrence"),
    values=("address",),
)
TRACEPOINTS = Family(
    name="tracepoint",
    key=(
        "name_id",
        "system",
        "class_id",
        "struct_layout_id",
        "func_id",
        "print_fmt_id",
        "raw_prototype_id",
        "syscall_id",
        "fields_id",
        "module_name_id",
    ),
)
SYSCALLS = Family(
    name="syscall",
    key=("abi", "number", "name_id", "symbol_id", "table_id"),
)
LSM_HOOKS = Family(name="lsm_hook", key=("name_id", "prototype_id", "bpf_lsm"))
KFUNCS = Family(name="kfunc", key=("name_id", "source", "sets", "flags", "module_name_id"))
CONFIG = Family(name="config", key=("name_id", "value"))
TYPEDEFS = Family(
    name="typedef",
    key=("name_id", "target_id", "resolved_id", "kind", "size", "layout_id"),
)
#: In the order their unused facts are collected (caller edges before the instances they join).
FAMILIES = (
    FUNCTIONS,
    SYMBOLS,
    CALLS,
    INSTANCES,
    TYPES,
    VARIABLES,
    TRACEPOINTS,
    SYSCALLS,
    LSM_HOOKS,
    KFUNCS,
    CONFIG,
    TYPEDEFS,
)
#: The surface tables (views now) -> their family, in the order they are stored.
SURFACES = {
    "tracepoints": TRACEPOINTS,
    "syscalls": SYSCALLS,
    "lsm_hooks": LSM_HOOKS,
    "kfuncs": KFUNCS,
    "config_options": CONFIG,
}
