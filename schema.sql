-- kernsurf database schema: the single source of truth, applied by ingest/db.py.
-- Repeated strings live in lookup tables (names, paths, type_texts); layouts
-- and prototypes are shared by every build that has the same one.

CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS builds (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,            -- display label, e.g. 6.1.0-56-amd64
    build_id TEXT NOT NULL UNIQUE,        -- ELF GNU build-id (hex); sha256 when the image has none
    distro TEXT,
    version TEXT,                         -- package version, e.g. 6.1.192-2
    release TEXT,                         -- kernel release, e.g. 6.1.0-56-amd64
    version_sort TEXT,                    -- release with zero-padded numbers: sorts like versions
    arch TEXT,
    flavor TEXT,
    compiler TEXT,
    dwarf_version INTEGER,
    has_dwarf INTEGER NOT NULL,
    has_btf INTEGER NOT NULL,
    has_symtab INTEGER NOT NULL,
    lacks TEXT,                           -- facts this input cannot provide, e.g. "inlining, callers"
    file_size INTEGER,
    sha256 TEXT,
    source_path TEXT,
    ingest_seconds REAL,
    ingested_at TEXT,
    n_functions INTEGER,
    n_instances INTEGER,
    n_callers INTEGER,
    n_symbols INTEGER,
    n_structs INTEGER,
    n_tracepoints INTEGER,                -- NULL in all five: ingested before these were recorded
    n_syscalls INTEGER,
    n_lsm_hooks INTEGER,
    n_kfuncs INTEGER,
    n_config INTEGER,                     -- 0: the package gave no config
    n_variables INTEGER,                  -- NULL: variables not recorded (no symbol table, or ingested before)
    n_modules INTEGER,                    -- modules read (unreadable ones included); NULL: modules not read
    n_typedefs INTEGER,                   -- NULL: typedefs not recorded (ingested before they were)
    -- The counts of functions and types the build_summary view shows, stored by db.store_counts
    -- (counting them at every read took 1 s with modules). NULL in n_full_inline: the view counts.
    n_full_inline INTEGER,
    n_selective_inline INTEGER,
    n_declared_only INTEGER,
    n_transformed INTEGER,
    n_collisions INTEGER,
    n_duplicates INTEGER,
    n_kprobe_ok INTEGER,
    n_fentry_ok INTEGER,
    n_notrace INTEGER,
    n_module_functions INTEGER,
    n_struct_types INTEGER,
    n_union_types INTEGER,
    n_enum_types INTEGER
);

