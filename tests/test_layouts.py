"""Layouts by content (ingest/types/layouts.py): equal layouts, nested ones included,
become one object; a difference anywhere keeps them apart."""

from __future__ import annotations

from ingest.model import Field, Layout
from ingest.types.layouts import LayoutInterner, layout_digest


def _holder(inner_size: int) -> Layout:
    inner = Layout("struct", "list_head", inner_size, [Field(0, "next", "struct list_head *", "x", 0, 0, 8)])
    field = Field(
        0, "node", "struct list_head", "struct list_head node", 0, 0, inner_size, type_kind="struct"
    )
    field.type_layout = inner
    return Layout("struct", "ext4_thing", inner_size, [field])


def test_equal_layouts_become_one_object():
    interner = LayoutInterner()
    a, b = _holder(16), _holder(16)  # two modules' copies
    kept_a, kept_b = interner.intern(a), interner.intern(b)
    assert kept_a is kept_b is a
    assert b.fields[0].type_layout is a.fields[0].type_layout  # the nested copy went too


def test_equal_content_under_two_names_stays_two():
    interner = LayoutInterner()
    a, b = _holder(16), _holder(16)
    b.name = "xfs_thing"  # the same members: one stored layout, two type names
    assert interner.intern(a) is a and interner.intern(b) is b
    assert a.fields[0].type_layout is b.fields[0].type_layout


def test_a_difference_keeps_them_apart():
    interner = LayoutInterner()
    a, b = _holder(16), _holder(24)
    assert interner.intern(a) is a and interner.intern(b) is b
    assert layout_digest(a, ["x"]) != layout_digest(b, ["x"])
    kept = interner.intern_all([_holder(16), _holder(24)])
    assert kept[0] is a and kept[1] is b
