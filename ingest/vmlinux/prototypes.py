"""Prototypes of the functions a BTF describes (docs/concepts.md#prototypes)."""

from __future__ import annotations

from ingest.model import Prototype
from ingest.readers.btf import BtfInfo
from ingest.types import cdecl


def btf_prototypes(btf: BtfInfo, texts: cdecl.TypeTexts | None = None) -> dict[str, Prototype]:
    """Prototypes of every BTF FUNC (`texts`: its graph's). Functions share
    FUNC_PROTOs (BTF is deduplicated), so each is printed once with a placeholder name."""
    placeholder = "\0"
    printed: dict[int, Prototype | None] = {}
    out: dict[str, Prototype] = {}
    for name, ids in btf.funcs.items():
        tid = ids[0]
        if tid not in printed:
            try:
                printed[tid] = cdecl.prototype(btf.graph, tid, placeholder, "btf", texts)
            except ValueError:
                printed[tid] = None
        proto = printed[tid]
        if proto is not None:
            out[name] = Prototype(
                return_type=proto.return_type,
                params=proto.params,
                variadic=proto.variadic,
                text=proto.text.replace(placeholder, name, 1),
                source="btf",
                canon_params=proto.canon_params,
                canon_return=proto.canon_return,
            )
    return out
