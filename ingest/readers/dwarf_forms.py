"""DWARF constants used by the fast walker, and per-abbreviation decoders.

A decoder is Python source generated once per distinct abbreviation shape
(tag, attributes, forms) and compiled with exec: it advances over one DIE's
attributes and returns only the values its tag category needs. Unwanted
fixed-size attributes collapse into one addition, so skipping a DIE costs a
few bytecodes.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.errors import BadDwarf

# Tags
TAG_array_type, TAG_enumeration_type, TAG_formal_parameter = 0x01, 0x04, 0x05
TAG_lexical_block, TAG_member, TAG_pointer_type = 0x0B, 0x0D, 0x0F
TAG_compile_unit, TAG_structure_type, TAG_subroutine_type = 0x11, 0x13, 0x15
TAG_typedef, TAG_union_type, TAG_unspecified_parameters = 0x16, 0x17, 0x18
TAG_inlined_subroutine, TAG_subrange_type, TAG_base_type = 0x1D, 0x21, 0x24
TAG_const_type, TAG_enumerator, TAG_subprogram = 0x26, 0x28, 0x2E
TAG_volatile_type, TAG_restrict_type, TAG_atomic_type = 0x35, 0x37, 0x47
TAG_partial_unit, TAG_call_site, TAG_skeleton_unit = 0x3C, 0x48, 0x4A
TAG_GNU_call_site = 0x4109

# Attributes
AT_sibling, AT_name, AT_byte_size, AT_bit_offset, AT_bit_size = 0x01, 0x03, 0x0B, 0x0C, 0x0D
AT_stmt_list, AT_low_pc, AT_language, AT_comp_dir = 0x10, 0x11, 0x13, 0x1B
AT_const_value, AT_inline, AT_producer, AT_upper_bound = 0x1C, 0x20, 0x25, 0x2F
AT_abstract_origin, AT_count, AT_data_member_location = 0x31, 0x37, 0x38
AT_decl_file, AT_decl_line, AT_declaration, AT_encoding = 0x3A, 0x3B, 0x3C, 0x3E
AT_external, AT_specification, AT_type, AT_entry_pc = 0x3F, 0x47, 0x49, 0x52
AT_ranges, AT_data_bit_offset, AT_str_offsets_base, AT_addr_base = 0x55, 0x6B, 0x72, 0x73
AT_call_origin, AT_prototyped = 0x7F, 0x27

# Base type encodings that are floating point
FLOAT_ENCODINGS = {0x03, 0x04, 0x09, 0x0F}  # complex_float, float, imaginary_float, decimal_float

TYPE_TAGS = {
    TAG_base_type,
    TAG_pointer_type,
    TAG_const_type,
    TAG_volatile_type,
    TAG_restrict_type,
    TAG_atomic_type,
    TAG_typedef,
    TAG_structure_type,
    TAG_union_type,
    TAG_enumeration_type,
    TAG_array_type,
    TAG_subroutine_type,
    TAG_subrange_type,
}

#: Tag category -> the attributes its decoder returns, in order.
CATEGORIES: dict[str, tuple[int, ...]] = {
    "cu": (AT_name, AT_comp_dir, AT_producer, AT_language, AT_stmt_list, AT_str_offsets_base, AT_addr_base),
    "sub": (
        AT_name,
        AT_external,
        AT_decl_file,
        AT_decl_line,
        AT_inline,
        AT_low_pc,
        AT_declaration,
        AT_abstract_origin,
        AT_specification,
        AT_type,
        AT_sibling,
        AT_ranges,
        AT_entry_pc,
        AT_prototyped,
    ),
    "inl": (AT_abstract_origin, AT_low_pc, AT_entry_pc, AT_sibling),
    "call": (AT_call_origin, AT_abstract_origin, AT_sibling),
    "param": (AT_name, AT_type, AT_abstract_origin),
    "type": (
        AT_name,
        AT_type,
        AT_byte_size,
        AT_encoding,
        AT_count,
        AT_upper_bound,
        AT_sibling,
        AT_declaration,
    ),
    "member": (
        AT_name,
        AT_type,
        AT_data_member_location,
        AT_data_bit_offset,
        AT_bit_size,
        AT_bit_offset,
        AT_byte_size,
    ),
    "enumerator": (AT_name, AT_const_value),
    "unspecified": (),
    "skip": (AT_sibling,),
}


def category(tag: int) -> str:
    """The decoder category of a tag."""
    if tag in (TAG_compile_unit, TAG_partial_unit, TAG_skeleton_unit):
        return "cu"
    if tag == TAG_subprogram:
        return "sub"
    if tag == TAG_inlined_subroutine:
        return "inl"
    if tag in (TAG_call_site, TAG_GNU_call_site):
        return "call"
    if tag == TAG_formal_parameter:
        return "param"
    if tag in TYPE_TAGS:
        return "type"
    if tag == TAG_member:
        return "member"
    if tag == TAG_enumerator:
        return "enumerator"
    if tag == TAG_unspecified_parameters:
        return "unspecified"
    return "skip"


# Forms: fixed sizes (None = depends on the unit), and how to read each.
_ULEB_SKIP = "while d[p] & 0x80: p += 1\n{i}p += 1\n"


def _uleb(var: str, i: str) -> str:
    return (
        f"{var} = 0; s = 0\n{i}while True:\n{i}    b = d[p]; p += 1\n"
        f"{i}    {var} |= (b & 0x7f) << s; s += 7\n{i}    if b < 0x80: break\n"
    )


def _sleb(var: str, i: str) -> str:
    return _uleb(var, i) + f"{i}if b & 0x40: {var} -= 1 << s\n"


def _form_code(
    form: int, var: str | None, attr: int, unit: UnitShape, implicit: int | None, i: str
) -> tuple[str, int | None]:
    """Source that reads (var) or skips (var None) one attribute; and its fixed size."""
    e = unit.endian
    osz = unit.offset_size
    fixed = {
        0x0B: 1,
        0x05: 2,
        0x06: 4,
        0x07: 8,
        0x0C: 1,
        0x11: 1,
        0x12: 2,
        0x13: 4,
        0x14: 8,
        0x19: 0,
        0x21: 0,
        0x1E: 16,
        0x20: 8,
        0x25: 1,
        0x26: 2,
        0x27: 3,
        0x28: 4,
        0x29: 1,
        0x2A: 2,
        0x2B: 3,
        0x2C: 4,
        0x1C: 4,
        0x24: 8,
        0x01: unit.address_size,
        0x0E: osz,
        0x10: osz if unit.version > 2 else unit.address_size,
        0x17: osz,
        0x1D: osz,
        0x1F: osz,
        0x1F20: osz,
        0x1F21: osz,
    }
    if var is None:
        if form in fixed:
            return "", fixed[form]
        if form in (0x0F, 0x0D, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02):
            return f"{i}" + _ULEB_SKIP.format(i=i), None
        if form == 0x08:
            return f"{i}p = d.index(0, p) + 1\n", None
        if form in (0x09, 0x18):
            return f"{i}" + _uleb("n", i) + f"{i}p += n\n", None
        if form in (0x0A, 0x03, 0x04):
            size = {0x0A: 1, 0x03: 2, 0x04: 4}[form]
            return f"{i}p += {size} + int.from_bytes(d[p:p+{size}], '{e}')\n", None
        raise BadDwarf(f"unsupported DWARF form 0x{form:x}")
    ref_rel = form in (0x11, 0x12, 0x13, 0x14, 0x15)
    if form == 0x21:
        return f"{i}{var} = {implicit!r}\n", 0
    if form == 0x19:
        return f"{i}{var} = 1\n", 0
    if form in fixed and form not in (0x20, 0x1E):
        size = fixed[form]
        if size == 1:
            code = f"{i}{var} = d[p]; p += 1\n"
        else:
            code = f"{i}{var} = int.from_bytes(d[p:p+{size}], '{e}'); p += {size}\n"
        if ref_rel:
            code += f"{i}{var} += cu\n"
        if form == 0x0E:
            code += f"{i}{var} = strp({var})\n"
        elif form in (0x1F,):
            code += f"{i}{var} = line_strp({var})\n"
        elif form in (0x25, 0x26, 0x27, 0x28):
            code += f"{i}{var} = strx({var})\n"
        elif form in (0x29, 0x2A, 0x2B, 0x2C):
            code += f"{i}{var} = addrx({var})\n"
        elif form in (0x1D, 0x1F21, 0x1C, 0x24, 0x1F20):
            code += f"{i}{var} = None\n"  # supplementary/alternate files are not followed
        return code, size
    if form in (0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02):
        code = f"{i}" + _uleb(var, i)
        if ref_rel:
            code += f"{i}{var} += cu\n"
        if form in (0x1A, 0x1F02):
            code += f"{i}{var} = strx({var})\n"
        if form in (0x1B, 0x1F01):
            code += f"{i}{var} = addrx({var})\n"
        return code, None
    if form == 0x0D:
        return f"{i}" + _sleb(var, i), None
    if form == 0x08:
        return f"{i}q = d.index(0, p); {var} = d[p:q].decode('utf-8', 'replace'); p = q + 1\n", None
    if form in (0x09, 0x18):
        return f"{i}" + _uleb("n", i) + f"{i}{var} = bytes(d[p:p+n]); p += n\n", None
    if form in (0x0A, 0x03, 0x04):
        size = {0x0A: 1, 0x03: 2, 0x04: 4}[form]
        return (
            f"{i}n = int.from_bytes(d[p:p+{size}], '{e}'); p += {size}\n{i}{var} = bytes(d[p:p+n]); p += n\n"
        ), None
    if form in (0x20, 0x1E):
        return f"{i}{var} = None; p += {fixed[form]}\n", fixed[form]
    raise BadDwarf(f"unsupported DWARF form 0x{form:x}")


class UnitShape:
    """What a decoder depends on besides the abbreviation: encoding of the unit."""

    __slots__ = ("endian", "offset_size", "address_size", "version")

    def __init__(self, endian: str, offset_size: int, address_size: int, version: int):
        self.endian, self.offset_size, self.address_size, self.version = (
            endian,
            offset_size,
            address_size,
            version,
        )

    def key(self) -> tuple:
        return (self.endian, self.offset_size, self.address_size, self.version >= 3)


_decoders: dict[tuple, Callable] = {}
# Form classes of the attributes decoders return: a wrong class (a name held in a
# constant, a file index in a block) is corrupt DWARF, not a value to pass on.
_STRING_ATTRS = {AT_name, AT_comp_dir, AT_producer}
_STRING_FORMS = {0x08, 0x0E, 0x1F, 0x1A, 0x1D, 0x25, 0x26, 0x27, 0x28, 0x1F02, 0x1F21}
_BLOCK_FORMS = {0x09, 0x18, 0x0A, 0x03, 0x04}
_BLOCK_ATTRS = {AT_upper_bound, AT_count, AT_data_member_location, AT_const_value, AT_byte_size, AT_bit_size}


#: The categories whose DIEs only DWARF prototypes and layouts need (WalkConfig.want_types).
TYPE_CATEGORIES = frozenset(("type", "member", "enumerator"))


def walk_category(tag: int, want_types: bool) -> str:
    """category(), with type DIEs skipped (by their sibling) when types are not wanted."""
    cat = category(tag)
    return "skip" if not want_types and cat in TYPE_CATEGORIES else cat


def decoder(
    tag: int, specs: tuple[tuple[int, int, int | None], ...], unit: UnitShape, cat: str | None = None
) -> Callable:
    """A function (d, p, cu, strp, line_strp, strx, addrx) -> (p, values) for one
    abbreviation, returning the attributes of category `cat` (default: the tag's)."""
    cat = cat or category(tag)
    key = (tag, specs, unit.key(), cat)
    fn = _decoders.get(key)
    if fn is not None:
        return fn
    wanted = CATEGORIES[cat]
    i = "    "
    lines = []
    pending = 0
    seen: set[int] = set()
    for attr, form, implicit in specs:
        var = f"a{attr}" if attr in wanted and attr not in seen else None
        if var:
            seen.add(attr)
        if form == 0x16:
            raise BadDwarf("DW_FORM_indirect is not supported")
        if var and (
            (attr in _STRING_ATTRS) != (form in _STRING_FORMS)
            or (form in _BLOCK_FORMS and attr not in _BLOCK_ATTRS)
        ):
            raise BadDwarf(f"attribute 0x{attr:x} has form 0x{form:x} of the wrong class")
        code, size = _form_code(form, var, attr, unit, implicit, i)
        if var is None and code == "" and size is not None:
            pending += size
            continue
        if pending:
            lines.append(f"{i}p += {pending}\n")
            pending = 0
        lines.append(code)
    if pending:
        lines.append(f"{i}p += {pending}\n")
    values = ", ".join(f"a{a}" if a in seen else "None" for a in wanted)
    src = (
        "def dec(d, p, cu, strp, line_strp, strx, addrx):\n"
        + "".join(lines)
        + f"{i}return p, ({values + ',' if values else ''})\n"
    )  # no wanted attributes: ()
    namespace: dict = {}
    exec(compile(src, f"<dwarf decoder tag 0x{tag:x}>", "exec"), namespace)
    fn = namespace["dec"]
    _decoders[key] = fn
    return fn
