/* The DWARF walk of ingest/readers/dwarf.py (walk_unit) in C, with or
 * without types, with or without layouts (WalkConfig want_types, want_layouts).
 *
 * Python parses the abbreviation table and says, per attribute, which slot of
 * the tag category's value tuple it fills (dwarf_forms.CATEGORIES); this file
 * decodes the forms and runs the DIE loop. It returns the raw records
 * walk_unit builds before they become Sub/Edge records; dwarf.py finishes
 * them with the same code as the Python walk.
 *
 * With types, every type DIE is recorded in C memory during the walk; only
 * those reachable from the prototypes the unit must print (the return and
 * parameter types of its candidates whose name is not skipped) become the
 * Python raw_types entries walk_unit would have made for them. With layouts,
 * every type DIE does, struct and union members (dwarf._member) and
 * enumerators included.
 *
 * Anything this file does not handle exactly as the Python walk does (a read
 * past a section, an unknown code, a value beyond 64 bits, a backwards
 * sibling, ...) raises Unsupported: the caller then runs the Python walk,
 * which either reads the unit or raises its own error. So the rows never
 * differ; only the speed does.
 *
 * The file in the order the walk uses it:
 *   DWARF constants, the categories and their slots;
 *   reading one attribute (read_value) or passing over it (skip_op);
 *   dwarf_forms' rules (configure) and abbreviation tables (parse_table);
 *   the type DIEs a unit keeps (Types) and how they become raw_types;
 *   one function per branch of walk_unit (on_subprogram, on_formal_parameter, ...),
 *   the DIE loop (walk_unit) and its Python entry (walk);
 *   line-table file names (file_names, as dwarf_lines.file_names).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *Unsupported;
static PyObject *MemberType; /* ingest.model.Member, given by configure() */
static PyObject *s_inline, *s_direct, *s_slash, *s_dotdot, *s_empty, *s_decl;

/* ---- DWARF constants (DWARF 5, section 7; the GNU forms of DWARF 4 split and alternate files) ---- */

/* The tags the walk tells apart (dwarf_forms.category gives every tag its category). */
enum {
    DW_TAG_array_type = 0x01,
    DW_TAG_enumeration_type = 0x04,
    DW_TAG_formal_parameter = 0x05,
    DW_TAG_lexical_block = 0x0b,
    DW_TAG_structure_type = 0x13,
    DW_TAG_subroutine_type = 0x15,
    DW_TAG_union_type = 0x17,
    DW_TAG_inlined_subroutine = 0x1d,
    DW_TAG_subrange_type = 0x21,
    DW_TAG_subprogram = 0x2e,
};

/* The attributes of the categories' slots. */
enum {
    DW_AT_sibling = 0x01,
    DW_AT_name = 0x03,
    DW_AT_byte_size = 0x0b,
    DW_AT_bit_offset = 0x0c,
    DW_AT_bit_size = 0x0d,
    DW_AT_stmt_list = 0x10,
    DW_AT_low_pc = 0x11,
    DW_AT_language = 0x13,
    DW_AT_comp_dir = 0x1b,
    DW_AT_const_value = 0x1c,
    DW_AT_inline = 0x20,
    DW_AT_producer = 0x25,
    DW_AT_prototyped = 0x27,
    DW_AT_upper_bound = 0x2f,
    DW_AT_abstract_origin = 0x31,
    DW_AT_count = 0x37,
    DW_AT_data_member_location = 0x38,
    DW_AT_decl_file = 0x3a,
    DW_AT_decl_line = 0x3b,
    DW_AT_declaration = 0x3c,
    DW_AT_encoding = 0x3e,
    DW_AT_external = 0x3f,
    DW_AT_specification = 0x47,
    DW_AT_type = 0x49,
    DW_AT_entry_pc = 0x52,
    DW_AT_ranges = 0x55,
    DW_AT_data_bit_offset = 0x6b,
    DW_AT_str_offsets_base = 0x72,
    DW_AT_addr_base = 0x73,
    DW_AT_call_origin = 0x7f,
};

/* Every form dwarf_forms reads (DW_FORM_indirect, 0x16, it refuses). */
enum {
    DW_FORM_addr = 0x01,
    DW_FORM_block2 = 0x03,
    DW_FORM_block4 = 0x04,
    DW_FORM_data2 = 0x05,
    DW_FORM_data4 = 0x06,
    DW_FORM_data8 = 0x07,
    DW_FORM_string = 0x08,
    DW_FORM_block = 0x09,
    DW_FORM_block1 = 0x0a,
    DW_FORM_data1 = 0x0b,
    DW_FORM_flag = 0x0c,
    DW_FORM_sdata = 0x0d,
    DW_FORM_strp = 0x0e,
    DW_FORM_udata = 0x0f,
    DW_FORM_ref_addr = 0x10,
    DW_FORM_ref1 = 0x11,
    DW_FORM_ref2 = 0x12,
    DW_FORM_ref4 = 0x13,
    DW_FORM_ref8 = 0x14,
    DW_FORM_ref_udata = 0x15,
    DW_FORM_sec_offset = 0x17,
    DW_FORM_exprloc = 0x18,
    DW_FORM_flag_present = 0x19,
    DW_FORM_strx = 0x1a,
    DW_FORM_addrx = 0x1b,
    DW_FORM_ref_sup4 = 0x1c,
    DW_FORM_strp_sup = 0x1d,
    DW_FORM_data16 = 0x1e,
    DW_FORM_line_strp = 0x1f,
    DW_FORM_ref_sig8 = 0x20,
    DW_FORM_implicit_const = 0x21,
    DW_FORM_loclistx = 0x22,
    DW_FORM_rnglistx = 0x23,
    DW_FORM_ref_sup8 = 0x24,
    DW_FORM_strx1 = 0x25,
    DW_FORM_strx2 = 0x26,
    DW_FORM_strx3 = 0x27,
    DW_FORM_strx4 = 0x28,
    DW_FORM_addrx1 = 0x29,
    DW_FORM_addrx2 = 0x2a,
    DW_FORM_addrx3 = 0x2b,
    DW_FORM_addrx4 = 0x2c,
    DW_FORM_GNU_addr_index = 0x1f01,
    DW_FORM_GNU_str_index = 0x1f02,
    DW_FORM_GNU_ref_alt = 0x1f20,
    DW_FORM_GNU_strp_alt = 0x1f21,
};

#define DW_LANG_Rust 0x1c
#define DW_OP_plus_uconst 0x23
enum { DW_LNCT_path = 1, DW_LNCT_directory_index = 2 };

/* ---- categories and slots ----------------------------------------------------- */

enum { CAT_SKIP, CAT_CU, CAT_SUB, CAT_INL, CAT_CALL, CAT_PARAM, CAT_UNSPEC, CAT_TYPE, CAT_MEMBER, CAT_ENUMR, N_CATS };
/* Slots, in the order of dwarf_forms.CATEGORIES (configure() checks it). */
enum { CU_NAME, CU_COMP_DIR, CU_PRODUCER, CU_LANGUAGE, CU_STMT_LIST, CU_STR_BASE, CU_ADDR_BASE };
enum {
    SUB_NAME, SUB_EXTERNAL, SUB_DECL_FILE, SUB_DECL_LINE, SUB_INLINE, SUB_LOW_PC, SUB_DECLARATION,
    SUB_ORIGIN, SUB_SPEC, SUB_TYPE, SUB_SIBLING, SUB_RANGES, SUB_ENTRY_PC, SUB_PROTOTYPED
};
enum { INL_ORIGIN, INL_LOW_PC, INL_ENTRY_PC, INL_SIBLING };
enum { CALL_CALL_ORIGIN, CALL_ORIGIN, CALL_SIBLING };
enum { PARAM_NAME, PARAM_TYPE, PARAM_ORIGIN };
enum { SKIP_SIBLING };
enum { TYPE_NAME, TYPE_TYPE, TYPE_BYTE_SIZE, TYPE_ENCODING, TYPE_COUNT, TYPE_UPPER, TYPE_SIBLING, TYPE_DECLARATION };
enum { MEM_NAME, MEM_TYPE, MEM_LOCATION, MEM_DATA_BIT_OFFSET, MEM_BIT_SIZE, MEM_BIT_OFFSET, MEM_BYTE_SIZE };
enum { ENUMR_NAME, ENUMR_VALUE };
#define MAX_SLOTS 14
static const int NSLOTS[N_CATS] = {1, 7, 14, 4, 3, 3, 0, 8, 7, 2};
/* The attribute of each slot (configure() refuses other CATEGORIES). */
static const long SLOT_ATTRS[N_CATS][MAX_SLOTS] = {
    [CAT_SKIP] = {DW_AT_sibling},
    [CAT_CU] = {DW_AT_name, DW_AT_comp_dir, DW_AT_producer, DW_AT_language, DW_AT_stmt_list,
                DW_AT_str_offsets_base, DW_AT_addr_base},
    [CAT_SUB] = {DW_AT_name, DW_AT_external, DW_AT_decl_file, DW_AT_decl_line, DW_AT_inline, DW_AT_low_pc,
                 DW_AT_declaration, DW_AT_abstract_origin, DW_AT_specification, DW_AT_type, DW_AT_sibling,
                 DW_AT_ranges, DW_AT_entry_pc, DW_AT_prototyped},
    [CAT_INL] = {DW_AT_abstract_origin, DW_AT_low_pc, DW_AT_entry_pc, DW_AT_sibling},
    [CAT_CALL] = {DW_AT_call_origin, DW_AT_abstract_origin, DW_AT_sibling},
    [CAT_PARAM] = {DW_AT_name, DW_AT_type, DW_AT_abstract_origin},
    [CAT_TYPE] = {DW_AT_name, DW_AT_type, DW_AT_byte_size, DW_AT_encoding, DW_AT_count, DW_AT_upper_bound,
                  DW_AT_sibling, DW_AT_declaration},
    [CAT_MEMBER] = {DW_AT_name, DW_AT_type, DW_AT_data_member_location, DW_AT_data_bit_offset, DW_AT_bit_size,
                    DW_AT_bit_offset, DW_AT_byte_size},
    [CAT_ENUMR] = {DW_AT_name, DW_AT_const_value},
};
/* walk_unit tells these categories by their one tag; the walk here by the category
 * (configure() refuses other tags in them, and these tags in another category but skip). */
static const uint32_t CAT_TAG[N_CATS] = {
    [CAT_SUB] = DW_TAG_subprogram,
    [CAT_INL] = DW_TAG_inlined_subroutine,
    [CAT_PARAM] = DW_TAG_formal_parameter,
};

/* ---- abbreviation tables and values ------------------------------------------- */

/* How the walk passes one attribute of an abbreviation: read into its slot, or skipped
 * (a run of fixed-size attributes as one OP_SKIP_FIXED). */
enum { OP_SKIP_FIXED, OP_SKIP_ULEB, OP_SKIP_CSTR, OP_SKIP_BLOCK_ULEB, OP_SKIP_BLOCKN, OP_READ };

typedef struct {
    uint8_t kind;
    int8_t slot;
    uint16_t form;
    uint32_t size;    /* OP_SKIP_FIXED: bytes; OP_SKIP_BLOCKN: width of the length */
    int64_t implicit; /* DW_FORM_implicit_const */
} Op;

