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


# Forms (DWARF 5 section 7.5.6, and the GNU extensions of DWARF 4)
FORM_addr, FORM_block2, FORM_block4, FORM_data2, FORM_data4 = 0x01, 0x03, 0x04, 0x05, 0x06
FORM_data8, FORM_string, FORM_block, FORM_block1, FORM_data1 = 0x07, 0x08, 0x09, 0x0A, 0x0B
FORM_flag, FORM_sdata, FORM_strp, FORM_udata, FORM_ref_addr = 0x0C, 0x0D, 0x0E, 0x0F, 0x10
FORM_ref1, FORM_ref2, FORM_ref4, FORM_ref8, FORM_ref_udata = 0x11, 0x12, 0x13, 0x14, 0x15
FORM_indirect, FORM_sec_offset, FORM_exprloc, FORM_flag_present = 0x16, 0x17, 0x18, 0x19
FORM_strx, FORM_addrx, FORM_ref_sup4, FORM_strp_sup, FORM_data16 = 0x1A, 0x1B, 0x1C, 0x1D, 0x1E
FORM_line_strp, FORM_ref_sig8, FORM_implicit_const, FORM_loclistx = 0x1F, 0x20, 0x21, 0x22
FORM_rnglistx, FORM_ref_sup8, FORM_strx1, FORM_strx2, FORM_strx3 = 0x23, 0x24, 0x25, 0x26, 0x27
FORM_strx4, FORM_addrx1, FORM_addrx2, FORM_addrx3, FORM_addrx4 = 0x28, 0x29, 0x2A, 0x2B, 0x2C
FORM_GNU_addr_index, FORM_GNU_str_index = 0x1F01, 0x1F02
FORM_GNU_ref_alt, FORM_GNU_strp_alt = 0x1F20, 0x1F21

# Form classes, by how a decoder reads them.
_ULEB_FORMS = (
    FORM_udata, FORM_ref_udata, FORM_strx, FORM_addrx, FORM_loclistx, FORM_rnglistx,
    FORM_GNU_addr_index, FORM_GNU_str_index,
)  # fmt: skip
_REF_FORMS = (FORM_ref1, FORM_ref2, FORM_ref4, FORM_ref8, FORM_ref_udata)  # unit-relative
_LEB_BLOCK_FORMS = (FORM_block, FORM_exprloc)  # a ULEB length, then the bytes
_SIZED_BLOCK_FORMS = {FORM_block1: 1, FORM_block2: 2, FORM_block4: 4}  # a length of that size first
_STRX_FORMS = (FORM_strx, FORM_GNU_str_index, FORM_strx1, FORM_strx2, FORM_strx3, FORM_strx4)
_ADDRX_FORMS = (FORM_addrx, FORM_GNU_addr_index, FORM_addrx1, FORM_addrx2, FORM_addrx3, FORM_addrx4)
# Values in supplementary or alternate files, which are not followed: read as None.
_ELSEWHERE_FORMS = (FORM_strp_sup, FORM_GNU_strp_alt, FORM_ref_sup4, FORM_ref_sup8, FORM_GNU_ref_alt)
_SKIPPED_FORMS = (FORM_ref_sig8, FORM_data16)  # read as None


def _fixed_sizes(unit: UnitShape) -> dict[int, int]:
    """Form -> its size in bytes, for the forms of a fixed size in this unit."""
    osz = unit.offset_size
    return {
        FORM_data1: 1, FORM_data2: 2, FORM_data4: 4, FORM_data8: 8, FORM_flag: 1,
        FORM_ref1: 1, FORM_ref2: 2, FORM_ref4: 4, FORM_ref8: 8,
        FORM_flag_present: 0, FORM_implicit_const: 0, FORM_data16: 16, FORM_ref_sig8: 8,
        FORM_strx1: 1, FORM_strx2: 2, FORM_strx3: 3, FORM_strx4: 4,
        FORM_addrx1: 1, FORM_addrx2: 2, FORM_addrx3: 3, FORM_addrx4: 4,
        FORM_ref_sup4: 4, FORM_ref_sup8: 8, FORM_addr: unit.address_size,
        FORM_strp: osz, FORM_ref_addr: osz if unit.version > 2 else unit.address_size,
        FORM_sec_offset: osz, FORM_strp_sup: osz, FORM_line_strp: osz,
        FORM_GNU_ref_alt: osz, FORM_GNU_strp_alt: osz,
    }  # fmt: skip


