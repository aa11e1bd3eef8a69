"""Layouts by content: the digest the database stores them under (one row per
distinct layout, across builds and modules), and interning equal layouts to
one object (every module arrives with its own copies of the vmlinux types
its members hold)."""

from __future__ import annotations

import hashlib
import io
import pickle
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


class LayoutChannel:
    """How a module's layouts cross from a worker to the process that keeps
    them, which forked the workers: vmlinux's layouts (made before the fork)
    cross as their position in `shared`; a layout this worker sent before,
    as its (name, digest), which the receiver has interned by then (results
    arrive in the order workers take their modules); the rest by value."""

    def __init__(self, shared: list[Layout]) -> None:
        self.shared = shared
        self.position = {id(lay): k for k, lay in enumerate(shared)}
        self.sent: set[tuple[str, str]] = set()  # a worker's: what it has sent by value
        self.interner = LayoutInterner()  # the receiver's
        self.interner.intern_all(shared)  # a module's copy of a vmlinux type becomes vmlinux's

    def dumps(self, layouts: list[Layout]) -> bytes:
        position, sent, now = self.position, self.sent, []

        def reference(obj: object) -> int | tuple[str, str] | None:
            if not isinstance(obj, Layout):
                return None
            k = position.get(id(obj))
            if k is not None:
                return k
            key = (obj.name, digest_of(obj))
            if key in sent:
                return key
            now.append(key)
            return None

        out = io.BytesIO()
        pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = reference  # type: ignore[method-assign]
        pickler.dump(layouts)
        sent.update(now)
        return out.getvalue()

    def loads(self, data: bytes) -> list[Layout]:
        """The layouts, interned: equal ones are one object across modules."""
        shared, kept = self.shared, self.interner.by_digest

        def resolve(ref: int | tuple[str, str]) -> Layout:
            return shared[ref] if isinstance(ref, int) else kept[ref]

        unpickler = pickle.Unpickler(io.BytesIO(data))
        unpickler.persistent_load = resolve  # type: ignore[method-assign]
        return self.interner.intern_all(unpickler.load())
