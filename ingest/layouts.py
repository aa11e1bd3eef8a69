"""Layouts by content: the digest the database stores them under (one row per
distinct layout, across builds and modules), and interning equal layouts to
one object (every module arrives with its own copies of the vmlinux types
its members hold)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

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


class LayoutInterner:
    """One object per distinct named layout (its name and layout_digest, which
    leaves the name out: the database keeps names in `types`), nested layouts included."""

    def __init__(self) -> None:
        self.by_digest: dict[tuple[str, str], Layout] = {}  # (name, digest): a digest leaves out names
        self.digests: dict[int, str] = {}  # id(kept layout) -> its digest

    def intern(self, layout: Layout) -> Layout:
        """The kept layout equal to `layout` (which becomes it when new); its
        fields then point at kept layouts too."""
        digest = self.digests.get(id(layout))
        if digest is not None:
            return layout
        held: list[str | None] = []
        for f in layout.fields:
            if f.type_layout is not None:
                f.type_layout = self.intern(f.type_layout)
                held.append(self.digests[id(f.type_layout)])
            else:
                held.append(None)
        digest = layout_digest(layout, held)
        kept = self.by_digest.setdefault((layout.name, digest), layout)
        self.digests[id(kept)] = digest
        return kept

    def intern_all(self, layouts: Iterable[Layout]) -> list[Layout]:
        return [self.intern(lay) for lay in layouts]
