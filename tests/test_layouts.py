"""Layouts by content (ingest/types/layouts.py): equal layouts, nested ones included,
become one object; a difference anywhere keeps them apart."""

from __future__ import annotations

from ingest.model import Field, Layout
from ingest.types.layouts import LayoutInterner, layout_digest


def _holder(inner_size: int) -> Layout:
    inner = Layout(
        kind="struct",
        name="list_head",
        size=inner_size,
        fields=[
            Field(
                position=0,
                name="next",
                type_text="struct list_head *",
                decl="x",
                bit_offset=0,
                bit_size=0,
                byte_size=8,
            )
        ],
    )
    field = Field(
        position=0,
        name="node",
        type_text="struct list_head",
        decl="struct list_head node",
        bit_offset=0,
        bit_size=0,
        byte_size=inner_size,
        type_kind="struct",
    )
    field.type_layout = inner
    return Layout(kind="struct", name="ext4_thing", size=inner_size, fields=[field])


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