typedef struct {
    uint8_t present, children, cat;
    uint32_t tag;
    uint32_t nops;
    Op *ops;
} Abbrev;

/* One compiled .debug_abbrev table (by code) and the shape of the units that use it. */
typedef struct {
    Py_ssize_t ncodes;
    Abbrev *codes;
    int offset_size, address_size, ref_addr_size, big, types;
} Table;

/* An attribute's value, undecoded: an int, or a string or block in the section. */
enum { V_NONE, V_INT, V_STR, V_BYTES };
typedef struct {
    uint8_t kind, neg; /* neg: u holds a negative int64 */
    uint64_t u;
    const char *s;
    Py_ssize_t n;
} Val;

/* The sections a unit's values are read from. */
typedef struct {
    const uint8_t *d; /* .debug_info */
    uint64_t n;
    const uint8_t *str, *lstr, *stroff, *addr;
    uint64_t nstr, nlstr, nstroff, naddr;
    uint64_t cu, str_base, addr_base; /* cu: the unit's offset, base of its unit-relative references */
    const Table *t;
} Reader;

/* The fixed size of a form in a table's units, -1 when variable, -2 when unknown. */
static int form_size(const Table *t, unsigned form) {
    switch (form) {
    case DW_FORM_data1: case DW_FORM_flag: case DW_FORM_ref1: case DW_FORM_strx1: case DW_FORM_addrx1:
        return 1;
    case DW_FORM_data2: case DW_FORM_ref2: case DW_FORM_strx2: case DW_FORM_addrx2:
        return 2;
    case DW_FORM_strx3: case DW_FORM_addrx3:
        return 3;
    case DW_FORM_data4: case DW_FORM_ref4: case DW_FORM_strx4: case DW_FORM_addrx4: case DW_FORM_ref_sup4:
        return 4;
    case DW_FORM_data8: case DW_FORM_ref8: case DW_FORM_ref_sig8: case DW_FORM_ref_sup8:
        return 8;
    case DW_FORM_data16:
        return 16;
    case DW_FORM_flag_present: case DW_FORM_implicit_const:
        return 0;
    case DW_FORM_addr:
        return t->address_size;
    case DW_FORM_ref_addr:
        return t->ref_addr_size;
    case DW_FORM_strp: case DW_FORM_sec_offset: case DW_FORM_strp_sup: case DW_FORM_line_strp:
    case DW_FORM_GNU_ref_alt: case DW_FORM_GNU_strp_alt:
        return t->offset_size;
    case DW_FORM_udata: case DW_FORM_sdata: case DW_FORM_ref_udata: case DW_FORM_strx: case DW_FORM_addrx:
    case DW_FORM_loclistx: case DW_FORM_rnglistx: case DW_FORM_GNU_addr_index: case DW_FORM_GNU_str_index:
    case DW_FORM_string: case DW_FORM_block: case DW_FORM_exprloc: case DW_FORM_block1: case DW_FORM_block2:
    case DW_FORM_block4:
        return -1;
    default:
        return -2;
    }
}

/* The width of the length before a DW_FORM_block1/2/4. */
static inline unsigned block_width(unsigned form) {
    return form == DW_FORM_block1 ? 1 : form == DW_FORM_block2 ? 2 : 4;
}

