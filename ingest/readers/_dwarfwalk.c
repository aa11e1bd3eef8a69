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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *Unsupported;
static PyObject *MemberType; /* ingest.model.Member, given by configure() */
static PyObject *s_inline, *s_direct, *s_slash, *s_dotdot, *s_empty, *s_decl;

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
    [CAT_SKIP] = {0x01},
    [CAT_CU] = {0x03, 0x1B, 0x25, 0x13, 0x10, 0x72, 0x73},
    [CAT_SUB] = {0x03, 0x3F, 0x3A, 0x3B, 0x20, 0x11, 0x3C, 0x31, 0x47, 0x49, 0x01, 0x55, 0x52, 0x27},
    [CAT_INL] = {0x31, 0x11, 0x52, 0x01},
    [CAT_CALL] = {0x7F, 0x31, 0x01},
    [CAT_PARAM] = {0x03, 0x49, 0x31},
    [CAT_TYPE] = {0x03, 0x49, 0x0B, 0x3E, 0x37, 0x2F, 0x01, 0x3C},
    [CAT_MEMBER] = {0x03, 0x49, 0x38, 0x6B, 0x0D, 0x0C, 0x0B},
    [CAT_ENUMR] = {0x03, 0x1C},
};

#define TAG_array_type 0x01
#define TAG_enumeration_type 0x04
#define TAG_structure_type 0x13
#define TAG_union_type 0x17
#define TAG_lexical_block 0x0B
#define TAG_subrange_type 0x21
#define TAG_subroutine_type 0x15
#define TAG_subprogram 0x2E
#define TAG_formal_parameter 0x05
#define TAG_inlined_subroutine 0x1D
#define LANG_RUST 0x1C

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

typedef struct {
    uint64_t ncodes;
    Abbrev *codes;
    int offset_size, address_size, ref_addr_size, big, types;
} Table;

enum { V_NONE, V_INT, V_STR, V_BYTES };
typedef struct {
    uint8_t kind, neg; /* neg: u holds a negative int64 */
    uint64_t u;
    const char *s;
    Py_ssize_t n;
} Val;

typedef struct {
    const uint8_t *d;
    uint64_t n;
    const uint8_t *str, *lstr, *stroff, *addr;
    uint64_t nstr, nlstr, nstroff, naddr;
    uint64_t cu, str_base, addr_base;
    const Table *t;
} Reader;

/* ---- the table ------------------------------------------------------------ */

/* The fixed size of a form, -1 when variable, -2 when unknown. */
static int form_size(const Table *t, unsigned form) {
    switch (form) {
    case 0x0B: case 0x0C: case 0x11: case 0x25: case 0x29: return 1;
    case 0x05: case 0x12: case 0x26: case 0x2A: return 2;
    case 0x27: case 0x2B: return 3;
    case 0x06: case 0x13: case 0x28: case 0x2C: case 0x1C: return 4;
    case 0x07: case 0x14: case 0x20: case 0x24: return 8;
    case 0x1E: return 16;
    case 0x19: case 0x21: return 0;
    case 0x01: return t->address_size;
    case 0x10: return t->ref_addr_size;
    case 0x0E: case 0x17: case 0x1D: case 0x1F: case 0x1F20: case 0x1F21: return t->offset_size;
    case 0x0F: case 0x0D: case 0x15: case 0x1A: case 0x1B: case 0x22: case 0x23: case 0x1F01: case 0x1F02:
    case 0x08: case 0x09: case 0x18: case 0x0A: case 0x03: case 0x04: return -1;
    default: return -2;
    }
}

/* ---- reading ---------------------------------------------------------------- */

#define FAIL(why) do { PyErr_SetString(Unsupported, why); return -1; } while (0)

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

static inline int strx(const Reader *r, uint64_t index, Val *v) {
    unsigned osz = (unsigned)r->t->offset_size;
    uint64_t at;
    if (__builtin_mul_overflow(index, (uint64_t)osz, &at) || __builtin_add_overflow(at, r->str_base, &at) ||
        at > r->nstroff || r->nstroff - at < osz)
        FAIL("strx outside .debug_str_offsets");
    return cstring(r->str, r->nstr, get_uint(r->stroff + at, osz, r->t->big), v);
}

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

