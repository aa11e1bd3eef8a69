"""BTF and .BTF.ext binary format constants (include/uapi/linux/btf.h,
libbpf_internal.h); read by ingest.readers.btf and ingest.readers.btf_ext."""

from __future__ import annotations

MAGIC = 0xEB9F
VERSION = 1

#: struct btf_header: magic u16, version u8, flags u8, hdr_len u32,
#: type_off u32, type_len u32, str_off u32, str_len u32 (offsets are
#: relative to the end of the header, i.e. to hdr_len).
HEADER_FMT = "HBBIIIII"
HEADER_SIZE = 24

#: struct btf_type: name_off u32, info u32, size_or_type u32.
TYPE_FMT = "III"
TYPE_SIZE = 12

# info bits
VLEN_MASK = 0xFFFF
KIND_SHIFT = 24
KIND_MASK = 0x1F
KIND_FLAG_SHIFT = 31

# kinds
KIND_UNKN = 0
KIND_INT = 1
KIND_PTR = 2
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FWD = 7
KIND_TYPEDEF = 8
KIND_VOLATILE = 9
KIND_CONST = 10
KIND_RESTRICT = 11
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_FLOAT = 16
KIND_DECL_TAG = 17
KIND_TYPE_TAG = 18
KIND_ENUM64 = 19
KIND_MAX = KIND_ENUM64

KIND_NAMES = {
    KIND_UNKN: "UNKN",
    KIND_INT: "INT",
    KIND_PTR: "PTR",
    KIND_ARRAY: "ARRAY",
    KIND_STRUCT: "STRUCT",
    KIND_UNION: "UNION",
    KIND_ENUM: "ENUM",
    KIND_FWD: "FWD",
    KIND_TYPEDEF: "TYPEDEF",
    KIND_VOLATILE: "VOLATILE",
    KIND_CONST: "CONST",
    KIND_RESTRICT: "RESTRICT",
    KIND_FUNC: "FUNC",
    KIND_FUNC_PROTO: "FUNC_PROTO",
    KIND_VAR: "VAR",
    KIND_DATASEC: "DATASEC",
    KIND_FLOAT: "FLOAT",
    KIND_DECL_TAG: "DECL_TAG",
    KIND_TYPE_TAG: "TYPE_TAG",
    KIND_ENUM64: "ENUM64",
}

#: Bytes that follow struct btf_type: fixed per kind ...
EXTRA_FIXED = {
    KIND_INT: 4,  # u32 encoding << 24 | offset << 16 | nr_bits
    KIND_ARRAY: 12,  # struct btf_array: type, index_type, nelems
    KIND_VAR: 4,  # struct btf_var: linkage
    KIND_DECL_TAG: 4,  # struct btf_decl_tag: s32 component_idx (-1 = the decl itself)
}
#: ... or per vlen entry.
EXTRA_PER_VLEN = {
    KIND_STRUCT: 12,  # struct btf_member: name_off, type, offset
    KIND_UNION: 12,
    KIND_ENUM: 8,  # struct btf_enum: name_off, s32/u32 val
    KIND_ENUM64: 12,  # struct btf_enum64: name_off, val_lo32, val_hi32
    KIND_FUNC_PROTO: 8,  # struct btf_param: name_off, type
    KIND_DATASEC: 12,  # struct btf_var_secinfo: type, offset, size
}

# INT encoding (bits 24..27 of the u32 after btf_type)
INT_SIGNED = 1 << 0
INT_CHAR = 1 << 1
INT_BOOL = 1 << 2


# FUNC linkage (the FUNC's vlen) and VAR linkage
FUNC_STATIC = 0
FUNC_GLOBAL = 1
FUNC_EXTERN = 2
VAR_STATIC = 0
VAR_GLOBAL_ALLOCATED = 1
VAR_GLOBAL_EXTERN = 2


# .BTF.ext (tools/lib/bpf/libbpf_internal.h: struct btf_ext_header)

#: magic u16, version u8, flags u8, hdr_len u32; then func_info_off, func_info_len,
#: line_info_off, line_info_len u32 and, since CO-RE, core_relo_off, core_relo_len
#: (offsets relative to the end of the header).
EXT_PREAMBLE_FMT = "HBBI"
EXT_PREAMBLE_SIZE = 8
EXT_CORE_RELO_AT = 24  # where core_relo_off, core_relo_len sit in the header
EXT_CORE_HEADER_SIZE = 32  # a header this long has the core_relo part

#: struct bpf_core_relo: insn_off, type_id, access_str_off, kind (u32 each).
CORE_RELO_FMT = "IIII"
CORE_RELO_SIZE = 16

#: enum bpf_core_relo_kind, by value.
CORE_RELO_KINDS = (
    "field_byte_offset",
    "field_byte_size",
    "field_exists",
    "field_signed",
    "field_lshift_u64",
    "field_rshift_u64",
    "type_id_local",
    "type_id_target",
    "type_exists",
    "type_size",
    "enumval_exists",
    "enumval_value",
    "type_matches",
)