/* Room for element n of a growing array (doubling). */
static int grow(void **buf, Py_ssize_t *cap, Py_ssize_t n, size_t size) {
    if (n < *cap)
        return 0;
    Py_ssize_t nc = *cap ? *cap : 64;
    while (nc <= n)
        nc *= 2;
    void *grown = PyMem_Realloc(*buf, (size_t)nc * size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = grown, *cap = nc;
    return 0;
}

/* ---- reading one attribute ---------------------------------------------------- */

#define FAIL(why) do { PyErr_SetString(Unsupported, why); return -1; } while (0)

/* An unsigned LEB128 number at *p of d[0:n], up to 64 bits. */
static inline int read_uleb(const uint8_t *d, uint64_t n, uint64_t *p, uint64_t *out) {
    uint64_t v = 0;
    unsigned s = 0;
    for (;;) {
        if (*p >= n)
            FAIL("uleb past the section");
        uint8_t b = d[(*p)++];
        if (s >= 64 || (s == 63 && (b & 0x7F) > 1))
            FAIL("uleb beyond 64 bits");
        v |= (uint64_t)(b & 0x7F) << s;
        s += 7;
        if (b < 0x80)
            break;
    }
    *out = v;
    return 0;
}

/* An unsigned number of `size` bytes, in the unit's byte order. */
static inline uint64_t get_uint(const uint8_t *d, unsigned size, int big) {
    uint64_t v = 0;
    if (big)
        for (unsigned i = 0; i < size; i++)
            v = (v << 8) | d[i];
    else
        for (unsigned i = size; i-- > 0;)
            v = (v << 8) | d[i];
    return v;
}

/* The NUL-terminated string at `off` of a string section (dwarf._cstring). */
static inline int cstring(const uint8_t *sec, uint64_t len, uint64_t off, Val *v) {
    if (off >= len)
        FAIL("string offset outside its section");
    const uint8_t *end = memchr(sec + off, 0, len - off);
    if (end == NULL)
        FAIL("unterminated string");
    v->kind = V_STR;
    v->s = (const char *)sec + off;
    v->n = end - (sec + off);
    return 0;
}

/* The string of .debug_str_offsets entry `index` (Strings.strx). */
static inline int strx(const Reader *r, uint64_t index, Val *v) {
    unsigned osz = (unsigned)r->t->offset_size;
    uint64_t at;
    if (__builtin_mul_overflow(index, (uint64_t)osz, &at) || __builtin_add_overflow(at, r->str_base, &at) ||
        at > r->nstroff || r->nstroff - at < osz)
        FAIL("strx outside .debug_str_offsets");
    return cstring(r->str, r->nstr, get_uint(r->stroff + at, osz, r->t->big), v);
}

/* The address of .debug_addr entry `index` (Strings.addrx). */
static inline int addrx(const Reader *r, uint64_t index, Val *v) {
    unsigned asz = (unsigned)r->t->address_size;
    uint64_t at;
    if (__builtin_mul_overflow(index, (uint64_t)asz, &at) || __builtin_add_overflow(at, r->addr_base, &at) ||
        at > r->naddr || r->naddr - at < asz)
        FAIL("addrx outside .debug_addr");
    v->kind = V_INT;
    v->neg = 0;
    v->u = get_uint(r->addr + at, asz, r->t->big);
    return 0;
}

/* A unit-relative reference (DW_FORM_ref*) as the .debug_info offset it names. */
static inline int unit_ref(const Reader *r, uint64_t x, Val *v) {
    if (x + r->cu < x)
        FAIL("reference beyond 64 bits");
    v->u = x + r->cu;
    return 0;
}

/* A fixed-size form's value, its `size` bytes at `at`. */
static int fixed_value(const Reader *r, unsigned form, const uint8_t *at, int size, Val *v) {
    switch (form) {
    case DW_FORM_ref_sig8: case DW_FORM_data16: case DW_FORM_strp_sup: case DW_FORM_GNU_strp_alt:
    case DW_FORM_ref_sup4: case DW_FORM_ref_sup8: case DW_FORM_GNU_ref_alt:
        v->kind = V_NONE; /* supplementary and alternate files are not followed (dwarf_forms: None) */
        return 0;
    }
    uint64_t x = size == 1 ? at[0] : get_uint(at, (unsigned)size, r->t->big);
    switch (form) {
    case DW_FORM_ref1: case DW_FORM_ref2: case DW_FORM_ref4: case DW_FORM_ref8:
        return unit_ref(r, x, v);
    case DW_FORM_strp:
        return cstring(r->str, r->nstr, x, v);
    case DW_FORM_line_strp:
        return cstring(r->lstr, r->nlstr, x, v);
    case DW_FORM_strx1: case DW_FORM_strx2: case DW_FORM_strx3: case DW_FORM_strx4:
        return strx(r, x, v);
    case DW_FORM_addrx1: case DW_FORM_addrx2: case DW_FORM_addrx3: case DW_FORM_addrx4:
        return addrx(r, x, v);
    default:
        v->u = x;
        return 0;
    }
}

/* A DW_FORM_sdata value (below 2**63 in magnitude, as walk_unit keeps it). */
static int read_sleb(const Reader *r, uint64_t *pp, Val *v) {
    uint64_t p = *pp, u = 0;
    unsigned s = 0;
    uint8_t b;
    do {
        if (p >= r->n)
            FAIL("sleb past the section");
        if (s >= 63)
            FAIL("sleb beyond 63 bits");
        b = r->d[p++];
        u |= (uint64_t)(b & 0x7F) << s;
        s += 7;
    } while (b >= 0x80);
    if (b & 0x40) {
        u |= ~(uint64_t)0 << s;
        v->neg = 1;
    }
    *pp = p;
    v->u = u;
    return 0;
}

/* A DW_FORM_string: the string inline in .debug_info. */
static int inline_string(const Reader *r, uint64_t *pp, Val *v) {
    uint64_t p = *pp;
    if (p >= r->n)
        FAIL("string past the section");
    const uint8_t *end = memchr(r->d + p, 0, r->n - p);
    if (end == NULL)
        FAIL("unterminated string");
    v->kind = V_STR;
    v->s = (const char *)r->d + p;
    v->n = end - (r->d + p);
    *pp = (uint64_t)(end - r->d) + 1;
    return 0;
}

/* A block (DW_FORM_block*, exprloc): its bytes (types' sizes and bounds, member locations). */
static int read_block(const Reader *r, uint64_t *pp, unsigned form, Val *v) {
    uint64_t p = *pp, x;
    if (form == DW_FORM_block || form == DW_FORM_exprloc) {
        if (read_uleb(r->d, r->n, &p, &x) < 0)
            return -1;
    } else {
        unsigned w = block_width(form);
        if (p + w > r->n)
            FAIL("block length past the section");
        x = get_uint(r->d + p, w, r->t->big);
        p += w;
    }
    if (x > r->n - p)
        FAIL("block past the section");
    v->kind = V_BYTES;
    v->s = (const char *)r->d + p;
    v->n = (Py_ssize_t)x;
    *pp = p + x;
    return 0;
}

/* A variable-size form's value. */
static int variable_value(const Reader *r, uint64_t *pp, unsigned form, Val *v) {
    uint64_t x;
    switch (form) {
    case DW_FORM_udata: case DW_FORM_loclistx: case DW_FORM_rnglistx:
        return read_uleb(r->d, r->n, pp, &v->u);
    case DW_FORM_ref_udata:
        return read_uleb(r->d, r->n, pp, &x) < 0 ? -1 : unit_ref(r, x, v);
    case DW_FORM_strx: case DW_FORM_GNU_str_index:
        return read_uleb(r->d, r->n, pp, &x) < 0 ? -1 : strx(r, x, v);
    case DW_FORM_addrx: case DW_FORM_GNU_addr_index:
        return read_uleb(r->d, r->n, pp, &x) < 0 ? -1 : addrx(r, x, v);
    case DW_FORM_sdata:
        return read_sleb(r, pp, v);
    case DW_FORM_string:
        return inline_string(r, pp, v);
    case DW_FORM_block: case DW_FORM_exprloc: case DW_FORM_block1: case DW_FORM_block2: case DW_FORM_block4:
        return read_block(r, pp, form, v);
    default:
        FAIL("wanted attribute of a form dwarf_forms refuses");
    }
}

/* One wanted attribute at *pp, as dwarf_forms._form_code reads it. */
static int read_value(const Reader *r, uint64_t *pp, const Op *op, Val *v) {
    unsigned form = op->form;
    v->kind = V_INT;
    v->neg = 0;
    if (form == DW_FORM_implicit_const) {
        v->u = (uint64_t)op->implicit;
        v->neg = op->implicit < 0;
        return 0;
    }
    if (form == DW_FORM_flag_present) {
        v->u = 1;
        return 0;
    }
    int size = form_size(r->t, form);
    if (size <= 0)
        return variable_value(r, pp, form, v);
    uint64_t p = *pp;
    if (p + (uint64_t)size > r->n)
        FAIL("attribute past the section");
    *pp = p + (uint64_t)size;
    return fixed_value(r, form, r->d + p, size, v);
}

/* Passes over one unwanted attribute (or a run of fixed-size ones) at *pp. */
static int skip_op(const Reader *r, uint64_t *pp, const Op *op) {
    const uint8_t *d = r->d;
    uint64_t p = *pp, x;
    switch (op->kind) {
    case OP_SKIP_FIXED:
        p += op->size;
        break;
    case OP_SKIP_ULEB:
        for (;;) {
            if (p >= r->n)
                FAIL("uleb past the section");
            if (d[p++] < 0x80)
                break;
        }
        break;
    case OP_SKIP_CSTR: {
        if (p >= r->n)
            FAIL("string past the section");
        const uint8_t *end = memchr(d + p, 0, r->n - p);
        if (end == NULL)
            FAIL("unterminated string");
        p = (uint64_t)(end - d) + 1;
        break;
    }
    case OP_SKIP_BLOCK_ULEB:
        if (read_uleb(d, r->n, &p, &x) < 0)
            return -1;
        if (x > r->n)
            FAIL("block past the section");
        p += x;
        break;
    case OP_SKIP_BLOCKN:
        if (p + op->size > r->n)
            FAIL("block length past the section");
        p += op->size + get_uint(d + p, op->size, r->t->big);
        break;
    }
    if (p > r->n)
        FAIL("attribute past the section");
    *pp = p;
    return 0;
}

/* The wanted attributes of one DIE into v by slot (V_NONE when absent); the others passed over. */
static inline int read_die(const Reader *r, uint64_t *pp, const Abbrev *a, Val *v) {
    uint64_t p = *pp;
    for (int i = 0; i < NSLOTS[a->cat]; i++)
        v[i].kind = V_NONE;
    for (uint32_t i = 0; i < a->nops; i++) {
        const Op *op = &a->ops[i];
        if (op->kind == OP_READ) {
            if (read_value(r, &p, op, &v[op->slot]) < 0)
                return -1;
        } else if (op->kind == OP_SKIP_FIXED) {
            p += op->size;
        } else if (skip_op(r, &p, op) < 0) {
            return -1;
        }
    }
    if (p > r->n)
        FAIL("DIE past the section");
    *pp = p;
    return 0;
}

/* ---- dwarf_forms' rules ------------------------------------------------------- */

/* dwarf_forms' rules, given once by dwarf.py (configure). */
static int configured;
static uint8_t TAG_CAT[2][0x10000]; /* [walk with types][tag] */
static uint32_t CAT_ATTRS[N_CATS][MAX_SLOTS];
static int CAT_NATTRS[N_CATS];
#define MAX_SET 32
typedef struct { int n; uint32_t v[MAX_SET]; } Set;
static Set STRING_ATTRS, STRING_FORMS, BLOCK_ATTRS, BLOCK_FORMS;

/* Whether x is in one of the small sets configure() was given. */
static inline int in_set(const Set *s, uint64_t x) {
    for (int i = 0; i < s->n; i++)
        if (s->v[i] == x)
            return 1;
    return 0;
}

/* A Set from an iterable of ints (at most MAX_SET). */
static int set_from(PyObject *o, Set *s) {
    PyObject *it = PyObject_GetIter(o), *x;
    if (it == NULL)
        return -1;
    s->n = 0;
    while ((x = PyIter_Next(it)) != NULL) {
        long v = PyLong_AsLong(x);
        Py_DECREF(x);
        if (v == -1 && PyErr_Occurred())
            break;
        if (s->n == MAX_SET) {
            PyErr_SetString(PyExc_ValueError, "set too large");
            break;
        }
        s->v[s->n++] = (uint32_t)v;
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* Whether the walk reads a tag of category `cat` as walk_unit does (see CAT_TAG). */
static int tag_fits(long tag, long cat) {
    if (CAT_TAG[cat] != 0)
        return tag == CAT_TAG[cat];
    for (int c = 0; c < N_CATS; c++)
        if (CAT_TAG[c] == tag)
            return cat == CAT_SKIP;
    return 1;
}

/* TAG_CAT[types] from a dict tag -> category id. */
static int tag_categories(PyObject *tags, int types) {
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(tags, &pos, &k, &v)) {
        long tag = PyLong_AsLong(k), cat = PyLong_AsLong(v);
        if (PyErr_Occurred())
            return -1;
        if (tag < 0 || tag > 0xFFFF || cat < 0 || cat >= N_CATS || !tag_fits(tag, cat)) {
            PyErr_Format(PyExc_ValueError, "tag 0x%lx category %ld", tag, cat);
            return -1;
        }
        TAG_CAT[types][tag] = (uint8_t)cat;
    }
    return 0;
}

/* CAT_ATTRS from a dict category id -> its attributes, which must be SLOT_ATTRS. */
static int category_attributes(PyObject *cats) {
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    memset(CAT_NATTRS, 0, sizeof CAT_NATTRS);
    while (PyDict_Next(cats, &pos, &k, &v)) {
        long cat = PyLong_AsLong(k);
        if (PyErr_Occurred())
            return -1;
        if (cat < 0 || cat >= N_CATS || !PyTuple_Check(v) || PyTuple_GET_SIZE(v) != NSLOTS[cat]) {
            PyErr_Format(PyExc_ValueError, "category %ld: not the slots this walk fills", cat);
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(v); i++) {
            long attr = PyLong_AsLong(PyTuple_GET_ITEM(v, i));
            if (PyErr_Occurred())
                return -1;
            if (attr != SLOT_ATTRS[cat][i]) {
                PyErr_Format(PyExc_ValueError, "category %ld slot %zd: attribute 0x%lx", cat, i, attr);
                return -1;
            }
            CAT_ATTRS[cat][i] = (uint32_t)attr;
        }
        CAT_NATTRS[cat] = (int)PyTuple_GET_SIZE(v);
    }
    for (int c = 0; c < N_CATS; c++)
        if (CAT_NATTRS[c] != NSLOTS[c]) {
            PyErr_Format(PyExc_ValueError, "category %d not given", c);
            return -1;
        }
    return 0;
}

/* configure(tag -> category id without types, the same with types (tags not given: skip),
 *           category id -> wanted attributes, string attributes, string forms, block attributes,
 *           block forms, the Member class) */
static PyObject *py_configure(PyObject *self, PyObject *args) {
    PyObject *tag_maps[2], *cats, *sa, *sf, *ba, *bf, *member;
    if (!PyArg_ParseTuple(args, "O!O!O!OOOOO!", &PyDict_Type, &tag_maps[0], &PyDict_Type, &tag_maps[1],
                          &PyDict_Type, &cats, &sa, &sf, &ba, &bf, &PyType_Type, &member))
        return NULL;
    configured = 0;
    Py_XSETREF(MemberType, Py_NewRef(member));
    memset(TAG_CAT, CAT_SKIP, sizeof TAG_CAT);
    if (tag_categories(tag_maps[0], 0) < 0 || tag_categories(tag_maps[1], 1) < 0 || category_attributes(cats) < 0)
        return NULL;
    if (set_from(sa, &STRING_ATTRS) < 0 || set_from(sf, &STRING_FORMS) < 0 || set_from(ba, &BLOCK_ATTRS) < 0 ||
        set_from(bf, &BLOCK_FORMS) < 0)
        return NULL;
    configured = 1;
    Py_RETURN_NONE;
}

/* ---- abbreviation tables ------------------------------------------------------ */

static void table_free(PyObject *capsule) {
    Table *t = PyCapsule_GetPointer(capsule, "kernsurf._dwarfwalk.Table");
    if (t == NULL)
        return;
    for (Py_ssize_t i = 0; i < t->ncodes; i++)
        PyMem_Free(t->codes[i].ops);
    PyMem_Free(t->codes);
    PyMem_Free(t);
}

/* How the walk passes the attribute spec (attr, form) of an abbreviation of
 * category `cat`: into its slot when the category wants it and no earlier spec
 * took that slot (*taken), else skipped; Unsupported where dwarf_forms.decoder
 * would refuse it. */
static int compile_op(const Table *t, int cat, uint64_t attr, uint64_t form, uint64_t implicit, uint32_t *taken,
                      Op *op) {
    int slot = -1;
    for (int i = 0; i < CAT_NATTRS[cat]; i++)
        if (CAT_ATTRS[cat][i] == attr) {
            if (!(*taken & (1u << i)))
                slot = i, *taken |= 1u << i;
            break;
        }
    int size = form > 0xFFFF ? -2 : form_size(t, (unsigned)form);
    if (size == -2 || (slot >= 0 && (in_set(&STRING_ATTRS, attr) != in_set(&STRING_FORMS, form) ||
                                     (in_set(&BLOCK_FORMS, form) && !in_set(&BLOCK_ATTRS, attr)))))
        FAIL("a form dwarf_forms refuses");
    memset(op, 0, sizeof *op);
    op->form = (uint16_t)form;
    op->implicit = (int64_t)implicit;
    if (slot >= 0) {
        op->kind = OP_READ;
        op->slot = (int8_t)slot;
    } else if (size >= 0) {
        op->kind = OP_SKIP_FIXED;
        op->size = (uint32_t)size;
    } else if (form == DW_FORM_string) {
        op->kind = OP_SKIP_CSTR;
    } else if (form == DW_FORM_block || form == DW_FORM_exprloc) {
        op->kind = OP_SKIP_BLOCK_ULEB;
    } else if (form == DW_FORM_block1 || form == DW_FORM_block2 || form == DW_FORM_block4) {
        op->kind = OP_SKIP_BLOCKN;
        op->size = block_width((unsigned)form);
    } else {
        op->kind = OP_SKIP_ULEB;
    }
    return 0;
}

/* The attribute specs of one abbreviation at *pp into a->ops (ops: scratch space). */
static int parse_abbrev(const Table *t, const uint8_t *d, uint64_t n, uint64_t *pp, Abbrev *a, Op **ops,
                        Py_ssize_t *opcap) {
    uint32_t taken = 0;
    Py_ssize_t k = 0;
    for (;;) {
        uint64_t attr, form, implicit = 0;
        Op op;
        if (read_uleb(d, n, pp, &attr) < 0 || read_uleb(d, n, pp, &form) < 0)
            return -1;
        if (attr == 0 && form == 0)
            break;
        if (form == DW_FORM_implicit_const && read_uleb(d, n, pp, &implicit) < 0)
            return -1;
        if (compile_op(t, a->cat, attr, form, implicit, &taken, &op) < 0)
            return -1;
        if (op.kind == OP_SKIP_FIXED && k > 0 && (*ops)[k - 1].kind == OP_SKIP_FIXED) {
            (*ops)[k - 1].size += op.size;
            continue;
        }
        if (grow((void **)ops, opcap, k, sizeof(Op)) < 0)
            return -1;
        (*ops)[k++] = op;
    }
    a->ops = PyMem_Malloc((k ? k : 1) * sizeof(Op));
    if (a->ops == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(a->ops, *ops, k * sizeof(Op));
    a->nops = (uint32_t)k;
    return 0;
}

/* One table of .debug_abbrev, as dwarf.parse_abbrevs reads it (t->types: want_types);
 * Unsupported wherever dwarf_forms.decoder would refuse an abbreviation. */
static int parse_into(Table *t, const uint8_t *d, uint64_t n, uint64_t p) {
    Op *ops = NULL;
    Py_ssize_t opcap = 0;
    int rc = -1;
    while (p < n) {
        uint64_t code, tag;
        if (read_uleb(d, n, &p, &code) < 0)
            goto done;
        if (code == 0)
            break;
        if (read_uleb(d, n, &p, &tag) < 0)
            goto done;
        if (p >= n) {
            PyErr_SetString(Unsupported, "table past the section");
            goto done;
        }
        int children = d[p++] != 0;
        if (code > 1000000 || tag > 0xFFFF) {
            PyErr_SetString(Unsupported, "abbreviation code or tag out of range");
            goto done;
        }
        Py_ssize_t ncodes = t->ncodes;
        if (grow((void **)&t->codes, &t->ncodes, (Py_ssize_t)code, sizeof(Abbrev)) < 0)
            goto done;
        memset(t->codes + ncodes, 0, (size_t)(t->ncodes - ncodes) * sizeof(Abbrev)); /* codes not present */
        Abbrev *a = &t->codes[code];
        if (a->present) {
            PyErr_SetString(Unsupported, "duplicate abbreviation code");
            goto done;
        }
        a->tag = (uint32_t)tag;
        a->children = (uint8_t)children;
        a->cat = TAG_CAT[t->types][tag];
        if (parse_abbrev(t, d, n, &p, a, &ops, &opcap) < 0)
            goto done;
        a->present = 1;
    }
    rc = 0;
done:
    PyMem_Free(ops);
    return rc;
}

/* parse_table(abbrev, offset, offset_size, address_size, version, big_endian, types) -> table */
static PyObject *py_parse_table(PyObject *self, PyObject *args) {
    Py_buffer buf;
    unsigned long long offset;
    int osz, asz, version, big, types;
    if (!PyArg_ParseTuple(args, "y*Kiiipp", &buf, &offset, &osz, &asz, &version, &big, &types))
        return NULL;
    PyObject *capsule = NULL;
    Table *t = NULL;
    if (!configured) {
        PyErr_SetString(Unsupported, "not configured");
        goto done;
    }
    if ((osz != 4 && osz != 8) || (asz != 2 && asz != 4 && asz != 8)) {
        PyErr_SetString(Unsupported, "unit shape");
        goto done;
    }
    t = PyMem_Calloc(1, sizeof(Table));
    if (t == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    t->offset_size = osz;
    t->address_size = asz;
    t->ref_addr_size = version > 2 ? osz : asz;
    t->big = big;
    t->types = types;
    capsule = PyCapsule_New(t, "kernsurf._dwarfwalk.Table", table_free);
    if (capsule == NULL) {
        PyMem_Free(t);
        goto done;
    }
    if (parse_into(t, buf.buf, (uint64_t)buf.len, offset) < 0)
        Py_CLEAR(capsule);
done:
    PyBuffer_Release(&buf);
    return capsule;
}

/* ---- the type DIEs of a unit (walk_unit's raw_types) ------------------------- */

/* A child of a type DIE as walk_unit appends it to the raw entry's children:
 * a subroutine type's parameter (a: its type), its "..." (None), an array's
 * subrange (a: count, b: upper bound), a member (a: name, b: type, bit and
 * bits: its bit offset and size) or an enumerator (a: name, b: value). */
enum { K_PARAM, K_VARIADIC, K_DIM, K_MEMBER, K_ENUMR };
typedef struct {
    Py_ssize_t next;
    uint8_t kind;
    Val a, b;
    int64_t bit, bits;
} Kid;

/* One type DIE, the fields of its raw entry (dwarf._Graph) still undecoded. */
typedef struct {
    uint64_t die;
    uint32_t tag;
    uint8_t mark; /* reachable from a prototype the unit must print */
    Val name, ref, size, enc, count, decl;
    Py_ssize_t first, last; /* its Kids, -1 */
} TypeRec;

typedef struct {
    TypeRec *recs;
    Kid *kids;
    uint64_t *roots; /* types the candidates' prototypes start from */
    Py_ssize_t nrecs, crecs, nkids, ckids, nroots, croots;
} Types;

/* A type reference as walk_unit keeps it: refused when it is negative or so
 * large that it could meet _Graph's synthetic array ids (1 << 48 and up). */
static inline int check_ref(const Val *v) {
    if (v->kind == V_INT && (v->neg || v->u >= ((uint64_t)1 << 48)))
        FAIL("type reference out of range");
    return 0;
}

/* A type a candidate's prototype starts from (its return or a parameter type; void is none). */
static inline int add_root(Types *ty, const Val *v) {
    if (v->kind != V_INT || v->u == 0)
        return 0; /* void */
    if (grow((void **)&ty->roots, &ty->croots, ty->nroots, sizeof(uint64_t)) < 0)
        return -1;
    ty->roots[ty->nroots++] = v->u;
    return 0;
}

/* A child of the type record `rec` (see Kid), after its others. */
static int add_kid(Types *ty, Py_ssize_t rec, int kind, const Val *a, const Val *b) {
    if (grow((void **)&ty->kids, &ty->ckids, ty->nkids, sizeof(Kid)) < 0)
        return -1;
    Kid *k = &ty->kids[ty->nkids];
    k->next = -1;
    k->kind = (uint8_t)kind;
    if (a)
        k->a = *a;
    if (b)
        k->b = *b;
    TypeRec *r = &ty->recs[rec];
    if (r->last < 0)
        r->first = ty->nkids;
    else
        ty->kids[r->last].next = ty->nkids;
    r->last = ty->nkids++;
    return 0;
}

/* The record of the type DIE at `die`, -1 (records are in DIE order). */
static Py_ssize_t find_rec(const Types *ty, uint64_t die) {
    Py_ssize_t lo = 0, hi = ty->nrecs;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (ty->recs[mid].die < die)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ty->nrecs && ty->recs[lo].die == die ? lo : -1;
}

/* An int of a member's position, within +-2**40 so that no arithmetic on it overflows. */
static int position(const Val *v, int64_t *out) {
    if (v->kind != V_INT)
        FAIL("member position that is not a number");
    int64_t x = (int64_t)v->u, limit = (int64_t)1 << 40;
    if (v->neg ? x <= -limit : v->u >= (uint64_t)limit)
        FAIL("member position out of range");
    *out = x;
    return 0;
}

/* DW_OP_plus_uconst n, the DWARF 2/3 member location (0 for any other expression). */
static int plus_uconst(const Val *loc, int64_t *out) {
    uint64_t u = 0;
    const uint8_t *b = (const uint8_t *)loc->s;
    if (loc->n > 0 && b[0] == DW_OP_plus_uconst)
        for (Py_ssize_t i = 1, s = 0; i < loc->n; i++, s += 7) {
            if (s > 35)
                FAIL("member location out of range");
            u |= (uint64_t)(b[i] & 0x7F) << s;
            if (b[i] < 0x80)
                break;
        }
    *out = (int64_t)u;
    return 0;
}

/* A struct or union member of the record `rec`, as dwarf._member makes it from
 * DWARF 2-5 encodings of its position; `ty` holds the type DIEs before it. */
static int add_member(Types *ty, Py_ssize_t rec, const Val *v, int big) {
    const Val *loc = &v[MEM_LOCATION], *ref = &v[MEM_TYPE];
    int64_t byte_off = 0, bit, bits = 0, old, storage = 0;
    if (v[MEM_BIT_SIZE].kind == V_BYTES || v[MEM_BYTE_SIZE].kind == V_BYTES)
        FAIL("member size as a block");
    if (check_ref(ref) < 0 || (loc->kind == V_BYTES ? plus_uconst(loc, &byte_off)
                               : loc->kind == V_INT ? position(loc, &byte_off) : 0) < 0 ||
        (v[MEM_BIT_SIZE].kind == V_INT && position(&v[MEM_BIT_SIZE], &bits) < 0))
        return -1;
    if (v[MEM_DATA_BIT_OFFSET].kind != V_NONE) {
        if (position(&v[MEM_DATA_BIT_OFFSET], &bit) < 0)
            return -1;
    } else if (v[MEM_BIT_OFFSET].kind != V_NONE && bits != 0) {
        /* DWARF 2/3 bitfields count from the most significant bit of the storage unit:
         * the member's byte size, else its type's (as far as the walk has read), else 4. */
        if (position(&v[MEM_BIT_OFFSET], &old) < 0 ||
            (v[MEM_BYTE_SIZE].kind == V_INT && position(&v[MEM_BYTE_SIZE], &storage) < 0))
            return -1;
        Py_ssize_t t = storage == 0 && ref->kind == V_INT ? find_rec(ty, ref->u) : -1;
        if (t >= 0) {
            const Val *size = &ty->recs[t].size;
            if ((size->kind == V_BYTES && size->n > 0) || (size->kind == V_INT && position(size, &storage) < 0))
                FAIL("type size that is not a number");
        }
        if (storage == 0)
            storage = 4;
        bit = big ? byte_off * 8 + old : byte_off * 8 + storage * 8 - old - bits;
    } else {
        bit = byte_off * 8;
    }
    if (add_kid(ty, rec, K_MEMBER, &v[MEM_NAME], ref) < 0)
        return -1;
    ty->kids[ty->nkids - 1].bit = bit;
    ty->kids[ty->nkids - 1].bits = bits;
    return 0;
}

/* Marks every record reachable from the roots through DW_AT_type and subroutine parameters. */
static int mark_reachable(Types *ty) {
    Py_ssize_t *work = PyMem_Malloc((size_t)(ty->nrecs ? ty->nrecs : 1) * sizeof(Py_ssize_t)), n = 0;
    if (work == NULL) {
        PyErr_NoMemory();
        return -1;
    }
#define VISIT(off)                                                                                                     \
    do {                                                                                                               \
        Py_ssize_t i_ = find_rec(ty, (off));                                                                           \
        if (i_ >= 0 && !ty->recs[i_].mark)                                                                             \
            ty->recs[i_].mark = 1, work[n++] = i_;                                                                     \
    } while (0)
    for (Py_ssize_t k = 0; k < ty->nroots; k++)
        VISIT(ty->roots[k]);
    while (n > 0) {
        const TypeRec *r = &ty->recs[work[--n]];
        if (r->ref.kind == V_INT && r->ref.u != 0)
            VISIT(r->ref.u);
        for (Py_ssize_t k = r->first; k >= 0; k = ty->kids[k].next)
            if (ty->kids[k].kind == K_PARAM && ty->kids[k].a.kind == V_INT && ty->kids[k].a.u != 0)
                VISIT(ty->kids[k].a.u);
    }
#undef VISIT
    PyMem_Free(work);
    return 0;
}

/* A value as the Python walk has it: int, str (UTF-8, errors replaced), bytes or None. */
static PyObject *val_obj(const Val *v) {
    switch (v->kind) {
    case V_INT:
        return v->neg ? PyLong_FromLongLong((long long)v->u) : PyLong_FromUnsignedLongLong(v->u);
    case V_STR:
        return PyUnicode_DecodeUTF8(v->s, v->n, "replace");
    case V_BYTES:
        return PyBytes_FromStringAndSize(v->s, v->n);
    default:
        Py_RETURN_NONE;
    }
}

/* A type reference as walk_unit stores it: `ref or 0`. */
static inline PyObject *ref_obj(const Val *v) {
    return PyLong_FromUnsignedLongLong(v->kind == V_INT ? v->u : 0);
}

/* A Kid as walk_unit puts it in a raw entry's children. */
static PyObject *kid_obj(const Kid *k) {
    switch (k->kind) {
    case K_PARAM: {
        PyObject *ref = ref_obj(&k->a);
        return ref ? Py_BuildValue("(ON)", Py_None, ref) : NULL;
    }
    case K_VARIADIC:
        Py_RETURN_NONE;
    case K_MEMBER: {
        PyObject *a[4] = {val_obj(&k->a), ref_obj(&k->b), PyLong_FromLongLong(k->bit),
                          PyLong_FromLongLong(k->bits)};
        PyObject *m = a[0] && a[1] && a[2] && a[3] ? PyObject_Vectorcall(MemberType, a, 4, NULL) : NULL;
        for (int i = 0; i < 4; i++)
            Py_XDECREF(a[i]);
        return m;
    }
    case K_ENUMR: /* (name, value if isinstance(value, int) else 0) */
        return Py_BuildValue("(NN)", val_obj(&k->a), k->b.kind == V_INT ? val_obj(&k->b) : PyLong_FromLong(0));
    default: /* count if count is not None else (upper + 1 if isinstance(upper, int) else None) */
        if (k->a.kind != V_NONE)
            return val_obj(&k->a);
        if (k->b.kind != V_INT)
            Py_RETURN_NONE;
        PyObject *upper = val_obj(&k->b), *one = upper ? PyLong_FromLong(1) : NULL, *n = NULL;
        if (one)
            n = PyNumber_Add(upper, one);
        Py_XDECREF(upper);
        Py_XDECREF(one);
        return n;
    }
}

/* raw_types (see dwarf._Graph) of the marked records: offset -> [tag, name, type,
 * byte_size, encoding, count, declaration, children]. */
static PyObject *raw_types(const Types *ty) {
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < ty->nrecs; i++) {
        const TypeRec *r = &ty->recs[i];
        if (!r->mark)
            continue;
        PyObject *kids = PyList_New(0), *entry = NULL, *key = NULL;
        for (Py_ssize_t k = r->first; kids && k >= 0; k = ty->kids[k].next) {
            PyObject *kid = kid_obj(&ty->kids[k]);
            if (kid == NULL || PyList_Append(kids, kid) < 0)
                Py_CLEAR(kids);
            Py_XDECREF(kid);
        }
        if (kids != NULL)
            entry = Py_BuildValue("[kNNNNNNN]", (unsigned long)r->tag, val_obj(&r->name), val_obj(&r->ref),
                                  val_obj(&r->size), val_obj(&r->enc), val_obj(&r->count), val_obj(&r->decl),
                                  kids);
        if (entry != NULL)
            key = PyLong_FromUnsignedLongLong(r->die);
        if (key == NULL || PyDict_SetItem(out, key, entry) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(entry);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(entry);
    }
    return out;
}

/* A value's Python truth (flags, origins). */
static inline int truthy(const Val *v) {
    return v->kind == V_INT ? v->u != 0 : (v->kind == V_STR || v->kind == V_BYTES) ? v->n != 0 : 0;
}

/* A Python int as a uint64_t (Strings' str_base, addr_base). */
static int get_u64(PyObject *o, uint64_t *out) {
    unsigned long long x = PyLong_AsUnsignedLongLong(o);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_SetString(Unsupported, "base beyond 64 bits");
        return -1;
    }
    *out = x;
    return 0;
}

/* ---- the walk: its state -------------------------------------------------------- */

/* An open parent DIE. */
typedef struct {
    uint32_t tag;
    uint64_t die;
    Py_ssize_t cand; /* index into the prototype candidates, -1 */
    Py_ssize_t rec;  /* index into the type records, -1 */
} Frame;

/* A subprogram whose prototype the unit may print (walk_unit's sub_info and params). */
typedef struct {
    uint64_t die;
    PyObject *name;
    PyObject *params; /* list of (name, type) and None; without types NULL once a type is not void */
    uint64_t rtype;   /* `rtype or 0` */
    int is_decl;
} Cand;

/* walk()'s arguments, parsed once from Python (see py_walk). */
typedef struct {
    Py_buffer info, debug_str, line_str, str_offsets, addr;
    PyObject *table, *str_base, *addr_base, *btf_funcs, *prototyped, *seen;
    unsigned long long die_offset, end, unit_offset;
    int layouts;
} WalkArgs;

/* One unit's walk: what it reads, what it found, where it is. */
typedef struct {
    Reader r;
    int types, layouts;
    PyObject *btf_funcs, *prototyped, *seen; /* WalkConfig's; what this process printed (skipped) */
    /* found */
    PyObject *cu, *subs, *edges;    /* the unit DIE's facts; Sub and Edge fields */
    PyObject *str_base, *addr_base; /* the unit's own, NULL when it has none */
    Cand *cands;
    Py_ssize_t ncands, ccands;
    Types ty;
    /* where */
    Frame *stack; /* the open parents */
    Py_ssize_t depth, cstack;
    uint64_t top;          /* the outermost concrete subprogram or abstract instance... */
    Py_ssize_t top_depth;  /* ...at this depth of the stack, -1 outside one */
    int abstract;          /* top is an abstract instance (DW_AT_inline): only its call sites count */
} Walk;

/* The DIE at hand: its offset, abbreviation and wanted attributes, and what the
 * walk does next (next: where it goes on; descend: into its children, with
 * `cand` and `rec` its candidate and type record, -1). */
typedef struct {
    uint64_t off;
    const Abbrev *a;
    Val v[MAX_SLOTS];
    uint64_t next;
    int descend;
    Py_ssize_t cand, rec;
} Die;

/* The innermost open parent, NULL at the unit's top level. */
static inline const Frame *parent(const Walk *w) {
    return w->depth > 0 ? &w->stack[w->depth - 1] : NULL;
}

/* Appends a new reference to a list (NULL: an error already set). */
static int append_new(PyObject *list, PyObject *item) {
    if (item == NULL)
        return -1;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

/* Goes on at a DIE's sibling (when it has one) instead of its children. */
static inline int jump(const Val *sibling, Die *die) {
    if (sibling->kind == V_NONE)
        return 0;
    if (sibling->neg)
        FAIL("negative sibling");
    die->next = sibling->u;
    die->descend = 0;
    return 0;
}

/* A unit's DW_AT_str_offsets_base or DW_AT_addr_base: into the reader, and as
 * the Python int walk() returns. */
static int set_base(const Val *v, uint64_t *base, PyObject **obj) {
    if (v->kind == V_NONE)
        return 0;
    if (v->neg)
        FAIL("negative str_offsets_base or addr_base");
    *base = v->u;
    Py_XSETREF(*obj, val_obj(v));
    return *obj == NULL ? -1 : 0;
}

/* Whether walk_unit's _finish skips the prototype of `name` from the start: a name
 * in WalkConfig.btf_funcs or prototyped, or already in `seen` (as a declaration's,
 * for one). */
static int skipped(const Walk *w, PyObject *name, int is_decl) {
    int found = PySet_Contains(w->btf_funcs, name);
    if (found == 0)
        found = PySet_Contains(w->prototyped, name);
    if (found == 0)
        found = PySet_Contains(w->seen, name);
    if (found == 0 && is_decl) {
        PyObject *key = PyTuple_Pack(2, s_decl, name);
        found = key ? PySet_Contains(w->seen, key) : -1;
        Py_XDECREF(key);
    }
    return found;
}

/* ---- the walk: one function per branch of walk_unit ----------------------------- */

/* "skip": variables, labels, lexical blocks, ... Their children are passed over
 * by DW_AT_sibling, but for a lexical block's (call sites and inlines are inside). */
static inline int on_skip(Die *die) {
    if (die->a->children && die->a->tag != DW_TAG_lexical_block)
        return jump(&die->v[SKIP_SIBLING], die);
    return 0;
}

/* A formal parameter of a prototype candidate: (name, type); without types, a
 * type that is not void leaves the candidate without a prototype. */
static int candidate_param(Walk *w, Cand *c, const Val *v) {
    const Val *type = &v[PARAM_TYPE];
    if (!w->types && type->kind == V_INT && type->u != 0) {
        if (type->neg)
            FAIL("negative type reference");
        Py_CLEAR(c->params); /* a type this walk does not describe: no prototype */
        return 0;
    }
    if (w->types && (check_ref(type) < 0 || add_root(&w->ty, type) < 0))
        return -1;
    return append_new(c->params, Py_BuildValue("(NN)", val_obj(&v[PARAM_NAME]), ref_obj(type)));
}

/* DW_TAG_formal_parameter: a parameter of the candidate or subroutine type it is in. */
static int on_formal_parameter(Walk *w, const Die *die) {
    const Frame *f = parent(w);
    const Val *type = &die->v[PARAM_TYPE];
    if (f == NULL)
        return 0;
    if (f->tag == DW_TAG_subprogram) {
        Cand *c = f->cand >= 0 ? &w->cands[f->cand] : NULL;
        return c != NULL && c->params != NULL ? candidate_param(w, c, die->v) : 0;
    }
    if (f->tag != DW_TAG_subroutine_type)
        return 0;
    if (!w->types || f->rec < 0)
        FAIL("parameter of a subroutine type");
    if (check_ref(type) < 0)
        return -1;
    return add_kid(&w->ty, f->rec, K_PARAM, type, NULL);
}

/* A subprogram's Sub fields: (die, name, external, decl_file, decl_line, inline,
 * low_pc, declaration, origin, concrete). */
static PyObject *sub_fields(const Die *die, const Val *origin, int concrete) {
    const Val *v = die->v;
    PyObject *name = val_obj(&v[SUB_NAME]);
    PyObject *sub = name ? PyTuple_New(10) : NULL;
    if (sub == NULL) {
        Py_XDECREF(name);
        return NULL;
    }
    PyTuple_SET_ITEM(sub, 0, PyLong_FromUnsignedLongLong(die->off));
    PyTuple_SET_ITEM(sub, 1, name);
    PyTuple_SET_ITEM(sub, 2, PyBool_FromLong(truthy(&v[SUB_EXTERNAL])));
    PyTuple_SET_ITEM(sub, 3, val_obj(&v[SUB_DECL_FILE]));
    PyTuple_SET_ITEM(sub, 4, val_obj(&v[SUB_DECL_LINE]));
    PyTuple_SET_ITEM(sub, 5, val_obj(&v[SUB_INLINE]));
    PyTuple_SET_ITEM(sub, 6, val_obj(&v[SUB_LOW_PC]));
    PyTuple_SET_ITEM(sub, 7, PyBool_FromLong(truthy(&v[SUB_DECLARATION])));
    PyTuple_SET_ITEM(sub, 8, val_obj(origin));
    PyTuple_SET_ITEM(sub, 9, PyBool_FromLong(concrete));
    for (int i = 0; i < 10; i++)
        if (PyTuple_GET_ITEM(sub, i) == NULL) {
            Py_DECREF(sub);
            return NULL;
        }
    return sub;
}

/* A prototype candidate (sub_info, params), unless its name is skipped; its
 * return type a root of the types the prototypes reach. */
static int add_candidate(Walk *w, Die *die, PyObject *name, int declaration) {
    const Val *rtype = &die->v[SUB_TYPE];
    if (rtype->kind == V_INT && rtype->neg)
        FAIL("negative type reference");
    int skip = skipped(w, name, declaration);
    if (skip != 0)
        return skip < 0 ? -1 : 0;
    if (w->types && (check_ref(rtype) < 0 || add_root(&w->ty, rtype) < 0))
        return -1;
    if (grow((void **)&w->cands, &w->ccands, w->ncands, sizeof(Cand)) < 0)
        return -1;
    Cand *c = &w->cands[w->ncands];
    c->die = die->off;
    c->is_decl = declaration;
    c->rtype = rtype->kind == V_INT ? rtype->u : 0;
    c->name = Py_NewRef(name);
    /* Without types, a return type this walk does not describe: no prototype (as in Python). */
    c->params = !w->types && rtype->kind == V_INT && rtype->u != 0 ? NULL : PyList_New(0);
    die->cand = w->ncands++;
    return c->params == NULL && PyErr_Occurred() ? -1 : 0;
}

/* DW_TAG_subprogram: its Sub; a prototype candidate when it is its own origin and
 * prototyped or defined; the top subprogram when it is concrete or an abstract
 * instance (a call site GCC files under the abstract instance is a call that
 * function makes, docs/concepts.md#callers). */
static int on_subprogram(Walk *w, Die *die) {
    const Val *v = die->v;
    int concrete = v[SUB_LOW_PC].kind != V_NONE || v[SUB_RANGES].kind != V_NONE;
    int declaration = truthy(&v[SUB_DECLARATION]);
    const Val *origin = truthy(&v[SUB_ORIGIN]) ? &v[SUB_ORIGIN] : &v[SUB_SPEC];
    PyObject *sub = sub_fields(die, origin, concrete);
    if (sub == NULL || PyList_Append(w->subs, sub) < 0) {
        Py_XDECREF(sub);
        return -1;
    }
    int rc = 0;
    if (origin->kind == V_NONE && v[SUB_NAME].kind != V_NONE && (truthy(&v[SUB_PROTOTYPED]) || !declaration))
        rc = add_candidate(w, die, PyTuple_GET_ITEM(sub, 1), declaration);
    Py_DECREF(sub);
    if (rc < 0)
        return -1;
    if (die->a->children && w->top_depth < 0 && (concrete || v[SUB_INLINE].kind != V_NONE))
        w->top = die->off, w->top_depth = w->depth, w->abstract = !concrete;
    return 0;
}

/* DW_TAG_inlined_subroutine in a concrete top: an "inline" edge from its origin,
 * at its low_pc, else its entry_pc. */
static int on_inlined_subroutine(Walk *w, const Die *die) {
    const Val *v = die->v;
    if (w->top_depth < 0 || v[INL_ORIGIN].kind == V_NONE || w->abstract)
        return 0;
    const Val *at = v[INL_LOW_PC].kind != V_NONE ? &v[INL_LOW_PC] : &v[INL_ENTRY_PC];
    return append_new(w->edges, Py_BuildValue("(NKON)", val_obj(&v[INL_ORIGIN]), (unsigned long long)w->top,
                                              s_inline, val_obj(at)));
}

/* "call": DW_TAG_call_site or DW_TAG_GNU_call_site in a top: a "direct" edge from
 * its call_origin, else its abstract_origin; its children passed over. */
static int on_call(Walk *w, Die *die) {
    const Val *v = die->v;
    const Val *origin = v[CALL_CALL_ORIGIN].kind != V_NONE ? &v[CALL_CALL_ORIGIN] : &v[CALL_ORIGIN];
    if (w->top_depth >= 0 && origin->kind != V_NONE &&
        append_new(w->edges, Py_BuildValue("(NKOO)", val_obj(origin), (unsigned long long)w->top, s_direct,
                                           Py_None)) < 0)
        return -1;
    return die->a->children ? jump(&v[CALL_SIBLING], die) : 0;
}

/* DW_TAG_subrange_type: a dimension (count, upper bound) of the array type it is in. */
static int on_subrange_type(Walk *w, const Die *die) {
    const Frame *f = parent(w);
    if (f == NULL || f->tag != DW_TAG_array_type)
        return 0;
    return add_kid(&w->ty, f->rec, K_DIM, &die->v[TYPE_COUNT], &die->v[TYPE_UPPER]);
}

/* "type", any other type DIE: its record; its children passed over unless they
 * are an array's dimensions, a subroutine type's parameters or (with layouts)
 * members and enumerators (walk_unit's _DESCEND_ALWAYS and _DESCEND_LAYOUT). */
static int on_type(Walk *w, Die *die) {
    const Val *v = die->v;
    uint32_t tag = die->a->tag;
    Types *ty = &w->ty;
    if (check_ref(&v[TYPE_TYPE]) < 0 || grow((void **)&ty->recs, &ty->crecs, ty->nrecs, sizeof(TypeRec)) < 0)
        return -1;
    TypeRec *tr = &ty->recs[ty->nrecs];
    tr->die = die->off, tr->tag = tag, tr->mark = 0, tr->first = tr->last = -1;
    tr->name = v[TYPE_NAME], tr->ref = v[TYPE_TYPE], tr->size = v[TYPE_BYTE_SIZE];
    tr->enc = v[TYPE_ENCODING], tr->count = v[TYPE_COUNT], tr->decl = v[TYPE_DECLARATION];
    die->rec = ty->nrecs++;
    int children_wanted = tag == DW_TAG_array_type || tag == DW_TAG_subroutine_type ||
                          (w->layouts && (tag == DW_TAG_structure_type || tag == DW_TAG_union_type ||
                                          tag == DW_TAG_enumeration_type));
    return die->a->children && !children_wanted ? jump(&v[TYPE_SIBLING], die) : 0;
}

/* DW_TAG_member, with layouts: a member of the struct or union it is in (dwarf._member). */
static int on_member(Walk *w, const Die *die) {
    const Frame *f = parent(w);
    if (!w->layouts || f == NULL || f->rec < 0)
        return 0;
    return add_member(&w->ty, f->rec, die->v, w->r.t->big);
}

/* DW_TAG_enumerator, with layouts: (name, value) of the enumeration it is in. */
static int on_enumerator(Walk *w, const Die *die) {
    const Frame *f = parent(w);
    if (!w->layouts || f == NULL || f->rec < 0)
        return 0;
    return add_kid(&w->ty, f->rec, K_ENUMR, &die->v[ENUMR_NAME], &die->v[ENUMR_VALUE]);
}

/* "unspecified", DW_TAG_unspecified_parameters: None, the "..." of the candidate
 * or subroutine type it is in. */
static int on_unspecified(Walk *w) {
    const Frame *f = parent(w);
    if (f == NULL)
        return 0;
    if (f->tag == DW_TAG_subprogram && f->cand >= 0) {
        Cand *c = &w->cands[f->cand];
        return c->params != NULL ? PyList_Append(c->params, Py_None) : 0;
    }
    if (f->tag != DW_TAG_subroutine_type)
        return 0;
    if (!w->types || f->rec < 0)
        FAIL("unspecified parameters of a subroutine type");
    return add_kid(&w->ty, f->rec, K_VARIADIC, NULL, NULL);
}

/* "cu", the first unit DIE: the unit's facts, its str_offsets and addr bases.
 * 1: a Rust unit, whose facts are all walk_unit returns. */
static int on_cu(Walk *w, const Die *die) {
    const Val *v = die->v;
    if (w->cu != NULL)
        return 0;
    w->cu = Py_BuildValue("(NNNNN)", val_obj(&v[CU_NAME]), val_obj(&v[CU_COMP_DIR]), val_obj(&v[CU_PRODUCER]),
                          val_obj(&v[CU_LANGUAGE]), val_obj(&v[CU_STMT_LIST]));
    if (w->cu == NULL || set_base(&v[CU_STR_BASE], &w->r.str_base, &w->str_base) < 0 ||
        set_base(&v[CU_ADDR_BASE], &w->r.addr_base, &w->addr_base) < 0)
        return -1;
    const Val *language = &v[CU_LANGUAGE];
    return language->kind == V_INT && !language->neg && language->u == DW_LANG_Rust;
}

/* One DIE by walk_unit's branch for its category (CAT_TAG: one tag each). */
static inline int on_die(Walk *w, Die *die) {
    switch (die->a->cat) {
    case CAT_SKIP:
        return on_skip(die);
    case CAT_PARAM:
        return on_formal_parameter(w, die);
    case CAT_SUB:
        return on_subprogram(w, die);
    case CAT_INL:
        return on_inlined_subroutine(w, die);
    case CAT_CALL:
        return on_call(w, die);
    case CAT_TYPE:
        return die->a->tag == DW_TAG_subrange_type ? on_subrange_type(w, die) : on_type(w, die);
    case CAT_MEMBER:
        return on_member(w, die);
    case CAT_ENUMR:
        return on_enumerator(w, die);
    case CAT_UNSPEC:
        return on_unspecified(w);
    case CAT_CU:
        return on_cu(w, die);
    default:
        return 0;
    }
}

/* ---- the walk: the DIE loop ----------------------------------------------------- */

/* The DIE at hand becomes an open parent. */
static int open_parent(Walk *w, const Die *die) {
    if (grow((void **)&w->stack, &w->cstack, w->depth, sizeof(Frame)) < 0)
        return -1;
    Frame *f = &w->stack[w->depth++];
    f->tag = die->a->tag, f->die = die->off, f->cand = die->cand, f->rec = die->rec;
    return 0;
}

/* The end of the innermost open parent's children (and of the top subprogram's). */
static inline void close_parent(Walk *w) {
    w->depth--;
    if (w->depth == w->top_depth)
        w->top_depth = -1, w->abstract = 0;
}

/* dwarf.walk_unit's DIE loop over [p, end): per DIE, its wanted attributes, its
 * branch (on_die), then its children or (when the branch jumped) its sibling. */
static int walk_unit(Walk *w, uint64_t p, uint64_t end) {
    const Reader *r = &w->r;
    Die die;
    while (p < end) {
        uint64_t code;
        die.off = p;
        if (p >= r->n)
            FAIL("DIE past the section");
        if (r->d[p] < 0x80)
            code = r->d[p++];
        else if (read_uleb(r->d, r->n, &p, &code) < 0)
            return -1;
        if (code == 0) {
            if (w->depth == 0)
                break; /* padding after the unit DIE's children */
            close_parent(w);
            continue;
        }
        if (code >= (uint64_t)r->t->ncodes || !r->t->codes[code].present)
            FAIL("unknown abbreviation code");
        die.a = &r->t->codes[code];
        if (read_die(r, &p, die.a, die.v) < 0)
            return -1;
        die.next = p, die.descend = die.a->children, die.cand = die.rec = -1;
        int rc = on_die(w, &die);
        if (rc != 0)
            return rc < 0 ? -1 : 0; /* 1: a Rust unit, read */
        if (die.next <= die.off)
            FAIL("sibling points backwards");
        p = die.next;
        if (die.descend && open_parent(w, &die) < 0)
            return -1;
    }
    return 0;
}

/* ---- the walk: its Python entry ------------------------------------------------- */

/* A walk over the buffers of `in`. */
static int walk_init(Walk *w, const WalkArgs *in) {
    memset(w, 0, sizeof *w);
    w->top_depth = -1;
    if (!PyAnySet_Check(in->btf_funcs) || !PyAnySet_Check(in->prototyped) || !PyAnySet_Check(in->seen)) {
        PyErr_SetString(PyExc_TypeError, "btf_funcs, prototyped and seen must be sets");
        return -1;
    }
    w->btf_funcs = in->btf_funcs, w->prototyped = in->prototyped, w->seen = in->seen;
    Reader *r = &w->r;
    r->t = PyCapsule_GetPointer(in->table, "kernsurf._dwarfwalk.Table");
    if (r->t == NULL)
        return -1;
    r->d = in->info.buf, r->n = (uint64_t)in->info.len;
    r->str = in->debug_str.buf, r->nstr = (uint64_t)in->debug_str.len;
    r->lstr = in->line_str.buf, r->nlstr = (uint64_t)in->line_str.len;
    r->stroff = in->str_offsets.buf, r->nstroff = (uint64_t)in->str_offsets.len;
    r->addr = in->addr.buf, r->naddr = (uint64_t)in->addr.len;
    r->cu = in->unit_offset;
    if (get_u64(in->str_base, &r->str_base) < 0 || get_u64(in->addr_base, &r->addr_base) < 0)
        return -1;
    w->types = r->t->types;
    w->layouts = in->layouts;
    w->subs = PyList_New(0);
    w->edges = PyList_New(0);
    return w->subs == NULL || w->edges == NULL ? -1 : 0;
}

/* Frees what a walk holds (after walk_init, even a failed one). */
static void walk_free(Walk *w) {
    for (Py_ssize_t i = 0; i < w->ncands; i++) {
        Py_XDECREF(w->cands[i].name);
        Py_XDECREF(w->cands[i].params);
    }
    PyMem_Free(w->cands);
    PyMem_Free(w->stack);
    PyMem_Free(w->ty.recs);
    PyMem_Free(w->ty.kids);
    PyMem_Free(w->ty.roots);
    Py_XDECREF(w->subs);
    Py_XDECREF(w->edges);
    Py_XDECREF(w->cu);
    Py_XDECREF(w->str_base);
    Py_XDECREF(w->addr_base);
}

/* walk_unit's sub_info (die -> (name, return type, is a declaration)) and params
 * (die -> parameters) of the candidates that keep a prototype. */
static int candidates(const Walk *w, PyObject **sub_info, PyObject **params) {
    *sub_info = PyDict_New();
    *params = PyDict_New();
    if (*sub_info == NULL || *params == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < w->ncands; i++) {
        const Cand *c = &w->cands[i];
        if (c->params == NULL)
            continue;
        PyObject *key = PyLong_FromUnsignedLongLong(c->die);
        PyObject *entry =
            Py_BuildValue("(OKO)", c->name, (unsigned long long)c->rtype, c->is_decl ? Py_True : Py_False);
        int ok = key != NULL && entry != NULL && PyDict_SetItem(*sub_info, key, entry) == 0 &&
                 PyDict_SetItem(*params, key, c->params) == 0;
        Py_XDECREF(key);
        Py_XDECREF(entry);
        if (!ok)
            goto fail;
    }
    return 0;
fail:
    Py_CLEAR(*sub_info);
    Py_CLEAR(*params);
    return -1;
}

/* What walk() returns of a walked unit. */
static PyObject *walk_result(Walk *w) {
    PyObject *sub_info, *params, *raw = NULL;
    if (w->cu == NULL) {
        PyErr_SetString(Unsupported, "no compile-unit DIE");
        return NULL;
    }
    if (candidates(w, &sub_info, &params) < 0)
        return NULL;
    if (w->layouts)
        for (Py_ssize_t i = 0; i < w->ty.nrecs; i++)
            w->ty.recs[i].mark = 1;
    if (w->types && ((!w->layouts && mark_reachable(&w->ty) < 0) || (raw = raw_types(&w->ty)) == NULL)) {
        Py_DECREF(sub_info);
        Py_DECREF(params);
        return NULL;
    }
    return Py_BuildValue("(OOONNOON)", w->cu, w->subs, w->edges, sub_info, params,
                         w->str_base ? w->str_base : Py_None, w->addr_base ? w->addr_base : Py_None,
                         raw ? raw : Py_NewRef(Py_None));
}

/* walk(info, table, die_offset, end, unit_offset, debug_str, line_str, str_offsets, addr, str_base,
 *      addr_base, btf_funcs, prototyped, seen, layouts), by keyword
 *   -> (cu, subs, edges, sub_info, params, str_base, addr_base, raw_types)
 * The unit at unit_offset, its DIEs in [die_offset, end) of info, with the abbreviation table
 * parse_table made. cu: (name, comp_dir, producer, language, stmt_list); str_base/addr_base:
 * the unit's, None if unset; sub_info/params: only of candidates `skipped` keeps; raw_types:
 * None for a table without types, every type DIE's with layouts, else those the candidates'
 * prototypes reach. */
static PyObject *py_walk(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"info", "table", "die_offset", "end", "unit_offset", "debug_str", "line_str",
                               "str_offsets", "addr", "str_base", "addr_base", "btf_funcs", "prototyped",
                               "seen", "layouts", NULL};
    WalkArgs in;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*OKKKy*y*y*y*OOOOOp", keywords, &in.info, &in.table,
                                     &in.die_offset, &in.end, &in.unit_offset, &in.debug_str, &in.line_str,
                                     &in.str_offsets, &in.addr, &in.str_base, &in.addr_base, &in.btf_funcs,
                                     &in.prototyped, &in.seen, &in.layouts))
        return NULL;
    Walk w;
    PyObject *result = NULL;
    if (walk_init(&w, &in) == 0 && walk_unit(&w, in.die_offset, in.end) == 0)
        result = walk_result(&w);
    walk_free(&w);
    PyBuffer_Release(&in.info);
    PyBuffer_Release(&in.debug_str);
    PyBuffer_Release(&in.line_str);
    PyBuffer_Release(&in.str_offsets);
    PyBuffer_Release(&in.addr);
    return result;
}

/* ---- line table file names (dwarf_lines.file_names) ------------------------------ */

typedef struct {
    const uint8_t *d;
    uint64_t n, p;
    int big;
} LReader;

/* An unsigned number of `size` bytes of the line table. */
static inline int lr_u(LReader *r, unsigned size, uint64_t *out) {
    if (r->p > r->n || r->n - r->p < size)
        FAIL("line table past the section");
    *out = get_uint(r->d + r->p, size, r->big);
    r->p += size;
    return 0;
}

/* Passes over `size` bytes of the line table. */
static inline int lr_skip(LReader *r, uint64_t size) {
    if (r->p > r->n || r->n - r->p < size)
        FAIL("line table past the section");
    r->p += size;
    return 0;
}

/* A NUL-terminated string inline in the line table, as str. */
static PyObject *lr_cstr(LReader *r) {
    if (r->p >= r->n) {
        PyErr_SetString(Unsupported, "line table past the section");
        return NULL;
    }
    const uint8_t *end = memchr(r->d + r->p, 0, r->n - r->p);
    if (end == NULL) {
        PyErr_SetString(Unsupported, "unterminated string");
        return NULL;
    }
    PyObject *s = PyUnicode_DecodeUTF8((const char *)r->d + r->p, end - (r->d + r->p), "replace");
    r->p = (uint64_t)(end - r->d) + 1;
    return s;
}

/* The string at `off` of .debug_str or .debug_line_str, as str. */
static PyObject *section_str(const uint8_t *sec, uint64_t len, uint64_t off) {
    Val v;
    if (cstring(sec, len, off, &v) < 0)
        return NULL;
    return PyUnicode_DecodeUTF8(v.s, v.n, "replace");
}

/* posixpath.join(a, b) of two str. */
static PyObject *path_join(PyObject *a, PyObject *b) {
    Py_ssize_t na = PyUnicode_GET_LENGTH(a), nb = PyUnicode_GET_LENGTH(b);
    if (nb > 0 && PyUnicode_READ_CHAR(b, 0) == '/')
        return Py_NewRef(b);
    if (na == 0 || PyUnicode_READ_CHAR(a, na - 1) == '/')
        return PyUnicode_Concat(a, b);
    PyObject *slash = PyUnicode_Concat(a, s_slash);
    if (slash == NULL)
        return NULL;
    PyObject *out = PyUnicode_Concat(slash, b);
    Py_DECREF(slash);
    return out;
}

/* dwarf_lines._join */
static PyObject *line_join(PyObject *directory, PyObject *name, PyObject *comp_dir) {
    PyObject *path = PyUnicode_GET_LENGTH(directory) ? path_join(directory, name) : Py_NewRef(name);
    if (path == NULL)
        return NULL;
    if (comp_dir != Py_None && PyUnicode_GET_LENGTH(comp_dir) > 0 &&
        PyUnicode_Tailmatch(path, s_dotdot, 0, 2, -1) == 1) {
        PyObject *joined = path_join(comp_dir, path);
        Py_DECREF(path);
        return joined;
    }
    return path;
}

/* One value of a DWARF 5 entry: 1 and *x for a number, 0 for anything else
 * (*str: a string's value, else NULL); -1 for a form dwarf_lines does not read. */
static int entry_value(LReader *r, uint64_t form, unsigned osz, const Reader *strs, PyObject **str, uint64_t *x) {
    *str = NULL;
    switch (form) {
    case DW_FORM_string:
        return (*str = lr_cstr(r)) != NULL ? 0 : -1;
    case DW_FORM_line_strp:
        return lr_u(r, osz, x) == 0 && (*str = section_str(strs->lstr, strs->nlstr, *x)) != NULL ? 0 : -1;
    case DW_FORM_strp:
        return lr_u(r, osz, x) == 0 && (*str = section_str(strs->str, strs->nstr, *x)) != NULL ? 0 : -1;
    case DW_FORM_udata:
        return read_uleb(r->d, r->n, &r->p, x) == 0 ? 1 : -1;
    case DW_FORM_data1:
        return lr_u(r, 1, x) == 0 ? 1 : -1;
    case DW_FORM_data2:
        return lr_u(r, 2, x) == 0 ? 1 : -1;
    case DW_FORM_data4:
        return lr_u(r, 4, x) == 0 ? 1 : -1;
    case DW_FORM_data8:
        return lr_u(r, 8, x) == 0 ? 1 : -1;
    case DW_FORM_data16:
        return lr_skip(r, 16);
    case DW_FORM_block:
        return read_uleb(r->d, r->n, &r->p, x) == 0 && lr_skip(r, *x) == 0 ? 0 : -1;
    default:
        FAIL("line table form");
    }
}

/* One DWARF 5 entry: (path, directory index); its path must be a string (str(value) in Python). */
static PyObject *v5_entry(LReader *r, uint64_t nformats, const uint64_t *content, const uint64_t *form,
                          unsigned osz, const Reader *strs) {
    PyObject *path = NULL, *str;
    uint64_t index = 0, x;
    for (uint64_t i = 0; i < nformats; i++) {
        int kind = entry_value(r, form[i], osz, strs, &str, &x);
        if (kind < 0) {
            Py_XDECREF(path);
            return NULL;
        }
        if (content[i] == DW_LNCT_path) {
            if (str == NULL) {
                PyErr_SetString(Unsupported, "a path that is not a string");
                Py_XDECREF(path);
                return NULL;
            }
            Py_XSETREF(path, str);
            str = NULL;
        } else if (content[i] == DW_LNCT_directory_index && kind == 1) {
            index = x;
        }
        Py_XDECREF(str);
    }
    if (path == NULL) {
        PyErr_SetString(Unsupported, "an entry without a path");
        return NULL;
    }
    return Py_BuildValue("(NK)", path, (unsigned long long)index);
}

/* A DWARF 5 entry list (directories or files): its entry formats, then (path,
 * directory index) per entry. */
static PyObject *v5_entries(LReader *r, unsigned osz, const Reader *strs) {
    uint64_t nformats, count, content[16], form[16];
    if (lr_u(r, 1, &nformats) < 0)
        return NULL;
    if (nformats > 16) {
        PyErr_SetString(Unsupported, "too many entry formats");
        return NULL;
    }
    for (uint64_t i = 0; i < nformats; i++)
        if (read_uleb(r->d, r->n, &r->p, &content[i]) < 0 || read_uleb(r->d, r->n, &r->p, &form[i]) < 0)
            return NULL;
    if (read_uleb(r->d, r->n, &r->p, &count) < 0)
        return NULL;
    if (count > r->n) {
        PyErr_SetString(Unsupported, "entry count");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    for (uint64_t e = 0; out != NULL && e < count; e++)
        if (append_new(out, v5_entry(r, nformats, content, form, osz, strs)) < 0)
            Py_CLEAR(out);
    return out;
}

/* A line table's header up to its directory and file lists, where it leaves r:
 * the table's version and offset size. */
static int line_header(LReader *r, uint64_t *version, unsigned *osz) {
    uint64_t length, x, opcode_base;
    *osz = 4;
    if (lr_u(r, 4, &length) < 0)
        return -1;
    if (length == 0xFFFFFFFF) { /* the 64-bit DWARF format */
        if (lr_u(r, 8, &x) < 0)
            return -1;
        *osz = 8;
    }
    if (lr_u(r, 2, version) < 0)
        return -1;
    if (*version >= 5 && lr_skip(r, 2) < 0) /* address_size, segment_selector_size */
        return -1;
    /* header_length, minimum_instruction_length, maximum_operations_per_instruction (4 and up),
     * default_is_stmt, line_base, line_range, opcode_base, standard_opcode_lengths */
    if (lr_u(r, *osz, &x) < 0 || lr_skip(r, *version >= 4 ? 4 : 3) < 0 || lr_skip(r, 1) < 0 ||
        lr_u(r, 1, &opcode_base) < 0)
        return -1;
    if (opcode_base == 0)
        FAIL("opcode_base 0");
    return lr_skip(r, opcode_base - 1);
}

/* DWARF 5: the file entries joined to the directory entries they name. */
static PyObject *v5_file_names(LReader *r, unsigned osz, const Reader *strs, PyObject *comp_dir) {
    PyObject *dirs = v5_entries(r, osz, strs), *entries = NULL, *files = NULL;
    if (dirs == NULL || (entries = v5_entries(r, osz, strs)) == NULL || (files = PyList_New(0)) == NULL)
        goto done;
    Py_ssize_t ndirs = PyList_GET_SIZE(dirs);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(entries); i++) {
        PyObject *e = PyList_GET_ITEM(entries, i);
        unsigned long long index = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(e, 1));
        PyObject *directory =
            index < (unsigned long long)ndirs ? PyTuple_GET_ITEM(PyList_GET_ITEM(dirs, index), 0) : s_empty;
        if (append_new(files, line_join(directory, PyTuple_GET_ITEM(e, 0), comp_dir)) < 0) {
            Py_CLEAR(files);
            goto done;
        }
    }
done:
    Py_XDECREF(dirs);
    Py_XDECREF(entries);
    return files;
}