/* One wanted attribute, as dwarf_forms._form_code reads it. */
static int read_value(const Reader *r, uint64_t *pp, const Op *op, Val *v) {
    const uint8_t *d = r->d;
    uint64_t p = *pp;
    unsigned form = op->form;
    v->kind = V_INT;
    v->neg = 0;
    if (form == 0x21) {
        v->u = (uint64_t)op->implicit;
        v->neg = op->implicit < 0;
        return 0;
    }
    if (form == 0x19) {
        v->u = 1;
        return 0;
    }
    int size = form_size(r->t, form);
    if (size > 0) {
        if (p + (uint64_t)size > r->n)
            FAIL("attribute past the section");
        *pp = p + (uint64_t)size;
        if (form == 0x20 || form == 0x1E || form == 0x1D || form == 0x1F21 || form == 0x1C || form == 0x24 ||
            form == 0x1F20) {
            v->kind = V_NONE;
            return 0;
        }
        uint64_t x = size == 1 ? d[p] : get_uint(d + p, (unsigned)size, r->t->big);
        switch (form) {
        case 0x11: case 0x12: case 0x13: case 0x14:
            if (x + r->cu < x)
                FAIL("reference beyond 64 bits");
            v->u = x + r->cu;
            return 0;
        case 0x0E: return cstring(r->str, r->nstr, x, v);
        case 0x1F: return cstring(r->lstr, r->nlstr, x, v);
        case 0x25: case 0x26: case 0x27: case 0x28: return strx(r, x, v);
        case 0x29: case 0x2A: case 0x2B: case 0x2C: return addrx(r, x, v);
        default: v->u = x; return 0;
        }
    }
    uint64_t x;
    switch (form) {
    case 0x0F: case 0x22: case 0x23:
        if (read_uleb(d, r->n, &p, &x) < 0)
            return -1;
        *pp = p;
        v->u = x;
        return 0;
    case 0x15:
        if (read_uleb(d, r->n, &p, &x) < 0)
            return -1;
        *pp = p;
        if (x + r->cu < x)
            FAIL("reference beyond 64 bits");
        v->u = x + r->cu;
        return 0;
    case 0x1A: case 0x1F02:
        if (read_uleb(d, r->n, &p, &x) < 0)
            return -1;
        *pp = p;
        return strx(r, x, v);
    case 0x1B: case 0x1F01:
        if (read_uleb(d, r->n, &p, &x) < 0)
            return -1;
        *pp = p;
        return addrx(r, x, v);
    case 0x0D: {
        uint64_t u = 0;
        unsigned s = 0;
        uint8_t b;
        do {
            if (p >= r->n)
                FAIL("sleb past the section");
            if (s >= 63)
                FAIL("sleb beyond 63 bits");
            b = d[p++];
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
    case 0x08: {
        if (p >= r->n)
            FAIL("string past the section");
        const uint8_t *end = memchr(d + p, 0, r->n - p);
        if (end == NULL)
            FAIL("unterminated string");
        v->kind = V_STR;
        v->s = (const char *)d + p;
        v->n = end - (d + p);
        *pp = (uint64_t)(end - d) + 1;
        return 0;
    }
    case 0x09: case 0x18: case 0x0A: case 0x03: case 0x04: { /* blocks: bytes (types' sizes, bounds) */
        if (form == 0x09 || form == 0x18) {
            if (read_uleb(d, r->n, &p, &x) < 0)
                return -1;
        } else {
            unsigned w = form == 0x0A ? 1 : form == 0x03 ? 2 : 4;
            if (p + w > r->n)
                FAIL("block length past the section");
            x = get_uint(d + p, w, r->t->big);
            p += w;
        }
        if (x > r->n - p)
            FAIL("block past the section");
        v->kind = V_BYTES;
        v->s = (const char *)d + p;
        v->n = (Py_ssize_t)x;
        *pp = p + x;
        return 0;
    }
    default:
        FAIL("wanted attribute of a form dwarf_forms refuses");
    }
}

static int skip_ops(const Reader *r, uint64_t *pp, const Op *op) {
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

/* ---- the table ------------------------------------------------------------------ */

/* dwarf_forms' rules, given once by dwarf.py (configure). */
static int configured;
static uint8_t TAG_CAT[2][0x10000]; /* [walk with types][tag] */
static uint32_t CAT_ATTRS[N_CATS][MAX_SLOTS];
static int CAT_NATTRS[N_CATS];
#define MAX_SET 32
typedef struct { int n; uint32_t v[MAX_SET]; } Set;
static Set STRING_ATTRS, STRING_FORMS, BLOCK_ATTRS, BLOCK_FORMS;

static inline int in_set(const Set *s, uint64_t x) {
    for (int i = 0; i < s->n; i++)
        if (s->v[i] == x)
            return 1;
    return 0;
}

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

/* configure(tag -> category id without types, the same with types (tags not given: skip),
 *           category id -> wanted attributes, string attributes, string forms, block attributes,
 *           block forms, the Member class) */
static PyObject *py_configure(PyObject *self, PyObject *args) {
    PyObject *tag_maps[2], *cats, *sa, *sf, *ba, *bf, *member, *k, *v;
    if (!PyArg_ParseTuple(args, "O!O!O!OOOOO!", &PyDict_Type, &tag_maps[0], &PyDict_Type, &tag_maps[1],
                          &PyDict_Type, &cats, &sa, &sf, &ba, &bf, &PyType_Type, &member))
        return NULL;
    configured = 0;
    Py_XSETREF(MemberType, Py_NewRef(member));
    memset(TAG_CAT, CAT_SKIP, sizeof TAG_CAT);
    Py_ssize_t pos;
    for (int types = 0; types < 2; types++) {
        pos = 0;
        while (PyDict_Next(tag_maps[types], &pos, &k, &v)) {
            long tag = PyLong_AsLong(k), cat = PyLong_AsLong(v);
            if (PyErr_Occurred())
                return NULL;
            if (tag < 0 || tag > 0xFFFF || cat < 0 || cat >= N_CATS)
                return PyErr_Format(PyExc_ValueError, "tag 0x%lx category %ld", tag, cat);
            TAG_CAT[types][tag] = (uint8_t)cat;
        }
    }
    memset(CAT_NATTRS, 0, sizeof CAT_NATTRS);
    pos = 0;
    while (PyDict_Next(cats, &pos, &k, &v)) {
        long cat = PyLong_AsLong(k);
        if (PyErr_Occurred())
            return NULL;
        if (cat < 0 || cat >= N_CATS || !PyTuple_Check(v) || PyTuple_GET_SIZE(v) != NSLOTS[cat])
            return PyErr_Format(PyExc_ValueError, "category %ld: not the slots this walk fills", cat);
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(v); i++) {
            long attr = PyLong_AsLong(PyTuple_GET_ITEM(v, i));
            if (PyErr_Occurred())
                return NULL;
            if (attr != SLOT_ATTRS[cat][i])
                return PyErr_Format(PyExc_ValueError, "category %ld slot %zd: attribute 0x%lx", cat, i, attr);
            CAT_ATTRS[cat][i] = (uint32_t)attr;
        }
        CAT_NATTRS[cat] = (int)PyTuple_GET_SIZE(v);
    }
    for (int c = 0; c < N_CATS; c++)
        if (CAT_NATTRS[c] != NSLOTS[c])
            return PyErr_Format(PyExc_ValueError, "category %d not given", c);
    if (set_from(sa, &STRING_ATTRS) < 0 || set_from(sf, &STRING_FORMS) < 0 || set_from(ba, &BLOCK_ATTRS) < 0 ||
        set_from(bf, &BLOCK_FORMS) < 0)
        return NULL;
    configured = 1;
    Py_RETURN_NONE;
}

static void table_free(PyObject *capsule) {
    Table *t = PyCapsule_GetPointer(capsule, "kernsurf._dwarfwalk.Table");
    if (t == NULL)
        return;
    for (uint64_t i = 0; i < t->ncodes; i++)
        PyMem_Free(t->codes[i].ops);
    PyMem_Free(t->codes);
    PyMem_Free(t);
}

/* One table of .debug_abbrev, as dwarf.parse_abbrevs reads it (t->types: want_types);
 * Unsupported wherever dwarf_forms.decoder would refuse an abbreviation. */
static int parse_into(Table *t, const uint8_t *d, uint64_t n, uint64_t p) {
    Op *ops = NULL;
    uint64_t opcap = 0;
    while (p < n) {
        uint64_t code, tag, attr, form;
        if (read_uleb(d, n, &p, &code) < 0)
            goto fail;
        if (code == 0)
            break;
        if (read_uleb(d, n, &p, &tag) < 0)
            goto fail;
        if (p >= n) {
            PyErr_SetString(Unsupported, "table past the section");
            goto fail;
        }
        int children = d[p++] != 0;
        if (code > 1000000 || tag > 0xFFFF) {
            PyErr_SetString(Unsupported, "abbreviation code or tag out of range");
            goto fail;
        }
        if (code >= t->ncodes) {
            uint64_t nc = t->ncodes ? t->ncodes : 64;
            while (nc <= code)
                nc *= 2;
            Abbrev *grown = PyMem_Realloc(t->codes, nc * sizeof(Abbrev));
            if (grown == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            memset(grown + t->ncodes, 0, (nc - t->ncodes) * sizeof(Abbrev));
            t->codes = grown, t->ncodes = nc;
        }
        Abbrev *a = &t->codes[code];
        if (a->present) {
            PyErr_SetString(Unsupported, "duplicate abbreviation code");
            goto fail;
        }
        int cat = TAG_CAT[t->types][tag];
        uint32_t taken = 0, k = 0;
        for (;;) {
            if (read_uleb(d, n, &p, &attr) < 0 || read_uleb(d, n, &p, &form) < 0)
                goto fail;
            if (attr == 0 && form == 0)
                break;
            uint64_t implicit = 0;
            if (form == 0x21 && read_uleb(d, n, &p, &implicit) < 0)
                goto fail;
            int slot = -1;
            for (int i = 0; i < CAT_NATTRS[cat]; i++)
                if (CAT_ATTRS[cat][i] == attr) {
                    if (!(taken & (1u << i)))
                        slot = i, taken |= 1u << i;
                    break;
                }
            int size = form > 0xFFFF ? -2 : form_size(t, (unsigned)form);
            if (size == -2 ||
                (slot >= 0 && (in_set(&STRING_ATTRS, attr) != in_set(&STRING_FORMS, form) ||
                               (in_set(&BLOCK_FORMS, form) && !in_set(&BLOCK_ATTRS, attr))))) {
                PyErr_SetString(Unsupported, "a form dwarf_forms refuses");
                goto fail;
            }
            if (k == opcap) {
                uint64_t nc = opcap ? opcap * 2 : 16;
                Op *grown = PyMem_Realloc(ops, nc * sizeof(Op));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto fail;
                }
                ops = grown, opcap = nc;
            }
            Op op = {0};
            op.form = (uint16_t)form;
            op.implicit = (int64_t)implicit;
            if (slot >= 0) {
                op.kind = OP_READ;
                op.slot = (int8_t)slot;
            } else if (size >= 0) {
                if (k > 0 && ops[k - 1].kind == OP_SKIP_FIXED) {
                    ops[k - 1].size += (uint32_t)size;
                    continue;
                }
                op.kind = OP_SKIP_FIXED;
                op.size = (uint32_t)size;
            } else if (form == 0x08) {
                op.kind = OP_SKIP_CSTR;
            } else if (form == 0x09 || form == 0x18) {
                op.kind = OP_SKIP_BLOCK_ULEB;
            } else if (form == 0x0A || form == 0x03 || form == 0x04) {
                op.kind = OP_SKIP_BLOCKN;
                op.size = form == 0x0A ? 1 : form == 0x03 ? 2 : 4;
            } else {
                op.kind = OP_SKIP_ULEB;
            }
            ops[k++] = op;
        }
        a->ops = PyMem_Malloc((k ? k : 1) * sizeof(Op));
        if (a->ops == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        memcpy(a->ops, ops, k * sizeof(Op));
        a->nops = k;
        a->present = 1;
        a->tag = (uint32_t)tag;
        a->children = (uint8_t)children;
        a->cat = (uint8_t)cat;
    }
    PyMem_Free(ops);
    return 0;
fail:
    PyMem_Free(ops);
    return -1;
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

/* ---- the walk ------------------------------------------------------------------- */

typedef struct {
    uint32_t tag;
    uint64_t die;
    Py_ssize_t cand; /* index into the prototype candidates, -1 */
    Py_ssize_t rec;  /* index into the type records, -1 */
} Frame;

typedef struct {
    uint64_t die;
    PyObject *name;
    PyObject *params; /* list of (name, type) and None; without types NULL once a type is not void */
    uint64_t rtype;   /* `rtype or 0` */
    int is_decl;
} Cand;

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

/* Room for one more element of a growing array. */
static int grow(void **buf, Py_ssize_t *cap, Py_ssize_t n, size_t size) {
    if (n < *cap)
        return 0;
    Py_ssize_t nc = *cap ? *cap * 2 : 256;
    void *grown = PyMem_Realloc(*buf, (size_t)nc * size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = grown, *cap = nc;
    return 0;
}

/* A type reference as walk_unit keeps it: refused when it is negative or so
 * large that it could meet _Graph's synthetic array ids (1 << 48 and up). */
static inline int check_ref(const Val *v) {
    if (v->kind == V_INT && (v->neg || v->u >= ((uint64_t)1 << 48)))
        FAIL("type reference out of range");
    return 0;
}

static inline int add_root(Types *ty, const Val *v) {
    if (v->kind != V_INT || v->u == 0)
        return 0; /* void */
    if (grow((void **)&ty->roots, &ty->croots, ty->nroots, sizeof(uint64_t)) < 0)
        return -1;
    ty->roots[ty->nroots++] = v->u;
    return 0;
}

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
    if (loc->n > 0 && b[0] == 0x23)
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

static PyObject *val_obj(const Val *v);

/* A type reference as walk_unit stores it: `ref or 0`. */
static inline PyObject *ref_obj(const Val *v) {
    return PyLong_FromUnsignedLongLong(v->kind == V_INT ? v->u : 0);
}

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

static inline int truthy(const Val *v) {
    return v->kind == V_INT ? v->u != 0 : (v->kind == V_STR || v->kind == V_BYTES) ? v->n != 0 : 0;
}

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

/* Continue at a DIE's sibling (when it has one) instead of its children. */
static inline int jump(const Val *sibling, uint64_t *p, int *descend) {
    if (sibling->kind == V_NONE)
        return 0;
    if (sibling->neg)
        FAIL("negative sibling");
    *p = sibling->u;
    *descend = 0;
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
 * in `skip` or `skip2` (WalkConfig.btf_funcs, prototyped) or already in `seen`
 * (as a declaration's, for one). */
static int skipped(PyObject *skip, PyObject *skip2, PyObject *seen, PyObject *name, int is_decl) {
    int found = PySet_Contains(skip, name);
    if (found == 0)
        found = PySet_Contains(skip2, name);
    if (found == 0)
        found = PySet_Contains(seen, name);
    if (found == 0 && is_decl) {
        PyObject *key = PyTuple_Pack(2, s_decl, name);
        found = key ? PySet_Contains(seen, key) : -1;
        Py_XDECREF(key);
    }
    return found;
}

/* walk(info, die_offset, end, cu, table, debug_str, line_str, str_offsets, addr, str_base, addr_base,
 *      skip, skip2, seen, layouts) -> (cu, subs, edges, sub_info, params, str_base, addr_base, raw_types)
 * cu: (name, comp_dir, producer, language, stmt_list); str_base/addr_base: the unit's, None if unset;
 * sub_info/params: only of candidates `skipped` keeps; raw_types: None for a table without types,
 * every type DIE's with layouts, else those the candidates' prototypes reach. */
static PyObject *py_walk(PyObject *self, PyObject *args) {
    Py_buffer info, bstr, blstr, bstroff, baddr;
    unsigned long long die_offset, end, cu;
    PyObject *capsule, *ostr_base, *oaddr_base, *skip, *skip2, *seen;
    int layouts;
    if (!PyArg_ParseTuple(args, "y*KKKOy*y*y*y*OOOOOp", &info, &die_offset, &end, &cu, &capsule, &bstr, &blstr,
                          &bstroff, &baddr, &ostr_base, &oaddr_base, &skip, &skip2, &seen, &layouts))
        return NULL;
    PyObject *result = NULL, *subs = NULL, *edges = NULL, *cu_tuple = NULL;
    PyObject *new_str_base = NULL, *new_addr_base = NULL;
    Frame *stack = NULL;
    Cand *cands = NULL;
    Py_ssize_t sp = 0, scap = 0, ncand = 0, ccap = 0;
    Types ty = {0};
    Reader r;
    if (!PyAnySet_Check(skip) || !PyAnySet_Check(skip2) || !PyAnySet_Check(seen)) {
        PyErr_SetString(PyExc_TypeError, "skip and seen must be sets");
        goto done;
    }
    r.t = PyCapsule_GetPointer(capsule, "kernsurf._dwarfwalk.Table");
    if (r.t == NULL)
        goto done;
    r.d = info.buf;
    r.n = (uint64_t)info.len;
    r.str = bstr.buf, r.nstr = (uint64_t)bstr.len;
    r.lstr = blstr.buf, r.nlstr = (uint64_t)blstr.len;
    r.stroff = bstroff.buf, r.nstroff = (uint64_t)bstroff.len;
    r.addr = baddr.buf, r.naddr = (uint64_t)baddr.len;
    r.cu = cu;
    if (get_u64(ostr_base, &r.str_base) < 0 || get_u64(oaddr_base, &r.addr_base) < 0)
        goto done;
    subs = PyList_New(0);
    edges = PyList_New(0);
    if (subs == NULL || edges == NULL)
        goto done;
    const Table *t = r.t;
    const int types = t->types;
    const uint8_t *d = r.d;
    uint64_t p = die_offset;
    int have_top = 0, abstract = 0;
    uint64_t top = 0;
    Py_ssize_t top_depth = -1;
    Val v[MAX_SLOTS];
    while (p < end) {
        uint64_t die = p, code;
        if (p >= r.n) {
            PyErr_SetString(Unsupported, "DIE past the section");
            goto done;
        }
        if (d[p] < 0x80)
            code = d[p++];
        else if (read_uleb(d, r.n, &p, &code) < 0)
            goto done;
        if (code == 0) {
            if (sp == 0)
                break;
            sp--;
            if (sp == top_depth)
                have_top = 0, top_depth = -1, abstract = 0;
            continue;
        }
        if (code >= t->ncodes || !t->codes[code].present) {
            PyErr_SetString(Unsupported, "unknown abbreviation code");
            goto done;
        }
        const Abbrev *a = &t->codes[code];
        int cat = a->cat;
        for (int i = 0; i < NSLOTS[cat]; i++)
            v[i].kind = V_NONE;
        for (uint32_t i = 0; i < a->nops; i++) {
            const Op *op = &a->ops[i];
            if (op->kind == OP_READ) {
                if (read_value(&r, &p, op, &v[op->slot]) < 0)
                    goto done;
            } else if (op->kind == OP_SKIP_FIXED) {
                p += op->size;
            } else if (skip_ops(&r, &p, op) < 0) {
                goto done;
            }
        }
        if (p > r.n) {
            PyErr_SetString(Unsupported, "DIE past the section");
            goto done;
        }
        int descend = a->children;
        Py_ssize_t cand = -1, rec = -1;
        uint32_t tag = a->tag;
        if (cat == CAT_SKIP) {
            if (a->children && tag != TAG_lexical_block && jump(&v[SKIP_SIBLING], &p, &descend) < 0)
                goto done;
        } else if (tag == TAG_formal_parameter) {
            if (sp > 0) {
                Frame *f = &stack[sp - 1];
                if (f->tag == TAG_subprogram) {
                    if (f->cand >= 0 && cands[f->cand].params != NULL) {
                        Cand *c = &cands[f->cand];
                        Val *pt = &v[PARAM_TYPE];
                        if (types) {
                            if (check_ref(pt) < 0 || add_root(&ty, pt) < 0)
                                goto done;
                            PyObject *name = val_obj(&v[PARAM_NAME]), *ref = name ? ref_obj(pt) : NULL;
                            PyObject *item = ref ? Py_BuildValue("(NN)", name, ref) : NULL;
                            if (item == NULL) {
                                Py_XDECREF(name);
                                goto done;
                            }
                            if (PyList_Append(c->params, item) < 0) {
                                Py_DECREF(item);
                                goto done;
                            }
                            Py_DECREF(item);
                        } else if (pt->kind == V_INT && pt->u != 0) {
                            if (pt->neg) {
                                PyErr_SetString(Unsupported, "negative type reference");
                                goto done;
                            }
                            Py_CLEAR(c->params); /* a type this walk does not describe: no prototype */
                        } else {
                            PyObject *name = val_obj(&v[PARAM_NAME]);
                            PyObject *item = name ? Py_BuildValue("(Ni)", name, 0) : NULL;
                            if (item == NULL || PyList_Append(c->params, item) < 0) {
                                Py_XDECREF(item);
                                goto done;
                            }
                            Py_DECREF(item);
                        }
                    }
                } else if (f->tag == TAG_subroutine_type) {
                    if (!types || f->rec < 0) {
                        PyErr_SetString(Unsupported, "parameter of a subroutine type");
                        goto done;
                    }
                    if (check_ref(&v[PARAM_TYPE]) < 0 || add_kid(&ty, f->rec, K_PARAM, &v[PARAM_TYPE], NULL) < 0)
                        goto done;
                }
            }
        } else if (tag == TAG_subprogram) {
            int concrete = v[SUB_LOW_PC].kind != V_NONE || v[SUB_RANGES].kind != V_NONE;
            Val *origin = truthy(&v[SUB_ORIGIN]) ? &v[SUB_ORIGIN] : &v[SUB_SPEC];
            PyObject *name = val_obj(&v[SUB_NAME]);
            PyObject *item = name ? PyTuple_New(10) : NULL;
            if (item == NULL) {
                Py_XDECREF(name);
                goto done;
            }
            PyTuple_SET_ITEM(item, 0, PyLong_FromUnsignedLongLong(die));
            PyTuple_SET_ITEM(item, 1, name);
            PyTuple_SET_ITEM(item, 2, PyBool_FromLong(truthy(&v[SUB_EXTERNAL])));
            PyTuple_SET_ITEM(item, 3, val_obj(&v[SUB_DECL_FILE]));
            PyTuple_SET_ITEM(item, 4, val_obj(&v[SUB_DECL_LINE]));
            PyTuple_SET_ITEM(item, 5, val_obj(&v[SUB_INLINE]));
            PyTuple_SET_ITEM(item, 6, val_obj(&v[SUB_LOW_PC]));
            PyTuple_SET_ITEM(item, 7, PyBool_FromLong(truthy(&v[SUB_DECLARATION])));
            PyTuple_SET_ITEM(item, 8, val_obj(origin));
            PyTuple_SET_ITEM(item, 9, PyBool_FromLong(concrete));
            for (int i = 0; i < 10; i++)
                if (PyTuple_GET_ITEM(item, i) == NULL) {
                    Py_DECREF(item);
                    goto done;
                }
            if (PyList_Append(subs, item) < 0) {
                Py_DECREF(item);
                goto done;
            }
            Py_DECREF(item);
            int declaration = truthy(&v[SUB_DECLARATION]);
            if (origin->kind == V_NONE && v[SUB_NAME].kind != V_NONE &&
                (truthy(&v[SUB_PROTOTYPED]) || !declaration)) {
                Val *rt = &v[SUB_TYPE];
                if (rt->kind == V_INT && rt->neg) {
                    PyErr_SetString(Unsupported, "negative type reference");
                    goto done;
                }
                int skip_it = skipped(skip, skip2, seen, PyTuple_GET_ITEM(item, 1), declaration);
                if (skip_it < 0)
                    goto done;
                if (skip_it)
                    goto candidate_done;
                if (types && (check_ref(rt) < 0 || add_root(&ty, rt) < 0))
                    goto done;
                if (ncand == ccap) {
                    Py_ssize_t nc = ccap ? ccap * 2 : 64;
                    Cand *grown = PyMem_Realloc(cands, nc * sizeof(Cand));
                    if (grown == NULL) {
                        PyErr_NoMemory();
                        goto done;
                    }
                    cands = grown, ccap = nc;
                }
                Cand *c = &cands[ncand];
                c->die = die;
                c->is_decl = declaration;
                c->rtype = rt->kind == V_INT ? rt->u : 0;
                c->name = PyTuple_GET_ITEM(item, 1);
                Py_INCREF(c->name);
                /* Without types, a return type this walk does not describe: no prototype (as in Python). */
                c->params = !types && rt->kind == V_INT && rt->u != 0 ? NULL : PyList_New(0);
                cand = ncand++;
                if (c->params == NULL && PyErr_Occurred())
                    goto done;
            }
        candidate_done:
            if (a->children && !have_top && (concrete || v[SUB_INLINE].kind != V_NONE)) {
                have_top = 1, top = die, top_depth = sp, abstract = !concrete;
            }
        } else if (tag == TAG_inlined_subroutine) {
            if (have_top && v[INL_ORIGIN].kind != V_NONE && !abstract) {
                Val *at = v[INL_LOW_PC].kind != V_NONE ? &v[INL_LOW_PC] : &v[INL_ENTRY_PC];
                PyObject *item = Py_BuildValue("(NKON)", val_obj(&v[INL_ORIGIN]), (unsigned long long)top,
                                               s_inline, val_obj(at));
                if (item == NULL || PyList_Append(edges, item) < 0) {
                    Py_XDECREF(item);
                    goto done;
                }
                Py_DECREF(item);
            }
        } else if (cat == CAT_CALL) {
            Val *origin = v[CALL_CALL_ORIGIN].kind != V_NONE ? &v[CALL_CALL_ORIGIN] : &v[CALL_ORIGIN];
            if (have_top && origin->kind != V_NONE) {
                PyObject *item =
                    Py_BuildValue("(NKOO)", val_obj(origin), (unsigned long long)top, s_direct, Py_None);
                if (item == NULL || PyList_Append(edges, item) < 0) {
                    Py_XDECREF(item);
                    goto done;
                }
                Py_DECREF(item);
            }
            if (a->children && jump(&v[CALL_SIBLING], &p, &descend) < 0)
                goto done;
        } else if (cat == CAT_UNSPEC) {
            if (sp > 0) {
                Frame *f = &stack[sp - 1];
                if (f->tag == TAG_subprogram && f->cand >= 0) {
                    Cand *c = &cands[f->cand];
                    if (c->params != NULL && PyList_Append(c->params, Py_None) < 0)
                        goto done;
                } else if (f->tag == TAG_subroutine_type) {
                    if (!types || f->rec < 0) {
                        PyErr_SetString(Unsupported, "unspecified parameters of a subroutine type");
                        goto done;
                    }
                    if (add_kid(&ty, f->rec, K_VARIADIC, NULL, NULL) < 0)
                        goto done;
                }
            }
        } else if (cat == CAT_TYPE) {
            if (tag == TAG_subrange_type) {
                Frame *f = sp > 0 ? &stack[sp - 1] : NULL;
                if (f && f->tag == TAG_array_type && add_kid(&ty, f->rec, K_DIM, &v[TYPE_COUNT], &v[TYPE_UPPER]) < 0)
                    goto done;
            } else {
                if (check_ref(&v[TYPE_TYPE]) < 0 || grow((void **)&ty.recs, &ty.crecs, ty.nrecs, sizeof(TypeRec)) < 0)
                    goto done;
                TypeRec *tr = &ty.recs[ty.nrecs];
                tr->die = die, tr->tag = tag, tr->mark = 0, tr->first = tr->last = -1;
                tr->name = v[TYPE_NAME], tr->ref = v[TYPE_TYPE], tr->size = v[TYPE_BYTE_SIZE];
                tr->enc = v[TYPE_ENCODING], tr->count = v[TYPE_COUNT], tr->decl = v[TYPE_DECLARATION];
                rec = ty.nrecs++;
                int children_wanted = tag == TAG_array_type || tag == TAG_subroutine_type ||
                                      (layouts && (tag == TAG_structure_type || tag == TAG_union_type ||
                                                   tag == TAG_enumeration_type));
                if (a->children && !children_wanted && jump(&v[TYPE_SIBLING], &p, &descend) < 0)
                    goto done;
            }
        } else if (cat == CAT_MEMBER && layouts && sp > 0 && stack[sp - 1].rec >= 0) {
            if (add_member(&ty, stack[sp - 1].rec, v, t->big) < 0)
                goto done;
        } else if (cat == CAT_ENUMR && layouts && sp > 0 && stack[sp - 1].rec >= 0) {
            if (add_kid(&ty, stack[sp - 1].rec, K_ENUMR, &v[ENUMR_NAME], &v[ENUMR_VALUE]) < 0)
                goto done;
        } else if (cat == CAT_CU && cu_tuple == NULL) {
            cu_tuple = Py_BuildValue("(NNNNN)", val_obj(&v[CU_NAME]), val_obj(&v[CU_COMP_DIR]),
                                     val_obj(&v[CU_PRODUCER]), val_obj(&v[CU_LANGUAGE]),
                                     val_obj(&v[CU_STMT_LIST]));
            if (cu_tuple == NULL)
                goto done;
            if (set_base(&v[CU_STR_BASE], &r.str_base, &new_str_base) < 0 ||
                set_base(&v[CU_ADDR_BASE], &r.addr_base, &new_addr_base) < 0)
                goto done;
            if (v[CU_LANGUAGE].kind == V_INT && !v[CU_LANGUAGE].neg && v[CU_LANGUAGE].u == LANG_RUST)
                break; /* dwarf.walk_unit returns the unit's facts alone */
        }
        if (p <= die) {
            PyErr_SetString(Unsupported, "sibling points backwards");
            goto done;
        }
        if (descend) {
            if (sp == scap) {
                Py_ssize_t nc = scap ? scap * 2 : 64;
                Frame *grown = PyMem_Realloc(stack, nc * sizeof(Frame));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                stack = grown, scap = nc;
            }
            stack[sp].tag = tag;
            stack[sp].die = die;
            stack[sp].cand = cand;
            stack[sp].rec = rec;
            sp++;
        }
    }
    if (cu_tuple == NULL) {
        PyErr_SetString(Unsupported, "no compile-unit DIE");
        goto done;
    }
    {
        PyObject *sub_info = PyDict_New(), *params = PyDict_New();
        if (sub_info == NULL || params == NULL) {
            Py_XDECREF(sub_info);
            Py_XDECREF(params);
            goto done;
        }
        for (Py_ssize_t i = 0; i < ncand; i++) {
            Cand *c = &cands[i];
            if (c->params == NULL)
                continue;
            PyObject *key = PyLong_FromUnsignedLongLong(c->die);
            PyObject *entry =
                Py_BuildValue("(OKO)", c->name, (unsigned long long)c->rtype, c->is_decl ? Py_True : Py_False);
            if (key == NULL || entry == NULL || PyDict_SetItem(sub_info, key, entry) < 0 ||
                PyDict_SetItem(params, key, c->params) < 0) {
                Py_XDECREF(key);
                Py_XDECREF(entry);
                Py_DECREF(sub_info);
                Py_DECREF(params);
                goto done;
            }
            Py_DECREF(key);
            Py_DECREF(entry);
        }
        PyObject *raw = NULL;
        if (layouts)
            for (Py_ssize_t i = 0; i < ty.nrecs; i++)
                ty.recs[i].mark = 1;
        if (types && ((!layouts && mark_reachable(&ty) < 0) || (raw = raw_types(&ty)) == NULL)) {
            Py_DECREF(sub_info);
            Py_DECREF(params);
            goto done;
        }
        result = Py_BuildValue("(OOONNOON)", cu_tuple, subs, edges, sub_info, params,
                               new_str_base ? new_str_base : Py_None, new_addr_base ? new_addr_base : Py_None,
                               raw ? raw : Py_NewRef(Py_None));
    }
done:
    for (Py_ssize_t i = 0; i < ncand; i++) {
        Py_XDECREF(cands[i].name);
        Py_XDECREF(cands[i].params);
    }
    PyMem_Free(cands);
    PyMem_Free(stack);
    PyMem_Free(ty.recs);
    PyMem_Free(ty.kids);
    PyMem_Free(ty.roots);
    Py_XDECREF(subs);
    Py_XDECREF(edges);
    Py_XDECREF(cu_tuple);
    Py_XDECREF(new_str_base);
    Py_XDECREF(new_addr_base);
    PyBuffer_Release(&info);
    PyBuffer_Release(&bstr);
    PyBuffer_Release(&blstr);
    PyBuffer_Release(&bstroff);
    PyBuffer_Release(&baddr);
    return result;
}

/* ---- line table file names (dwarf_lines.file_names) ------------------------------ */

typedef struct {
    const uint8_t *d;
    uint64_t n, p;
    int big;
} LReader;

static inline int lr_u(LReader *r, unsigned size, uint64_t *out) {
    if (r->p > r->n || r->n - r->p < size)
        FAIL("line table past the section");
    *out = get_uint(r->d + r->p, size, r->big);
    r->p += size;
    return 0;
}

static inline int lr_skip(LReader *r, uint64_t size) {
    if (r->p > r->n || r->n - r->p < size)
        FAIL("line table past the section");
    r->p += size;
    return 0;
}

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

/* A DWARF 5 entry list: (path, directory index) per entry; paths of string forms only. */
static PyObject *v5_entries(LReader *r, unsigned osz, const Reader *strs) {
    uint64_t nformats, count, content[16], form[16], x;
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
    if (out == NULL)
        return NULL;
    for (uint64_t e = 0; e < count; e++) {
        PyObject *path = NULL;
        uint64_t index = 0;
        for (uint64_t i = 0; i < nformats; i++) {
            PyObject *str = NULL;
            int is_int = 0, ok = 0;
            switch (form[i]) {
            case 0x08: str = lr_cstr(r); ok = str != NULL; break;
            case 0x1F: ok = lr_u(r, osz, &x) == 0 && (str = section_str(strs->lstr, strs->nlstr, x)) != NULL; break;
            case 0x0E: ok = lr_u(r, osz, &x) == 0 && (str = section_str(strs->str, strs->nstr, x)) != NULL; break;
            case 0x0F: ok = read_uleb(r->d, r->n, &r->p, &x) == 0; is_int = 1; break;
            case 0x0B: ok = lr_u(r, 1, &x) == 0; is_int = 1; break;
            case 0x05: ok = lr_u(r, 2, &x) == 0; is_int = 1; break;
            case 0x06: ok = lr_u(r, 4, &x) == 0; is_int = 1; break;
            case 0x07: ok = lr_u(r, 8, &x) == 0; is_int = 1; break;
            case 0x1E: ok = lr_skip(r, 16) == 0; break;
            case 0x09: ok = read_uleb(r->d, r->n, &r->p, &x) == 0 && lr_skip(r, x) == 0; break;
            default: PyErr_SetString(Unsupported, "line table form"); break;
            }
            if (!ok) {
                Py_XDECREF(path);
                Py_DECREF(out);
                return NULL;
            }
            if (content[i] == 1) { /* DW_LNCT_path: str(value) in Python; only strings here */
                if (str == NULL) {
                    PyErr_SetString(Unsupported, "a path that is not a string");
                    Py_XDECREF(path);
                    Py_DECREF(out);
                    return NULL;
                }
                Py_XSETREF(path, str);
                str = NULL;
            } else if (content[i] == 2 && is_int) {
                index = x;
            }
            Py_XDECREF(str);
        }
        if (path == NULL) {
            PyErr_SetString(Unsupported, "an entry without a path");
            Py_DECREF(out);
            return NULL;
        }
        PyObject *item = Py_BuildValue("(NK)", path, (unsigned long long)index);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
    }
    return out;
}

/* file_names(line, offset, big_endian, comp_dir, debug_str, line_str) -> list of paths,
 * as dwarf_lines.file_names; Unsupported for anything it would not read the same way. */
static PyObject *py_file_names(PyObject *self, PyObject *args) {
    Py_buffer line, bstr, blstr;
    unsigned long long offset;
    int big;
    PyObject *comp_dir, *result = NULL, *dirs = NULL, *files = NULL, *entries = NULL;
    if (!PyArg_ParseTuple(args, "y*KpOy*y*", &line, &offset, &big, &comp_dir, &bstr, &blstr))
        return NULL;
    if (comp_dir != Py_None && !PyUnicode_Check(comp_dir)) {
        PyErr_SetString(Unsupported, "comp_dir");
        goto done;
    }
    LReader r = {line.buf, (uint64_t)line.len, offset, big};
    Reader strs = {0};
    strs.str = bstr.buf, strs.nstr = (uint64_t)bstr.len;
    strs.lstr = blstr.buf, strs.nlstr = (uint64_t)blstr.len;
    uint64_t length, version, x, opcode_base;
    unsigned osz = 4;
    if (lr_u(&r, 4, &length) < 0)
        goto done;
    if (length == 0xFFFFFFFF) {
        if (lr_u(&r, 8, &x) < 0)
            goto done;
        osz = 8;
    }
    if (lr_u(&r, 2, &version) < 0)
        goto done;
    if (version >= 5 && lr_skip(&r, 2) < 0)
        goto done;
    if (lr_u(&r, osz, &x) < 0 || lr_skip(&r, version >= 4 ? 4 : 3) < 0 || lr_skip(&r, 1) < 0 ||
        lr_u(&r, 1, &opcode_base) < 0)
        goto done;
    if (opcode_base == 0) {
        PyErr_SetString(Unsupported, "opcode_base 0");
        goto done;
    }
    if (lr_skip(&r, opcode_base - 1) < 0)
        goto done;
    files = PyList_New(0);
    if (files == NULL)
        goto done;
    if (version >= 5) {
        PyObject *dentries = v5_entries(&r, osz, &strs);
        if (dentries == NULL)
            goto done;
        entries = v5_entries(&r, osz, &strs);
        if (entries == NULL) {
            Py_DECREF(dentries);
            goto done;
        }
        Py_ssize_t ndirs = PyList_GET_SIZE(dentries);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(entries); i++) {
            PyObject *e = PyList_GET_ITEM(entries, i);
            unsigned long long index = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(e, 1));
            PyObject *directory = index < (unsigned long long)ndirs
                                      ? PyTuple_GET_ITEM(PyList_GET_ITEM(dentries, index), 0)
                                      : s_empty;
            PyObject *path = line_join(directory, PyTuple_GET_ITEM(e, 0), comp_dir);
            if (path == NULL || PyList_Append(files, path) < 0) {
                Py_XDECREF(path);
                Py_DECREF(dentries);
                goto done;
            }
            Py_DECREF(path);
        }
        Py_DECREF(dentries);
        result = Py_NewRef(files);
        goto done;
    }
    dirs = PyList_New(0);
    if (dirs == NULL || PyList_Append(dirs, comp_dir == Py_None ? s_empty : comp_dir) < 0)
        goto done;
    for (;;) {
        if (r.p >= r.n) {
            PyErr_SetString(Unsupported, "line table past the section");
            goto done;
        }
        if (r.d[r.p] == 0)
            break;
        PyObject *dir = lr_cstr(&r);
        if (dir == NULL || PyList_Append(dirs, dir) < 0) {
            Py_XDECREF(dir);
            goto done;
        }
        Py_DECREF(dir);
    }
    r.p++;
    for (;;) {
        if (r.p >= r.n) {
            PyErr_SetString(Unsupported, "line table past the section");
            goto done;
        }
        if (r.d[r.p] == 0)
            break;
        PyObject *name = lr_cstr(&r);
        uint64_t index;
        if (name == NULL)
            goto done;
        if (read_uleb(r.d, r.n, &r.p, &index) < 0 || read_uleb(r.d, r.n, &r.p, &x) < 0 ||
            read_uleb(r.d, r.n, &r.p, &x) < 0) {
            Py_DECREF(name);
            goto done;
        }
        PyObject *directory =
            index < (uint64_t)PyList_GET_SIZE(dirs) ? PyList_GET_ITEM(dirs, index) : s_empty;
        PyObject *path = line_join(directory, name, comp_dir);
        Py_DECREF(name);
        if (path == NULL || PyList_Append(files, path) < 0) {
            Py_XDECREF(path);
            goto done;
        }
        Py_DECREF(path);
    }
    /* files[:1] + files: DWARF 2-4 count from 1 */
    result = PyList_GetSlice(files, 0, 1);
    if (result != NULL) {
        PyObject *all = PySequence_Concat(result, files);
        Py_SETREF(result, all);
    }
done:
    Py_XDECREF(dirs);
    Py_XDECREF(files);
    Py_XDECREF(entries);
    PyBuffer_Release(&line);
    PyBuffer_Release(&bstr);
    PyBuffer_Release(&blstr);
    return result;
}

static PyMethodDef methods[] = {
    {"configure", py_configure, METH_VARARGS, "dwarf_forms' rules (see dwarf.py)."},
    {"parse_table", py_parse_table, METH_VARARGS, "A compiled abbreviation table (see dwarf.py)."},
    {"file_names", py_file_names, METH_VARARGS, "A line table's file names (see dwarf.py)."},
    {"walk", py_walk, METH_VARARGS, "Walk one unit (see dwarf.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_dwarfwalk", "C DIE walk for ingest.readers.dwarf.", -1, methods,
};

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
