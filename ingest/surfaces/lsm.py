"""LSM hooks (docs/concepts.md#surfaces): one per member of `struct security_hook_heads`, or,
from 6.12 on (hooks became static calls), of `struct lsm_static_calls_table`;
the prototype is the same-named member of `union security_list_options`.

Prototypes are stored as function types without the pointer, "int (struct
file *)" rather than the member's "int (*)(struct file *)", the spelling of
Tracepoint.raw_prototype (model.py).
"""

from __future__ import annotations

from ingest.model import Layout, LsmHook
from ingest.readers.btf import BtfInfo

#: The structs whose members are the hooks, newest first (6.12 replaced the first).
HOOK_TABLES = ("lsm_static_calls_table", "security_hook_heads")
OPTIONS = "security_list_options"


def read_lsm_hooks(layouts: list[Layout], btf: BtfInfo | None) -> list[LsmHook]:
    """The build's LSM hooks in declaration order; [] when neither table exists."""
    by_name = {(lay.kind, lay.name): lay for lay in layouts}
    table = next((by_name[("struct", n)] for n in HOOK_TABLES if ("struct", n) in by_name), None)
    if table is None:
        return []
    options = by_name.get(("union", OPTIONS))
    protos = {f.name: f.type_text for f in options.fields if f.name} if options else {}
    funcs = btf.funcs if btf else {}
    return [
        LsmHook(f.name, function_type(protos.get(f.name)), f"bpf_lsm_{f.name}" in funcs)
        for f in top_level_members(table)
    ]


def top_level_members(layout: Layout) -> list:
    """The named direct members of a layout (not those of nested anonymous aggregates)."""
    return [f for f in layout.fields if f.name and f.parent is None]


def function_type(pointer_text: str | None) -> str | None:
    """ "int (*)(struct file *)" -> "int (struct file *)"; None for anything
    that is not a pointer to function."""
    if not pointer_text or "(*)(" not in pointer_text:
        return None
    return pointer_text.replace("(*)(", "(", 1)