/* DWARF 2-4: the include directories after comp_dir (directory 0), to their empty string. */
static int v4_directories(LReader *r, PyObject *dirs) {
    for (;;) {
        if (r->p >= r->n)
            FAIL("line table past the section");
        if (r->d[r->p] == 0)
            break;
        if (append_new(dirs, lr_cstr(r)) < 0)
            return -1;
    }
    r->p++;
    return 0;
}

/* DWARF 2-4: the file names, each joined to its directory; files[:1] + files
 * (these count from 1). */
static PyObject *v4_file_names(LReader *r, PyObject *comp_dir) {
    PyObject *dirs = PyList_New(0), *files = PyList_New(0), *result = NULL;
    uint64_t index, x;
    if (dirs == NULL || files == NULL || PyList_Append(dirs, comp_dir == Py_None ? s_empty : comp_dir) < 0 ||
        v4_directories(r, dirs) < 0)
        goto done;
    for (;;) {
        if (r->p >= r->n) {
            PyErr_SetString(Unsupported, "line table past the section");
            goto done;
        }
        if (r->d[r->p] == 0)
            break;
        PyObject *name = lr_cstr(r);
        if (name == NULL)
            goto done;
        /* the directory index, the modification time, the length */
        if (read_uleb(r->d, r->n, &r->p, &index) < 0 || read_uleb(r->d, r->n, &r->p, &x) < 0 ||
            read_uleb(r->d, r->n, &r->p, &x) < 0) {
            Py_DECREF(name);
            goto done;
        }
        PyObject *directory = index < (uint64_t)PyList_GET_SIZE(dirs) ? PyList_GET_ITEM(dirs, index) : s_empty;
        PyObject *path = line_join(directory, name, comp_dir);
        Py_DECREF(name);
        if (append_new(files, path) < 0)
            goto done;
    }
    result = PyList_GetSlice(files, 0, 1);
    if (result != NULL)
        Py_SETREF(result, PySequence_Concat(result, files));
done:
    Py_XDECREF(dirs);
    Py_XDECREF(files);
    return result;
}