def _form_code(
    form: int, var: str | None, attr: int, unit: UnitShape, implicit: int | None, i: str
) -> tuple[str, int | None]:
    """Source that reads (var) or skips (var None) one attribute; and its fixed size."""
    fixed = _fixed_sizes(unit)
    if var is None:
        return _skip_code(form, fixed, unit.endian, i)
    if form == FORM_implicit_const:
        return f"{i}{var} = {implicit!r}\n", 0
    if form == FORM_flag_present:
        return f"{i}{var} = 1\n", 0
    if form in _SKIPPED_FORMS:
        return f"{i}{var} = None; p += {fixed[form]}\n", fixed[form]
    if form in fixed:
        return _fixed_read_code(form, var, fixed[form], unit.endian, i), fixed[form]
    return _variable_read_code(form, var, unit.endian, i), None


def _skip_code(form: int, fixed: dict[int, int], e: str, i: str) -> tuple[str, int | None]:
    """Source that skips one attribute of this form (none for a fixed size: the
    caller adds the sizes up); and its fixed size."""
    if form in fixed:
        return "", fixed[form]
    if form in _ULEB_FORMS or form == FORM_sdata:
        return f"{i}" + _ULEB_SKIP.format(i=i), None
    if form == FORM_string:
        return f"{i}p = d.index(0, p) + 1\n", None
    if form in _LEB_BLOCK_FORMS:
        return f"{i}" + _uleb("n", i) + f"{i}p += n\n", None
    if form in _SIZED_BLOCK_FORMS:
        size = _SIZED_BLOCK_FORMS[form]
        return f"{i}p += {size} + int.from_bytes(d[p:p+{size}], '{e}')\n", None
    raise BadDwarf(f"unsupported DWARF form 0x{form:x}")


def _fixed_read_code(form: int, var: str, size: int, e: str, i: str) -> str:
    """Source that reads a fixed-size attribute into `var`, resolving references,
    strings and address indexes."""
    if size == 1:
        code = f"{i}{var} = d[p]; p += 1\n"
    else:
        code = f"{i}{var} = int.from_bytes(d[p:p+{size}], '{e}'); p += {size}\n"
    if form in _REF_FORMS:
        code += f"{i}{var} += cu\n"
    if form == FORM_strp:
        code += f"{i}{var} = strp({var})\n"
    elif form == FORM_line_strp:
        code += f"{i}{var} = line_strp({var})\n"
    elif form in _STRX_FORMS:
        code += f"{i}{var} = strx({var})\n"
    elif form in _ADDRX_FORMS:
        code += f"{i}{var} = addrx({var})\n"
    elif form in _ELSEWHERE_FORMS:
        code += f"{i}{var} = None\n"  # supplementary/alternate files are not followed
    return code


def _variable_read_code(form: int, var: str, e: str, i: str) -> str:
    """Source that reads a variable-size attribute (LEB128, string, block) into `var`."""
    if form in _ULEB_FORMS:
        code = f"{i}" + _uleb(var, i)
        if form in _REF_FORMS:
            code += f"{i}{var} += cu\n"
        if form in _STRX_FORMS:
            code += f"{i}{var} = strx({var})\n"
        if form in _ADDRX_FORMS:
            code += f"{i}{var} = addrx({var})\n"
        return code
    if form == FORM_sdata:
        return f"{i}" + _sleb(var, i)
    if form == FORM_string:
        return f"{i}q = d.index(0, p); {var} = d[p:q].decode('utf-8', 'replace'); p = q + 1\n"
    if form in _LEB_BLOCK_FORMS:
        return f"{i}" + _uleb("n", i) + f"{i}{var} = bytes(d[p:p+n]); p += n\n"
    if form in _SIZED_BLOCK_FORMS:
        size = _SIZED_BLOCK_FORMS[form]
        return (
            f"{i}n = int.from_bytes(d[p:p+{size}], '{e}'); p += {size}\n{i}{var} = bytes(d[p:p+n]); p += n\n"
        )
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
_STRING_FORMS = {FORM_string, FORM_strp, FORM_line_strp, FORM_strp_sup, FORM_GNU_strp_alt, *_STRX_FORMS}
_BLOCK_FORMS = {*_LEB_BLOCK_FORMS, *_SIZED_BLOCK_FORMS}
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
        if form == FORM_indirect:
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
