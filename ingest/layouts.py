"""Layouts by content: the digest the database stores them under (one row per
distinct layout, across builds and modules), and interning equal layouts to
one object (every module arrives with its own copies of the vmlinux types
its members hold)."""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Iterable, Sequence
from typing import Any

from ingest.model import Layout


def layout_digest(layout: Layout, held: Sequence[str | None] = ()) -> str:
    """The content address of `layout`; `held` gives, per field, the digest of
    the layout its type holds (Field.type_layout), None for none."""
    h = hashlib.sha1(f"{layout.kind}|{layout.size}".encode())
    for k, f in enumerate(layout.fields):
        h.update(
            f"|{f.name}|{f.type_text}|{f.decl}|{f.bit_offset}|{f.bit_size}|{f.byte_size}|{f.parent}".encode()
        )
        if (
            f.canon_type is not None and f.canon_type != f.type_text
        ):  # same text, other meaning: another layout
            h.update(f"~{f.canon_type}".encode())
        if f.type_kind is not None:  # member -> type references (NULL: not recorded)
            h.update(f"^{f.type_kind}^{held[k] if k < len(held) else None}".encode())
    for name, value in layout.values:
        h.update(f"|{name}={value}".encode())
    return h.hexdigest()


def digest_of(layout: Layout) -> str:
    """layout_digest of `layout` and of the layouts it holds, computed once per
    object and kept on it (Layout.digest)."""
    if layout.digest is None:
        held = [digest_of(f.type_layout) if f.type_layout is not None else None for f in layout.fields]
        layout.digest = layout_digest(layout, held)
    return layout.digest


class LayoutInterner:
    """One object per distinct named layout (its name and layout_digest, which
    leaves the name out: the database keeps names in `types`), nested layouts included."""

    def __init__(self) -> None:
        self.by_digest: dict[tuple[str, str], Layout] = {}  # (name, digest): a digest leaves out names
        self.kept: set[int] = set()  # id() of the kept layouts

    def intern(self, layout: Layout) -> Layout:
        """The kept layout equal to `layout` (which becomes it when new); its
        fields then point at kept layouts too."""
        if id(layout) in self.kept:
            return layout
        for f in layout.fields:
            if f.type_layout is not None:
                f.type_layout = self.intern(f.type_layout)
        kept = self.by_digest.setdefault((layout.name, digest_of(layout)), layout)
        self.kept.add(id(kept))
        return kept

    def intern_all(self, layouts: Iterable[Layout]) -> list[Layout]:
        return [self.intern(lay) for lay in layouts]


class SharedLayouts:
    """Layouts both sides of a fork hold (vmlinux's, made before the module
    workers start): pickled as their position in the list, so that a
    module's layouts cross without the vmlinux types their members hold."""

    def __init__(self, layouts: list[Layout]) -> None:
        self.layouts = layouts
        self.position = {id(lay): k for k, lay in enumerate(layouts)}

    def dumps(self, obj: Any) -> bytes:
        out = io.BytesIO()
        pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = lambda o: self.position.get(id(o))  # type: ignore[method-assign]
        pickler.dump(obj)
        return out.getvalue()

    def loads(self, data: bytes) -> Any:
        unpickler = pickle.Unpickler(io.BytesIO(data))
        unpickler.persistent_load = self.layouts.__getitem__  # type: ignore[method-assign]
        return unpickler.load()