/* file_names(line, offset, big_endian, comp_dir, debug_str, line_str) -> list of paths,
 * as dwarf_lines.file_names; Unsupported for anything it would not read the same way. */
static PyObject *py_file_names(PyObject *self, PyObject *args) {
    Py_buffer line, bstr, blstr;
    unsigned long long offset;
    int big;
    PyObject *comp_dir, *result = NULL;
    if (!PyArg_ParseTuple(args, "y*KpOy*y*", &line, &offset, &big, &comp_dir, &bstr, &blstr))
        return NULL;
    LReader r = {line.buf, (uint64_t)line.len, offset, big};
    Reader strs = {0};
    strs.str = bstr.buf, strs.nstr = (uint64_t)bstr.len;
    strs.lstr = blstr.buf, strs.nlstr = (uint64_t)blstr.len;
    uint64_t version;
    unsigned osz;
    if (comp_dir != Py_None && !PyUnicode_Check(comp_dir))
        PyErr_SetString(Unsupported, "comp_dir");
    else if (line_header(&r, &version, &osz) == 0)
        result = version >= 5 ? v5_file_names(&r, osz, &strs, comp_dir) : v4_file_names(&r, comp_dir);
    PyBuffer_Release(&line);
    PyBuffer_Release(&bstr);
    PyBuffer_Release(&blstr);
    return result;
}