-- Which source gave each kind of fact of a build (docs/concepts.md#fact-sources): one row
-- per kind of ingest.origins.facts.FACTS; source NULL: unknown for this build.
CREATE TABLE IF NOT EXISTS build_sources (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    fact TEXT NOT NULL,                   -- types, symbols, config, trace_events, ftrace, kprobe_blacklist, ...
    source TEXT,                          -- e.g. /sys/kernel/btf/vmlinux, vmlinux DWARF; NULL: unknown
    PRIMARY KEY (build_id, fact)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS names (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS paths (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS type_texts (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE
);

-- Loadable modules of a build (docs/concepts.md#modules): every .ko of its package, read or not.
CREATE TABLE IF NOT EXISTS modules (
    id INTEGER PRIMARY KEY,
    build_id INTEGER NOT NULL REFERENCES builds(id),
    name_id INTEGER NOT NULL REFERENCES names(id),  -- .modinfo name= (ext4, md_mod)
    path TEXT NOT NULL,                   -- below lib/modules/<release>/kernel/, e.g. fs/ext4/ext4.ko
    license TEXT,
    description TEXT,
    depends TEXT,                         -- .modinfo depends=: modules it needs loaded first, comma-separated
    vermagic TEXT,
    size INTEGER,                         -- bytes its allocated sections span once loaded
    error TEXT,                           -- NULL: read; else why it is unreadable (nothing else of it is stored)
    UNIQUE (build_id, name_id)
);
CREATE INDEX IF NOT EXISTS modules_name ON modules(name_id);

-- ---------------------------------------------------------------------------
-- Interned facts (docs/storage.md). An instance, a caller edge, a symbol and a
-- per-name function status are each stored once, in <kind>_facts, however many
-- builds have it; <kind>_members records which builds have which facts as
-- bitmaps: a row (build_id, block, bits) says the build has fact block * 64 + k
-- for each bit k set in bits. "The facts of build B" and "the builds having fact
-- F" are then both index searches:
--   SELECT build_id FROM instance_members WHERE block = :fact >> 6 AND (bits >> (:fact & 63)) & 1
-- Values that change with every build (addresses, declaration lines) are stored
-- with the fact as its first build had them; <kind>_values holds only the builds
-- whose value differs. The views instances, callers, symbols and functions join
-- the three back into one row per build and fact, with the columns of old.
-- A module is named by module_name_id (names.id, NULL: vmlinux); the views add the
-- build's modules.id. Facts match by content, all columns but id and the values,
-- so two databases of disjoint builds merge by a union of facts and members.

CREATE TABLE IF NOT EXISTS instance_facts (
    id INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names(id),
    external INTEGER NOT NULL,
    decl_path_id INTEGER REFERENCES paths(id),
    cu_path_id INTEGER REFERENCES paths(id),
    inline INTEGER,                       -- DW_AT_inline: 0..3, NULL when absent
    defined INTEGER NOT NULL,             -- 0: declarations only
    module_name_id INTEGER REFERENCES names(id),  -- NULL: in vmlinux
    occurrence INTEGER NOT NULL,          -- 0; k for the k-th instance of a build with the same columns above
    decl_line INTEGER,                    -- values of its first build (instance_values: the others')
    address INTEGER
);
CREATE INDEX IF NOT EXISTS instance_facts_name ON instance_facts(name_id, cu_path_id);
-- `kernsurf check` asks whether a source file is built into a build (docs/concepts.md#check-verdicts-and-reason-codes).
CREATE INDEX IF NOT EXISTS instance_facts_cu ON instance_facts(cu_path_id);
CREATE TABLE IF NOT EXISTS instance_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS instance_members_block ON instance_members(block, build_id);
-- The build whose values (addresses, declaration lines) a build's value runs are deltas to:
-- the first stored build of its line (kernel series, arch, flavor; docs/storage.md#value-bases).
-- A build without a row here has deltas to the values stored with the facts; a base has no base.
CREATE TABLE IF NOT EXISTS value_bases (
    build_id INTEGER PRIMARY KEY REFERENCES builds(id),
    base_id INTEGER NOT NULL REFERENCES builds(id)
);
CREATE INDEX IF NOT EXISTS value_bases_base ON value_bases(base_id);
-- A build's declaration lines and addresses: its value base's (value_bases) plus the delta of
-- the build's run holding the fact's id (addresses move in blocks from one build to the next).
CREATE TABLE IF NOT EXISTS instance_decl_line_runs (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    first_id INTEGER NOT NULL,            -- from this fact id up to the build's next run
    delta INTEGER NOT NULL,               -- the build's value minus its base's (0 before the first run)
    PRIMARY KEY (build_id, first_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS instance_address_runs (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    first_id INTEGER NOT NULL,
    delta INTEGER NOT NULL,
    PRIMARY KEY (build_id, first_id)
) WITHOUT ROWID;
-- The build's values where no delta says them (NULL on one side only).
CREATE TABLE IF NOT EXISTS instance_values (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    instance_id INTEGER NOT NULL REFERENCES instance_facts(id),
    decl_line INTEGER,
    address INTEGER,
    PRIMARY KEY (build_id, instance_id)
) WITHOUT ROWID;

-- Caller edges with site counts (docs/concepts.md#callers); caller is the concrete function containing the sites.
CREATE TABLE IF NOT EXISTS call_facts (
    id INTEGER PRIMARY KEY,
    callee_id INTEGER NOT NULL REFERENCES instance_facts(id),
    caller_id INTEGER NOT NULL REFERENCES instance_facts(id),
    inline INTEGER NOT NULL CHECK (inline IN (0, 1)),  -- 0: a direct call (kind direct), 1: an inlined copy
    sites INTEGER NOT NULL,
    UNIQUE (callee_id, caller_id, inline, sites)
);
CREATE TABLE IF NOT EXISTS call_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS call_members_block ON call_members(block, build_id);

-- STT_FUNC symbols (docs/concepts.md#symbols-and-transformations).
CREATE TABLE IF NOT EXISTS symbol_facts (
    id INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names(id),
    stem_id INTEGER NOT NULL REFERENCES names(id),
    suffixes TEXT,                        -- space-separated, e.g. "isra cold"; NULL when none
    size INTEGER NOT NULL,                -- its first build's (symbol_size_runs: the others')
    binding TEXT NOT NULL,
    section TEXT,
    -- Attachability (docs/concepts.md#attachability); NULL when the build predates these columns.
    ftrace INTEGER,                       -- 1: in __mcount_loc / patchable entries; 0: notrace
    kprobe_blocked TEXT,                  -- why kprobes refuse it (NOKPROBE_SYMBOL, noinstr, ...); NULL: allowed
    module_name_id INTEGER REFERENCES names(id),  -- NULL: in vmlinux
    occurrence INTEGER NOT NULL,          -- 0; k for the k-th symbol of a build with the same columns above
    address INTEGER NOT NULL              -- its first build's (symbol_values: the others')
);
CREATE INDEX IF NOT EXISTS symbol_facts_stem ON symbol_facts(stem_id, name_id, size);
CREATE TABLE IF NOT EXISTS symbol_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS symbol_members_block ON symbol_members(block, build_id);
CREATE TABLE IF NOT EXISTS symbol_size_runs (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    first_id INTEGER NOT NULL,            -- from this fact id up to the build's next run
    delta INTEGER NOT NULL,               -- the build's size minus its base's
    PRIMARY KEY (build_id, first_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS symbol_address_runs (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    first_id INTEGER NOT NULL,            -- from this fact id up to the build's next run
    delta INTEGER NOT NULL,               -- the build's address minus its base's
    PRIMARY KEY (build_id, first_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS symbol_values (  -- where no delta says them (rare: a symbol always has both)
    build_id INTEGER NOT NULL REFERENCES builds(id),
    symbol_id INTEGER NOT NULL REFERENCES symbol_facts(id),
    size INTEGER NOT NULL,
    address INTEGER NOT NULL,
    PRIMARY KEY (build_id, symbol_id)
) WITHOUT ROWID;

-- Prototypes, shared across builds (docs/concepts.md#prototypes).
CREATE TABLE IF NOT EXISTS prototypes (
    id INTEGER PRIMARY KEY,
    digest INTEGER NOT NULL UNIQUE,       -- first 8 bytes of sha1(text [+ canonical texts if they differ])
    text TEXT NOT NULL,
    return_type_id INTEGER NOT NULL REFERENCES type_texts(id),
    variadic INTEGER NOT NULL,
    canon_return_id INTEGER REFERENCES type_texts(id)  -- return type, typedefs resolved; NULL: not recorded
);

CREATE TABLE IF NOT EXISTS prototype_params (
    prototype_id INTEGER NOT NULL REFERENCES prototypes(id),
    position INTEGER NOT NULL,
    name TEXT,
    type_id INTEGER NOT NULL REFERENCES type_texts(id),
    canon_id INTEGER REFERENCES type_texts(id),  -- type with typedefs resolved; NULL: not recorded
    PRIMARY KEY (prototype_id, position)
) WITHOUT ROWID;

-- Per build x function name status (docs/concepts.md#function-status): what pages and diffs read.
CREATE TABLE IF NOT EXISTS function_facts (
    id INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names(id),
    collision TEXT,                       -- NULL: no DWARF instance in this build
    inline TEXT,                          -- No / Selective / Full / Declared only; NULL unknown
    suffixes TEXT,                        -- transformation suffixes, space-separated
    n_instances INTEGER NOT NULL,
    n_symbols INTEGER NOT NULL,
    prototype_id INTEGER REFERENCES prototypes(id),
    prototype_source TEXT,                -- btf or dwarf
    -- Attachability (docs/concepts.md#attachability) from the symbol(s) named exactly like the function:
    -- NULL when it has no such symbol or the build predates these columns.
    ftrace INTEGER,                       -- 1: in __mcount_loc / patchable entries; 0: notrace
    kprobe_blocked TEXT,                  -- why kprobes refuse it; NULL: allowed
    btf_func INTEGER,                     -- 1: the build's BTF has a FUNC of this name (fentry/fexit need it)
    -- Where it lives when vmlinux has no instance or symbol of it: the first module (by path)
    -- that has; NULL: in vmlinux, or modules not read. Attachability then is that module's.
    module_name_id INTEGER REFERENCES names(id)
);
CREATE INDEX IF NOT EXISTS function_facts_name ON function_facts(name_id);
-- A module's functions (module_list, /module pages): only the rows that live in a module.
CREATE INDEX IF NOT EXISTS function_facts_module ON function_facts(module_name_id) WHERE module_name_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS function_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS function_members_block ON function_members(block, build_id);

-- The interned facts, one row per build and fact, with the columns the tables of
-- these names had (id: the fact's id, the same in every build that has it).
CREATE VIEW IF NOT EXISTS instances AS
SELECT f.id, m.build_id, f.name_id, f.external, f.decl_path_id,
       CASE WHEN v.instance_id IS NULL THEN f.decl_line + coalesce((SELECT r.delta FROM instance_decl_line_runs r WHERE r.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)
            + coalesce((SELECT r.delta FROM value_bases vb JOIN instance_decl_line_runs r ON r.build_id = vb.base_id WHERE vb.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)
            ELSE v.decl_line END AS decl_line,
       f.cu_path_id, f.inline,
       CASE WHEN v.instance_id IS NULL THEN f.address + coalesce((SELECT r.delta FROM instance_address_runs r WHERE r.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)
            + coalesce((SELECT r.delta FROM value_bases vb JOIN instance_address_runs r ON r.build_id = vb.base_id WHERE vb.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)
            ELSE v.address END AS address,
       f.defined, md.id AS module_id, f.module_name_id
FROM instance_members m JOIN instance_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1
LEFT JOIN instance_values v ON v.build_id = m.build_id AND v.instance_id = f.id
LEFT JOIN modules md ON md.build_id = m.build_id AND md.name_id = f.module_name_id;

CREATE VIEW IF NOT EXISTS callers AS
SELECT c.callee_id, c.caller_id, CASE WHEN c.inline THEN 'inline' ELSE 'direct' END AS kind, c.sites,
       m.build_id, c.id AS fact_id
FROM call_members m JOIN call_facts c
  ON c.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = c.id >> 6 AND (m.bits >> (c.id & 63)) & 1;

CREATE VIEW IF NOT EXISTS symbols AS
SELECT f.id, m.build_id, f.name_id, f.stem_id, f.suffixes,
       CASE WHEN v.symbol_id IS NULL THEN f.address + coalesce((SELECT r.delta FROM symbol_address_runs r WHERE r.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)
            + coalesce((SELECT r.delta FROM value_bases vb JOIN symbol_address_runs r ON r.build_id = vb.base_id WHERE vb.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)
            ELSE v.address END AS address,
       CASE WHEN v.symbol_id IS NULL THEN f.size + coalesce((SELECT r.delta FROM symbol_size_runs r WHERE r.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)
            + coalesce((SELECT r.delta FROM value_bases vb JOIN symbol_size_runs r ON r.build_id = vb.base_id WHERE vb.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)
            ELSE v.size END AS size,
       f.binding, f.section, f.ftrace, f.kprobe_blocked, md.id AS module_id, f.module_name_id
FROM symbol_members m JOIN symbol_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1
LEFT JOIN symbol_values v ON v.build_id = m.build_id AND v.symbol_id = f.id
LEFT JOIN modules md ON md.build_id = m.build_id AND md.name_id = f.module_name_id;

CREATE VIEW IF NOT EXISTS functions AS
SELECT f.name_id, m.build_id, f.collision, f.inline, f.suffixes, f.n_instances, f.n_symbols,
       f.prototype_id, f.prototype_source, f.ftrace, f.kprobe_blocked, f.btf_func,
       md.id AS module_id, f.module_name_id, f.id AS fact_id
FROM function_members m JOIN function_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1
LEFT JOIN modules md ON md.build_id = m.build_id AND md.name_id = f.module_name_id;

-- Struct, union and enum layouts, shared across builds (docs/concepts.md#types).
CREATE TABLE IF NOT EXISTS layouts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('struct', 'union', 'enum')),
    size INTEGER NOT NULL,
    digest TEXT NOT NULL UNIQUE
);

-- Members, flattened: anonymous struct/union containers are rows with a NULL
-- name, and the members inside them point at the container through parent.
CREATE TABLE IF NOT EXISTS struct_fields (
    layout_id INTEGER NOT NULL REFERENCES layouts(id),
    position INTEGER NOT NULL,
    name TEXT,
    type_id INTEGER NOT NULL REFERENCES type_texts(id),
    decl_id INTEGER NOT NULL REFERENCES type_texts(id),
    bit_offset INTEGER NOT NULL,          -- absolute within the top-level aggregate
    bit_size INTEGER NOT NULL,            -- bitfield width, 0 otherwise
    byte_size INTEGER,
    parent INTEGER,                       -- position of the anonymous container, NULL at top level
    canon_id INTEGER REFERENCES type_texts(id),  -- type with typedefs resolved; NULL: not recorded
    -- What the member's type is below typedefs and qualifiers (int, ptr, func_ptr,
    -- struct, union, enum, float, "array int", ...); NULL: not recorded.
    type_kind TEXT,
    -- The layout of the struct/union/enum it holds (typedefs, qualifiers and arrays
    -- stripped; anonymous aggregates are layouts too); NULL for other types.
    type_layout_id INTEGER REFERENCES layouts(id),
    PRIMARY KEY (layout_id, position)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS enum_values (
    layout_id INTEGER NOT NULL REFERENCES layouts(id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (layout_id, position)
) WITHOUT ROWID;

-- Which named types each build has; a name may map to several distinct layouts.
-- Interned like instances (docs/storage.md): type_facts, type_members, the view types.
CREATE TABLE IF NOT EXISTS type_facts (
    id INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names(id),
    layout_id INTEGER NOT NULL REFERENCES layouts(id),
    kind TEXT NOT NULL,
    module_name_id INTEGER REFERENCES names(id)  -- NULL: vmlinux has the name; else the module defining it
);
CREATE INDEX IF NOT EXISTS type_facts_name ON type_facts(name_id, layout_id);
CREATE TABLE IF NOT EXISTS type_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS type_members_block ON type_members(block, build_id);

CREATE VIEW IF NOT EXISTS types AS
SELECT f.name_id, m.build_id, f.layout_id, f.kind, md.id AS module_id, f.module_name_id, f.id AS fact_id
FROM type_members m JOIN type_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1
LEFT JOIN modules md ON md.build_id = m.build_id AND md.name_id = f.module_name_id;

-- Named typedefs per build (docs/concepts.md#typedefs), vmlinux's; builds.n_typedefs NULL: not recorded.
CREATE TABLE IF NOT EXISTS typedef_facts (
    id INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names(id),
    target_id INTEGER NOT NULL REFERENCES type_texts(id),  -- the type it names: atomic64_t, struct {...}
    resolved_id INTEGER NOT NULL REFERENCES type_texts(id),  -- typedefs resolved: struct {...}, long long int
    kind TEXT NOT NULL,                   -- what the target is: int, ptr, func_ptr, struct, union, enum, array int, ...
    size INTEGER,                         -- sizeof; NULL: unknown (void, function, flexible array)
    -- The struct/union/enum it resolves to (anonymous ones too); NULL for other kinds.
    layout_id INTEGER REFERENCES layouts(id)
);
CREATE INDEX IF NOT EXISTS typedef_facts_name ON typedef_facts(name_id);
CREATE TABLE IF NOT EXISTS typedef_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS typedef_members_block ON typedef_members(block, build_id);
CREATE VIEW IF NOT EXISTS typedefs AS
SELECT f.name_id, m.build_id, f.target_id, f.resolved_id, f.kind, f.size, f.layout_id, f.id AS fact_id
FROM typedef_members m JOIN typedef_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1;

-- ---------------------------------------------------------------------------
-- Other dependency surfaces (docs/concepts.md#surfaces), one row per item and build:
-- interned facts (docs/storage.md) behind views of the tables' names.

-- Long strings shared across builds: tracepoint print formats.
CREATE TABLE IF NOT EXISTS texts (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE
);

-- Tracepoints: trace events (tp/, tracepoint/) and raw tracepoints (raw_tp/, tp_btf/).
CREATE TABLE IF NOT EXISTS tracepoint_facts (
    id INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names(id),
    system TEXT,                          -- trace system (tracefs directory); NULL: raw tracepoint only
    class_id INTEGER REFERENCES names(id),          -- event class (template)
    struct_layout_id INTEGER REFERENCES layouts(id), -- trace_event_raw_<class>, NULL when absent
    func_id INTEGER REFERENCES names(id),           -- trace_event_raw_event_<class>, NULL when absent
    print_fmt_id INTEGER REFERENCES texts(id),
    raw_prototype_id INTEGER REFERENCES type_texts(id),  -- from btf_trace_<name>; NULL: no BTF typedef
    -- Per-syscall events (syscalls:sys_enter_openat), NULL for the others. Their struct is
    -- syscall_trace_enter/_exit and their print_fmt is NULL: the kernel builds it at boot.
    syscall_id INTEGER REFERENCES names(id),        -- the syscall (syscalls.name_id), e.g. openat
    fields_id INTEGER REFERENCES texts(id),         -- "int __syscall_nr; const char * filename; ..."
    module_name_id INTEGER REFERENCES names(id)        -- NULL: in vmlinux; else the module defining it
);
CREATE INDEX IF NOT EXISTS tracepoint_facts_name ON tracepoint_facts(name_id);
CREATE TABLE IF NOT EXISTS tracepoint_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tracepoint_members_block ON tracepoint_members(block, build_id);
CREATE VIEW IF NOT EXISTS tracepoints AS
SELECT f.name_id, m.build_id, f.system, f.class_id, f.struct_layout_id, f.func_id, f.print_fmt_id, f.raw_prototype_id, f.syscall_id, f.fields_id, md.id AS module_id, f.module_name_id, f.id AS fact_id
FROM tracepoint_members m JOIN tracepoint_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1
LEFT JOIN modules md ON md.build_id = m.build_id AND md.name_id = f.module_name_id;

-- Kernel variables (ksym externs): STT_OBJECT symbols (names that are C identifiers) and BTF VARs,
-- one row per symbol (file-scope statics share names). builds.n_variables NULL: not recorded.
-- Interned like symbols (docs/storage.md): variable_facts, variable_members, the view variables.
CREATE TABLE IF NOT EXISTS variable_facts (
    id INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names(id),
    size INTEGER,
    binding TEXT,                         -- STB_GLOBAL, STB_LOCAL, STB_WEAK
    section TEXT,                         -- .data, .bss, .data..percpu, ...
    per_cpu INTEGER NOT NULL,             -- 1: in .data..percpu (ELF section or BTF DATASEC)
    btf_var INTEGER NOT NULL,             -- 1: a BTF VAR of this name (typed __ksym externs need it)
    occurrence INTEGER NOT NULL,          -- 0; k for the k-th variable of a build with the same columns above
    address INTEGER                       -- its first build's; NULL: a BTF VAR no symbol names (BTF-only input)
);
CREATE INDEX IF NOT EXISTS variable_facts_name ON variable_facts(name_id);
CREATE TABLE IF NOT EXISTS variable_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS variable_members_block ON variable_members(block, build_id);
CREATE TABLE IF NOT EXISTS variable_address_runs (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    first_id INTEGER NOT NULL,            -- from this fact id up to the build's next run
    delta INTEGER NOT NULL,               -- the build's address minus its base's
    PRIMARY KEY (build_id, first_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS variable_values (  -- where no delta says it (NULL on one side only)
    build_id INTEGER NOT NULL REFERENCES builds(id),
    variable_id INTEGER NOT NULL REFERENCES variable_facts(id),
    address INTEGER,
    PRIMARY KEY (build_id, variable_id)
) WITHOUT ROWID;

CREATE VIEW IF NOT EXISTS variables AS
SELECT f.name_id, m.build_id,
       CASE WHEN v.variable_id IS NULL THEN f.address + coalesce((SELECT r.delta FROM variable_address_runs r
            WHERE r.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)
            + coalesce((SELECT r.delta FROM value_bases vb JOIN variable_address_runs r ON r.build_id = vb.base_id WHERE vb.build_id = m.build_id AND r.first_id <= f.id ORDER BY r.first_id DESC LIMIT 1), 0)
            ELSE v.address END AS address,
       f.size, f.binding, f.section, f.per_cpu, f.btf_var, f.id AS fact_id
FROM variable_members m JOIN variable_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1
LEFT JOIN variable_values v ON v.build_id = m.build_id AND v.variable_id = f.id;

-- sys_call_table slots (native and compat tables), ni_syscall slots left out.
CREATE TABLE IF NOT EXISTS syscall_facts (
    id INTEGER PRIMARY KEY,
    abi TEXT NOT NULL,                    -- native, compat, x32, ...
    number INTEGER NOT NULL,
    name_id INTEGER NOT NULL REFERENCES names(id),    -- normalised: read
    symbol_id INTEGER NOT NULL REFERENCES names(id),  -- __x64_sys_read
    table_id INTEGER NOT NULL REFERENCES names(id)    -- sys_call_table
);
CREATE INDEX IF NOT EXISTS syscall_facts_name ON syscall_facts(name_id);
CREATE TABLE IF NOT EXISTS syscall_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS syscall_members_block ON syscall_members(block, build_id);
CREATE VIEW IF NOT EXISTS syscalls AS
SELECT m.build_id, f.abi, f.number, f.name_id, f.symbol_id, f.table_id, f.id AS fact_id
FROM syscall_members m JOIN syscall_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1;

CREATE TABLE IF NOT EXISTS lsm_hook_facts (
    id INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names(id),
    prototype_id INTEGER REFERENCES type_texts(id),  -- the hook's type in union security_list_options
    bpf_lsm INTEGER NOT NULL              -- 1: bpf_lsm_<name> has a BTF FUNC (lsm/<name> attaches)
);
CREATE INDEX IF NOT EXISTS lsm_hook_facts_name ON lsm_hook_facts(name_id);
CREATE TABLE IF NOT EXISTS lsm_hook_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lsm_hook_members_block ON lsm_hook_members(block, build_id);
CREATE VIEW IF NOT EXISTS lsm_hooks AS
SELECT f.name_id, m.build_id, f.prototype_id, f.bpf_lsm, f.id AS fact_id
FROM lsm_hook_members m JOIN lsm_hook_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1;

CREATE TABLE IF NOT EXISTS kfunc_facts (
    id INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names(id),
    source TEXT NOT NULL,                 -- decl_tag (BTF bpf_kfunc tag) or btf_id_set8
    sets TEXT,                            -- BTF_ID set8 names, space-separated
    flags INTEGER,                        -- KF_* flags from the set8 entries
    module_name_id INTEGER REFERENCES names(id)   -- NULL: vmlinux; else the module registering it
);
CREATE INDEX IF NOT EXISTS kfunc_facts_name ON kfunc_facts(name_id);
CREATE TABLE IF NOT EXISTS kfunc_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kfunc_members_block ON kfunc_members(block, build_id);
CREATE VIEW IF NOT EXISTS kfuncs AS
SELECT f.name_id, m.build_id, f.source, f.sets, f.flags, md.id AS module_id, f.module_name_id, f.id AS fact_id
FROM kfunc_members m JOIN kfunc_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1
LEFT JOIN modules md ON md.build_id = m.build_id AND md.name_id = f.module_name_id;

-- Kernel config from the build's package: value y, m, n (is not set), a number or a "string".
CREATE TABLE IF NOT EXISTS config_facts (
    id INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names(id),
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS config_facts_name ON config_facts(name_id);
CREATE TABLE IF NOT EXISTS config_members (
    build_id INTEGER NOT NULL REFERENCES builds(id),
    block INTEGER NOT NULL,               -- facts block * 64 .. block * 64 + 63
    bits INTEGER NOT NULL,                -- bit k set: the build has fact block * 64 + k
    PRIMARY KEY (build_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS config_members_block ON config_members(block, build_id);
CREATE VIEW IF NOT EXISTS config_options AS
SELECT f.name_id, m.build_id, f.value, f.id AS fact_id
FROM config_members m JOIN config_facts f
  ON f.id BETWEEN m.block * 64 AND m.block * 64 + 63 AND m.block = f.id >> 6 AND (m.bits >> (f.id & 63)) & 1;

-- Groups of builds (manifests): an ordered series diffed consecutively, or a
-- baseline with variants each diffed against it.
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,            -- e.g. Regular, Arch, Flavor
    kind TEXT NOT NULL CHECK (kind IN ('series', 'variants')),
    position INTEGER NOT NULL DEFAULT 0   -- display order of the groups
);

CREATE TABLE IF NOT EXISTS group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id),
    position INTEGER NOT NULL,            -- order in the series; 0 is the baseline of variants
    build_id INTEGER NOT NULL REFERENCES builds(id),
    label TEXT NOT NULL,                  -- display label, e.g. 6.1, arm64, cloud
    PRIMARY KEY (group_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS group_members_build ON group_members(build_id);

-- Views for the common joins.
-- kprobe / fentry: "✓" or "✗ (why)"; NULL when the build predates attachability
-- (builds.n_tracepoints IS NULL) or has no symbol table.
CREATE VIEW IF NOT EXISTS function_status AS
SELECT build, name, collision, inline, suffixes, n_instances, n_symbols, prototype, prototype_source,
       ftrace, kprobe_blocked, btf_func,
       CASE WHEN unrecorded THEN NULL WHEN btf_only AND n_symbols > 0 THEN NULL
            WHEN no_symbol IS NOT NULL THEN '✗ (' || no_symbol || ')'
            WHEN kprobe_blocked IS NOT NULL THEN '✗ (' || kprobe_blocked || ')' ELSE '✓' END AS kprobe,
       CASE WHEN unrecorded THEN NULL WHEN NOT has_btf THEN '✗ (build has no BTF)'
            WHEN btf_only AND n_symbols > 0 AND NOT btf_func THEN '✗ (no BTF FUNC)'
            WHEN btf_only AND n_symbols > 0 THEN NULL
            WHEN no_symbol IS NOT NULL THEN '✗ (' || no_symbol || ')'
            WHEN kprobe_blocked = 'init text' THEN '✗ (init text)'
            WHEN NOT btf_func THEN '✗ (no BTF FUNC)' WHEN NOT ftrace THEN '✗ (notrace)' ELSE '✓' END AS fentry,
       build_id, name_id
FROM (SELECT b.name AS build, n.name AS name, f.collision, f.inline, f.suffixes,
             f.n_instances, f.n_symbols, p.text AS prototype, f.prototype_source,
             f.ftrace, f.kprobe_blocked, f.btf_func, b.has_btf,
             b.n_tracepoints IS NULL OR NOT b.has_symtab AS unrecorded,
             -- a BTF blob with kallsyms: no ftrace records, no kprobe blacklist (NULL, not ✗)
             NOT b.has_dwarf AND f.ftrace IS NULL AS btf_only,
             CASE WHEN f.ftrace IS NOT NULL THEN NULL
                  WHEN f.n_symbols > 0 THEN 'only ' || coalesce(f.suffixes, 'renamed') || ' copies'
                  WHEN f.inline = 'Full' THEN 'fully inlined' ELSE 'no symbol' END AS no_symbol,
             f.build_id, f.name_id
      FROM functions f JOIN names n ON n.id = f.name_id JOIN builds b ON b.id = f.build_id
      LEFT JOIN prototypes p ON p.id = f.prototype_id);

CREATE VIEW IF NOT EXISTS instance_list AS
SELECT b.name AS build, n.name AS name, i.external, dp.path AS decl_file, i.decl_line,
       cp.path AS cu, i.inline, CASE WHEN i.address IS NOT NULL THEN printf('%x', i.address) END AS address, i.defined, i.id, i.build_id
FROM instances i JOIN names n ON n.id = i.name_id JOIN builds b ON b.id = i.build_id
LEFT JOIN paths dp ON dp.id = i.decl_path_id LEFT JOIN paths cp ON cp.id = i.cu_path_id;

CREATE VIEW IF NOT EXISTS caller_list AS
SELECT b.name AS build, cn.name AS callee, rn.name AS caller, rp.path AS caller_cu,
       c.kind, c.sites, c.callee_id, c.caller_id, c.build_id
FROM callers c
JOIN instance_facts ce ON ce.id = c.callee_id JOIN names cn ON cn.id = ce.name_id
JOIN instance_facts r ON r.id = c.caller_id JOIN names rn ON rn.id = r.name_id
LEFT JOIN paths rp ON rp.id = r.cu_path_id
JOIN builds b ON b.id = c.build_id;

CREATE VIEW IF NOT EXISTS symbol_list AS
SELECT b.name AS build, n.name AS name, sn.name AS stem, s.suffixes,
       printf('%x', s.address) AS address, s.size, s.binding, s.section, s.build_id
FROM symbols s JOIN names n ON n.id = s.name_id JOIN names sn ON sn.id = s.stem_id
JOIN builds b ON b.id = s.build_id;

CREATE VIEW IF NOT EXISTS struct_layouts AS
SELECT b.name AS build, n.name AS name, t.kind, l.size, sf.position, sf.name AS field,
       tt.text AS type, dt.text AS decl, sf.bit_offset / 8 AS byte_offset, sf.bit_offset,
       sf.bit_size, sf.byte_size, sf.parent, t.layout_id, t.build_id
FROM types t JOIN names n ON n.id = t.name_id JOIN builds b ON b.id = t.build_id
JOIN layouts l ON l.id = t.layout_id
JOIN struct_fields sf ON sf.layout_id = t.layout_id
JOIN type_texts tt ON tt.id = sf.type_id JOIN type_texts dt ON dt.id = sf.decl_id;

-- The other surfaces, one row per item and build, names joined (pages, canned queries, ad-hoc SQL).
CREATE VIEW IF NOT EXISTS tracepoint_list AS
SELECT b.name AS build, n.name AS name, t.system, c.name AS class,
       CASE WHEN t.struct_layout_id IS NULL THEN NULL
            WHEN t.syscall_id IS NOT NULL THEN 'syscall_trace_' || substr(c.name, 9)
            ELSE 'trace_event_raw_' || c.name END AS struct,
       l.size AS struct_size, f.name AS func, x.text AS print_fmt, r.text AS raw_prototype,
       t.struct_layout_id, t.build_id, t.name_id, sc.name AS syscall, fx.text AS fields,
       (SELECT mn.name FROM modules m JOIN names mn ON mn.id = m.name_id WHERE m.id = t.module_id) AS module
FROM tracepoints t JOIN names n ON n.id = t.name_id JOIN builds b ON b.id = t.build_id
LEFT JOIN names c ON c.id = t.class_id LEFT JOIN names f ON f.id = t.func_id
LEFT JOIN layouts l ON l.id = t.struct_layout_id LEFT JOIN texts x ON x.id = t.print_fmt_id
LEFT JOIN type_texts r ON r.id = t.raw_prototype_id
LEFT JOIN names sc ON sc.id = t.syscall_id LEFT JOIN texts fx ON fx.id = t.fields_id;

-- Kernel variables (ksym targets); address printed in hex like symbol_list.
CREATE VIEW IF NOT EXISTS variable_list AS
SELECT b.name AS build, n.name AS name,
       CASE WHEN v.address IS NOT NULL THEN printf('%x', v.address) END AS address, v.size, v.binding,
       v.section, v.per_cpu, v.btf_var, v.build_id, v.name_id
FROM variables v JOIN names n ON n.id = v.name_id JOIN builds b ON b.id = v.build_id;

CREATE VIEW IF NOT EXISTS syscall_list AS
SELECT b.name AS build, n.name AS name, s.abi, s.number, y.name AS symbol, tb.name AS table_name,
       s.build_id, s.name_id
FROM syscalls s JOIN names n ON n.id = s.name_id JOIN builds b ON b.id = s.build_id
JOIN names y ON y.id = s.symbol_id JOIN names tb ON tb.id = s.table_id;

-- security_prototype: the security_<hook>() wrapper callers use (its BTF or DWARF prototype).
CREATE VIEW IF NOT EXISTS lsm_hook_list AS
SELECT b.name AS build, n.name AS name, p.text AS hook_type, h.bpf_lsm,
       (SELECT sp.text FROM functions sf JOIN prototypes sp ON sp.id = sf.prototype_id
        WHERE sf.build_id = h.build_id
          AND sf.name_id = (SELECT id FROM names WHERE name = 'security_' || n.name)) AS security_prototype,
       h.build_id, h.name_id
FROM lsm_hooks h JOIN names n ON n.id = h.name_id JOIN builds b ON b.id = h.build_id
LEFT JOIN type_texts p ON p.id = h.prototype_id;

CREATE VIEW IF NOT EXISTS kfunc_list AS
SELECT b.name AS build, n.name AS name, k.source, k.sets, printf('0x%x', k.flags) AS flags,
       (SELECT p.text FROM functions f JOIN prototypes p ON p.id = f.prototype_id
        WHERE f.build_id = k.build_id AND f.name_id = k.name_id) AS prototype,
       k.build_id, k.name_id,
       (SELECT mn.name FROM modules m JOIN names mn ON mn.id = m.name_id WHERE m.id = k.module_id) AS module
FROM kfuncs k JOIN names n ON n.id = k.name_id JOIN builds b ON b.id = k.build_id;

-- Modules per build (docs/concepts.md#modules) with their function and trace event counts.
CREATE VIEW IF NOT EXISTS module_list AS
SELECT b.name AS build, n.name AS name, m.path, m.license, m.description, m.depends, m.vermagic, m.size,
       m.error,
       (SELECT count(*) FROM functions f WHERE f.build_id = m.build_id AND f.module_name_id = m.name_id)
           AS functions,
       (SELECT count(*) FROM tracepoints t WHERE t.build_id = m.build_id AND t.module_name_id = m.name_id
                                            AND t.system IS NOT NULL) AS trace_events,
       m.id AS module_id, m.build_id, m.name_id
FROM modules m JOIN names n ON n.id = m.name_id JOIN builds b ON b.id = m.build_id;

CREATE VIEW IF NOT EXISTS config_list AS
SELECT b.name AS build, n.name AS name, c.value, c.build_id, c.name_id
FROM config_options c JOIN names n ON n.id = c.name_id JOIN builds b ON b.id = c.build_id;

-- Per build counts: the /builds page and the builds_summary canned query both read this.
-- kprobe_ok / fentry_ok / notrace: functions kprobes accept, with a BTF FUNC in the ftrace
-- table, outside the ftrace table; surfaces_recorded: 0 when the build predates the surfaces.
CREATE VIEW IF NOT EXISTS build_summary AS
SELECT b.id AS build_id, b.name AS build, b.release, b.arch, b.flavor, b.has_dwarf, b.has_btf,
       coalesce(f.functions, 0) AS functions, coalesce(f.full_inline, 0) AS full_inline,
       coalesce(f.selective_inline, 0) AS selective_inline, coalesce(f.declared_only, 0) AS declared_only,
       coalesce(f.transformed, 0) AS transformed, coalesce(f.collisions, 0) AS collisions,
       coalesce(f.duplicates, 0) AS duplicates, coalesce(t.structs, 0) AS structs,
       coalesce(t.unions, 0) AS unions, coalesce(t.enums, 0) AS enums, b.n_symbols AS symbols,
       f.kprobe_ok, f.fentry_ok, f.notrace, b.n_tracepoints IS NOT NULL AS surfaces_recorded,
       (SELECT count(*) FROM tracepoints x WHERE x.build_id = b.id AND x.system IS NOT NULL) AS trace_events,
       (SELECT count(*) FROM tracepoints x WHERE x.build_id = b.id AND x.raw_prototype_id IS NOT NULL)
           AS raw_tracepoints,
       (SELECT count(DISTINCT x.name_id) FROM syscalls x WHERE x.build_id = b.id AND x.abi = 'native') AS syscalls,
       (SELECT count(DISTINCT x.name_id) FROM syscalls x WHERE x.build_id = b.id AND x.abi != 'native')
           AS compat_syscalls,
       (SELECT count(*) FROM lsm_hooks x WHERE x.build_id = b.id) AS lsm_hooks,
       (SELECT count(*) FROM kfuncs x WHERE x.build_id = b.id) AS kfuncs,
       (SELECT count(*) FROM config_options x WHERE x.build_id = b.id) AS config_options,
       b.version_sort, b.n_variables AS variables,
       b.n_modules AS modules,  -- NULL: modules not read
       CASE WHEN b.n_modules IS NOT NULL THEN coalesce(f.module_functions, 0) END AS module_functions
FROM builds b
-- f and t: the counts builds stores (db.store_counts), else counted here.
LEFT JOIN (SELECT id AS build_id, n_functions AS functions, n_full_inline AS full_inline,
                  n_selective_inline AS selective_inline, n_declared_only AS declared_only,
                  n_transformed AS transformed, n_collisions AS collisions, n_duplicates AS duplicates,
                  n_kprobe_ok AS kprobe_ok, n_fentry_ok AS fentry_ok, n_notrace AS notrace,
                  n_module_functions AS module_functions
           FROM builds WHERE n_full_inline IS NOT NULL
           UNION ALL
           SELECT build_id, count(*) AS functions, sum(inline = 'Full') AS full_inline,
                  sum(inline = 'Selective') AS selective_inline, sum(inline = 'Declared only') AS declared_only,
                  sum(suffixes IS NOT NULL) AS transformed,
                  sum(collision IN ('Static-Static Collision', 'Static-Global Collision')) AS collisions,
                  sum(collision = 'Static Duplication') AS duplicates,
                  sum(ftrace IS NOT NULL AND kprobe_blocked IS NULL) AS kprobe_ok,
                  sum(ftrace = 1 AND btf_func = 1) AS fentry_ok, sum(ftrace = 0) AS notrace,
                  sum(module_name_id IS NOT NULL) AS module_functions
           FROM functions WHERE build_id IN (SELECT id FROM builds WHERE n_full_inline IS NULL)
           GROUP BY build_id) f ON f.build_id = b.id
LEFT JOIN (SELECT id AS build_id, n_struct_types AS structs, n_union_types AS unions, n_enum_types AS enums
           FROM builds WHERE n_full_inline IS NOT NULL
           UNION ALL
           SELECT build_id, sum(kind = 'struct') AS structs, sum(kind = 'union') AS unions,
                  sum(kind = 'enum') AS enums
           FROM types WHERE build_id IN (SELECT id FROM builds WHERE n_full_inline IS NULL)
           GROUP BY build_id) t ON t.build_id = b.id;

-- Per name: in how many builds it is a function or each other surface item, and its type
-- kinds; the /search page and the search_names canned query both read this.
CREATE VIEW IF NOT EXISTS name_kinds AS
SELECT n.id AS name_id, n.name,
       (SELECT count(*) FROM functions f WHERE f.name_id = n.id) AS function_builds,
       (SELECT group_concat(kind) FROM (SELECT DISTINCT t.kind FROM types t WHERE t.name_id = n.id
                                         UNION SELECT 'typedef' FROM typedefs d WHERE d.name_id = n.id))
           AS type_kinds,
       (SELECT count(*) FROM tracepoints x WHERE x.name_id = n.id) AS tracepoint_builds,
       (SELECT count(DISTINCT x.build_id) FROM syscalls x WHERE x.name_id = n.id) AS syscall_builds,
       (SELECT count(*) FROM lsm_hooks x WHERE x.name_id = n.id) AS lsm_hook_builds,
       (SELECT count(*) FROM kfuncs x WHERE x.name_id = n.id) AS kfunc_builds,
       (SELECT count(*) FROM config_options x WHERE x.name_id = n.id) AS config_builds,
       (SELECT count(DISTINCT x.build_id) FROM variables x WHERE x.name_id = n.id) AS variable_builds,
       (SELECT count(*) FROM modules x WHERE x.name_id = n.id) AS module_builds
FROM names n;

-- ---------------------------------------------------------------------------
-- Name search (/search), filled by ingest.db.build_search_index().
-- Trigram tokens over the names of functions and types: a whole identifier
-- (vfs_read) and any substring of 3+ characters match, case-insensitively.
-- External content: rows are names.id, the text is read back from names.
CREATE VIRTUAL TABLE IF NOT EXISTS name_search USING fts5(
    name, content = 'names', content_rowid = 'id', tokenize = 'trigram'
);

-- ---------------------------------------------------------------------------
-- Differences between builds (docs/concepts.md#differences), filled by ingest/changes/diff.py.
-- One compared pair of builds: A is the older build of a series or the
-- baseline of variants. Group pairs are kept current by
-- diff.compute_group_diffs(); `kernsurf diff --store` adds ad-hoc pairs.
-- Rows go away with either build (a replaced build is diffed again) and with
-- the group that defines them.
CREATE TABLE IF NOT EXISTS diff_pairs (
    id INTEGER PRIMARY KEY,
    group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,  -- NULL: ad hoc (kernsurf diff --store)
    build_a INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    build_b INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    stamp TEXT NOT NULL,                  -- diff algorithm version + both builds' identity: stale when it differs
    computed_at TEXT NOT NULL,
    seconds REAL,
    n_changes INTEGER NOT NULL,
    UNIQUE (build_a, build_b)
);
CREATE INDEX IF NOT EXISTS diff_pairs_build_b ON diff_pairs(build_b);

-- The vocabulary of changes, in display order (diff.py uses exactly these; a test checks).
-- INSERT OR IGNORE: opening a database never rewrites it; a changed row needs a migration.
-- A stored change names its kind by position.
CREATE TABLE IF NOT EXISTS change_kinds (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE,
    items TEXT NOT NULL,                  -- item kinds it applies to
    description TEXT NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO change_kinds (name, position, items, description) VALUES
    ('added', 1, 'function struct union enum typedef tracepoint syscall lsm_hook kfunc config module', 'only in build B; new: size, or the prototype (in change_list), a module''s path, a typedef''s target'),
    ('removed', 2, 'function struct union enum typedef tracepoint syscall lsm_hook kfunc config module', 'only in build A; old: size, or the prototype (in change_list), a module''s path, a typedef''s target'),
    ('param added', 10, 'function', 'detail: parameter (... for variadic); new: its type'),
    ('param removed', 11, 'function', 'detail: parameter; old: its type'),
    ('param renamed', 12, 'function', 'same position and type, new name; detail: position'),
    ('param type changed', 13, 'function', 'different type, also underneath typedefs'),
    ('param typedef renamed', 14, 'function', 'printed type differs, identical once typedefs are resolved'),
    ('param qualifier changed', 15, 'function', 'the type differs only in const/volatile'),
    ('param tag renamed', 16, 'function', 'struct/union/enum renamed, same layout (dma_buf_map -> iosys_map)'),
    ('params reordered', 17, 'function', 'relative order of the surviving parameters; old/new: names in order'),
    ('return type changed', 20, 'function', 'different return type'),
    ('return typedef renamed', 21, 'function', 'return type identical once typedefs are resolved'),
    ('return qualifier changed', 22, 'function', 'return type differs only in const/volatile'),
    ('return tag renamed', 23, 'function', 'returned struct/union/enum renamed, same layout'),
    ('prototype added', 24, 'function', 'no prototype in A (symbol only); new: prototype'),
    ('prototype removed', 25, 'function', 'no prototype in B; old: prototype'),
    ('inline changed', 30, 'function', 'No / Selective / Full inline (docs/concepts.md#function-status)'),
    ('declared only changed', 31, 'function', 'became or stopped being declared only (no definition in the image)'),
    ('became transformed', 32, 'function', 'new: suffixes of its symbols (isra, constprop, ...)'),
    ('stopped being transformed', 33, 'function', 'old: suffixes it had'),
    ('transformation changed', 34, 'function', 'different suffixes'),
    ('collision changed', 35, 'function', 'Unique / Duplicate / Collision type (docs/concepts.md#function-status)'),
    ('symbol lost', 36, 'function', 'no symbol in B (cannot be attached to); old/new: symbol counts'),
    ('symbol gained', 37, 'function', 'a symbol in B, none in A'),
    ('size changed', 40, 'struct union enum', 'old/new: bytes'),
    ('field added', 41, 'struct union', 'detail: field (a.b inside a named member, {a} for an anonymous container); new: type'),
    ('field removed', 42, 'struct union', 'old: type'),
    ('field type changed', 43, 'struct union', 'different type (bitfields as type:bits)'),
    ('field typedef renamed', 44, 'struct union', 'identical once typedefs are resolved'),
    ('field qualifier changed', 45, 'struct union', 'differs only in const/volatile'),
    ('field tag renamed', 46, 'struct union', 'struct/union/enum renamed, same layout'),
    ('field offset changed', 47, 'struct union', 'old/new: byte offset (byte:bit when not byte aligned)'),
    ('value added', 50, 'enum', 'detail: enumerator; new: value'),
    ('value removed', 51, 'enum', 'old: value'),
    ('value changed', 52, 'enum', 'old/new: values'),
    ('typedef target changed', 55, 'typedef', 'old/new: the type it names (detail: layout when an anonymous target''s members changed)'),
    ('attachability lost', 38, 'function', 'detail: kprobe or fentry; old: ✓, new: ✗ (why)'),
    ('attachability gained', 39, 'function', 'detail: kprobe or fentry; old: ✗ (why), new: ✓'),
    ('event class changed', 60, 'tracepoint', 'the event moved to another class (template)'),
    ('event struct changed', 61, 'tracepoint', 'trace_event_raw_<class> layout differs; detail: the struct'),
    ('event function changed', 62, 'tracepoint', 'trace_event_raw_event_<class> appeared, vanished or was renamed'),
    ('format changed', 63, 'tracepoint', 'print format differs'),
    ('raw prototype changed', 64, 'tracepoint', 'btf_trace_<name> arguments differ (raw_tp/tp_btf programs)'),
    ('syscall number changed', 70, 'syscall', 'detail: abi; old/new: numbers'),
    ('syscall symbol changed', 71, 'syscall', 'detail: abi; the entry symbol differs'),
    ('hook prototype changed', 80, 'lsm_hook', 'old/new: the hook''s type'),
    ('bpf_lsm changed', 81, 'lsm_hook', 'bpf_lsm_<hook> appeared or vanished (lsm/<hook> attachability)'),
    ('kfunc flags changed', 90, 'kfunc', 'old/new: KF_* flags'),
    ('kfunc sets changed', 91, 'kfunc', 'old/new: the BTF_ID set8s naming it'),
    ('config changed', 95, 'config', 'old/new: value (y, m, n, number, "string")'),
    ('moved into module', 100, 'function struct union enum tracepoint kfunc', 'now lives in a loadable module; old: vmlinux or the module before, new: the module'),
    ('moved into vmlinux', 101, 'function struct union enum tracepoint kfunc', 'now built into vmlinux; old: the module it lived in, new: vmlinux');

-- The kinds of item a change is about, by code (a new kind is a new row).
CREATE TABLE IF NOT EXISTS item_kinds (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
INSERT OR IGNORE INTO item_kinds (id, name) VALUES
    (1, 'function'), (2, 'struct'), (3, 'union'), (4, 'enum'), (5, 'typedef'), (6, 'tracepoint'),
    (7, 'syscall'), (8, 'lsm_hook'), (9, 'kfunc'), (10, 'config'), (11, 'module');

-- The changes of a pair are stored in two compact tables (docs/storage.md#stored-diffs),
-- read through the view `changes`; no carry-forward to later pairs.
-- Changes that are a name and nothing else (detail, old and new NULL: a function
-- added or removed, half of all changes) as 64-bit bitmaps over name ids: the pair
-- has that change of the item named block * 64 + k for each bit k set.
CREATE TABLE IF NOT EXISTS change_sets (
    pair_id INTEGER NOT NULL REFERENCES diff_pairs(id) ON DELETE CASCADE,
    item_kind_id INTEGER NOT NULL REFERENCES item_kinds(id),
    change_kind_id INTEGER NOT NULL REFERENCES change_kinds(position),
    block INTEGER NOT NULL,
    bits INTEGER NOT NULL,
    PRIMARY KEY (pair_id, item_kind_id, change_kind_id, block)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS change_sets_block ON change_sets(block);
-- The other changes, one row each.
CREATE TABLE IF NOT EXISTS change_details (
    pair_id INTEGER NOT NULL REFERENCES diff_pairs(id) ON DELETE CASCADE,
    item_kind_id INTEGER NOT NULL REFERENCES item_kinds(id),
    change_kind_id INTEGER NOT NULL REFERENCES change_kinds(position),
    name_id INTEGER NOT NULL REFERENCES names(id),
    seq INTEGER NOT NULL,                 -- 0, 1, ...: the order of the name's changes in the pair, as stored
    detail TEXT,                          -- the parameter, field or enumerator concerned
    old TEXT,
    new TEXT,
    -- The changes of one name in a pair are together: "the changes of X" is a search per pair
    -- (queries name the pairs: pair_id IN (SELECT id FROM diff_pairs)), with no index of its own.
    PRIMARY KEY (pair_id, name_id, seq)
) WITHOUT ROWID;

-- One row per change of one pair, as diff.py computed them.
CREATE VIEW IF NOT EXISTS changes AS
SELECT s.pair_id, i.name AS item_kind, n.id AS name_id, k.name AS change_kind,
       NULL AS detail, NULL AS old, NULL AS new
FROM change_sets s JOIN names n
  ON n.id BETWEEN s.block * 64 AND s.block * 64 + 63 AND s.block = n.id >> 6 AND (s.bits >> (n.id & 63)) & 1
JOIN item_kinds i ON i.id = s.item_kind_id JOIN change_kinds k ON k.position = s.change_kind_id
UNION ALL
SELECT d.pair_id, i.name, d.name_id, k.name, d.detail, d.old, d.new
FROM change_details d JOIN item_kinds i ON i.id = d.item_kind_id JOIN change_kinds k ON k.position = d.change_kind_id;

-- Inserting into `changes` stores the row where it belongs (ingest/db/changes.py
-- writes through these). An unknown item or change kind fails the NOT NULL constraints.
CREATE TRIGGER IF NOT EXISTS changes_insert_set INSTEAD OF INSERT ON changes
WHEN NEW.detail IS NULL AND NEW.old IS NULL AND NEW.new IS NULL
BEGIN
    INSERT INTO change_sets (pair_id, item_kind_id, change_kind_id, block, bits)
    VALUES (NEW.pair_id, (SELECT id FROM item_kinds WHERE name = NEW.item_kind),
            (SELECT position FROM change_kinds WHERE name = NEW.change_kind),
            NEW.name_id >> 6, 1 << (NEW.name_id & 63))
    ON CONFLICT (pair_id, item_kind_id, change_kind_id, block) DO UPDATE SET bits = bits | excluded.bits;
END;
CREATE TRIGGER IF NOT EXISTS changes_insert_detail INSTEAD OF INSERT ON changes
WHEN NEW.detail IS NOT NULL OR NEW.old IS NOT NULL OR NEW.new IS NOT NULL
BEGIN
    INSERT INTO change_details (pair_id, item_kind_id, change_kind_id, name_id, seq, detail, old, new)
    SELECT NEW.pair_id, i.id, k.position, NEW.name_id,
           (SELECT count(*) FROM change_details d WHERE d.pair_id = NEW.pair_id AND d.name_id = NEW.name_id),
           NEW.detail, NEW.old, NEW.new
    FROM (SELECT (SELECT id FROM item_kinds WHERE name = NEW.item_kind) AS id) i,
         (SELECT (SELECT position FROM change_kinds WHERE name = NEW.change_kind) AS position) k;
END;

-- old/new of a function added or removed is its prototype, which the build
-- already holds: the stored row leaves it out (a third of the bytes) and the view joins it.
-- One arm per storage table, alike: SQLite hands a condition on any column (build_a = ...)
-- down into both arms, where the tables' keys serve it; a join over `changes` it could not.
CREATE VIEW IF NOT EXISTS change_list AS
SELECT g.name AS group_name, ba.name AS build_a, bb.name AS build_b, i.name AS item_kind, n.name AS name,
       k.name AS change_kind, NULL AS detail,
       CASE WHEN i.name = 'function' AND k.name = 'removed' THEN
           (SELECT pr.text FROM functions f JOIN prototypes pr ON pr.id = f.prototype_id
            WHERE f.name_id = n.id AND f.build_id = p.build_a) END AS old,
       CASE WHEN i.name = 'function' AND k.name = 'added' THEN
           (SELECT pr.text FROM functions f JOIN prototypes pr ON pr.id = f.prototype_id
            WHERE f.name_id = n.id AND f.build_id = p.build_b) END AS new,
       s.pair_id, n.id AS name_id, p.build_a AS build_a_id, p.build_b AS build_b_id
FROM change_sets s JOIN names n
  ON n.id BETWEEN s.block * 64 AND s.block * 64 + 63 AND s.block = n.id >> 6 AND (s.bits >> (n.id & 63)) & 1
JOIN item_kinds i ON i.id = s.item_kind_id JOIN change_kinds k ON k.position = s.change_kind_id
JOIN diff_pairs p ON p.id = s.pair_id JOIN builds ba ON ba.id = p.build_a JOIN builds bb ON bb.id = p.build_b
LEFT JOIN groups g ON g.id = p.group_id
UNION ALL
SELECT g.name, ba.name, bb.name, i.name, n.name, k.name, c.detail,
       CASE WHEN c.old IS NULL AND i.name = 'function' AND k.name = 'removed' THEN
           (SELECT pr.text FROM functions f JOIN prototypes pr ON pr.id = f.prototype_id
            WHERE f.name_id = c.name_id AND f.build_id = p.build_a) ELSE c.old END,
       CASE WHEN c.new IS NULL AND i.name = 'function' AND k.name = 'added' THEN
           (SELECT pr.text FROM functions f JOIN prototypes pr ON pr.id = f.prototype_id
            WHERE f.name_id = c.name_id AND f.build_id = p.build_b) ELSE c.new END,
       c.pair_id, c.name_id, p.build_a, p.build_b
FROM change_details c JOIN names n ON n.id = c.name_id
JOIN item_kinds i ON i.id = c.item_kind_id JOIN change_kinds k ON k.position = c.change_kind_id
JOIN diff_pairs p ON p.id = c.pair_id JOIN builds ba ON ba.id = p.build_a JOIN builds bb ON bb.id = p.build_b
LEFT JOIN groups g ON g.id = p.group_id;

-- Counts per change kind per pair (rows, and distinct items changed), in vocabulary order.
CREATE VIEW IF NOT EXISTS diff_summary AS
SELECT p.id AS pair_id, g.name AS group_name,
       (SELECT label FROM group_members m WHERE m.group_id = p.group_id AND m.build_id = p.build_a) AS label_a,
       (SELECT label FROM group_members m WHERE m.group_id = p.group_id AND m.build_id = p.build_b) AS label_b,
       ba.name AS build_a, bb.name AS build_b, c.item_kind, c.change_kind,
       count(*) AS changes, count(DISTINCT c.name_id) AS items
FROM diff_pairs p JOIN changes c ON c.pair_id = p.id JOIN change_kinds k ON k.name = c.change_kind
JOIN builds ba ON ba.id = p.build_a JOIN builds bb ON bb.id = p.build_b
LEFT JOIN groups g ON g.id = p.group_id
GROUP BY p.id, c.item_kind, c.change_kind
ORDER BY p.id, c.item_kind, min(k.position);