static PyMethodDef methods[] = {
    {"configure", py_configure, METH_VARARGS, "dwarf_forms' rules (see dwarf.py)."},
    {"parse_table", py_parse_table, METH_VARARGS, "A compiled abbreviation table (see dwarf.py)."},
    {"file_names", py_file_names, METH_VARARGS, "A line table's file names (see dwarf.py)."},
    {"walk", (PyCFunction)(void (*)(void))py_walk, METH_VARARGS | METH_KEYWORDS, "Walk one unit (see dwarf.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_dwarfwalk", "C DIE walk for ingest.readers.dwarf.", -1, methods,
};

/* The module: Unsupported, the interned strings, CATEGORY_IDS (dwarf.py's names of the categories). */
PyMODINIT_FUNC PyInit__dwarfwalk(void) {
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    Unsupported = PyErr_NewException("_dwarfwalk.Unsupported", NULL, NULL);
    s_inline = PyUnicode_InternFromString("inline");
    s_direct = PyUnicode_InternFromString("direct");
    s_slash = PyUnicode_InternFromString("/");
    s_dotdot = PyUnicode_InternFromString("..");
    s_empty = PyUnicode_InternFromString("");
    s_decl = PyUnicode_InternFromString("decl");
    if (Unsupported == NULL || s_inline == NULL || s_direct == NULL || s_slash == NULL || s_dotdot == NULL ||
        s_empty == NULL || s_decl == NULL ||
        PyModule_AddObjectRef(m, "Unsupported", Unsupported) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyObject *cats = Py_BuildValue("{sisisisisisisisisisi}", "skip", CAT_SKIP, "cu", CAT_CU, "sub", CAT_SUB,
                                   "inl", CAT_INL, "call", CAT_CALL, "param", CAT_PARAM, "unspecified",
                                   CAT_UNSPEC, "type", CAT_TYPE, "member", CAT_MEMBER, "enumerator", CAT_ENUMR);
    if (cats == NULL || PyModule_AddObject(m, "CATEGORY_IDS", cats) < 0) {
        Py_XDECREF(cats);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
