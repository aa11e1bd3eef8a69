"""kernsurf's Datasette pages: the data behind templates/pages/*.

Templates get one object, `ks`, whose async methods return plain dicts for
the function, struct, diff, search, builds and matrix pages. Each method runs
all its (parameterized) queries in one trip to Datasette's SQL thread, under
the `sql_time_limit_ms` setting. Status words come from ingest.classify and
C layouts from ingest.cdecl, so the pages say exactly what the database and
`kernsurf` say. Pages of an immutable database are cached in memory.

Hooks: register_routes (the pages), extra_template_vars (`ks`),
prepare_jinja2_environment (the `path` filter for URL segments), prepare_connection (the SQL function `ks_status`
used by canned queries) and canned_queries (the queries of metadata.yml's
`plugins.kernsurf.conditional_queries` whose tables exist).
"""

import json
import os
import re
import threading
import weakref
from collections import OrderedDict, defaultdict
from typing import NamedTuple
from urllib.parse import quote, unquote, urlencode

from datasette import hookimpl
from datasette.utils import sqlite_timelimit
from datasette.utils.asgi import Response

from ingest import classify
from ingest.bpf import check
from ingest.bpf import objects as bpf_object
from ingest.cdecl import layout_text
from ingest.model import Field, Layout

MAX_INSTANCES = 20  # instances listed per build (the rest: JSON link)
MAX_CALLERS = 100  # callers listed per instance and kind
MAX_SYMBOLS = 50  # symbols listed per build
MAX_MATRIX_NAMES = 400
SEARCH_LIMIT = 100
DIFF_PAGE_SIZE = 100
#: Pages of an immutable database kept in memory (KERNSURF_PAGE_CACHE=0 turns it off).
CACHE_SIZE = int(os.environ.get("KERNSURF_PAGE_CACHE", "512"))
MASK64 = (1 << 64) - 1
MAX_UPLOAD = 32 << 20  # bytes of BPF objects one /check POST may upload
MAX_CHECK_DEPS = 500


def _known(tables) -> str:
    """SQL: a names row `n` that is a function, a type or another surface item
    somewhere (not only a symbol name); `tables` are the database's tables."""
    wanted = ["functions", "types"] + [t for t in SURFACE_TABLES if t in tables]
    return "(" + " OR ".join(f"EXISTS (SELECT 1 FROM {t} WHERE name_id = n.id)" for t in wanted) + ")"


COLLISIONS = (classify.STATIC_STATIC, classify.STATIC_GLOBAL)

#: Cell colours per status class (the strip, the legend, the matrix picture).
COLOURS = {
    "ok": "#5cb85c",
    "F": "#d9534f",
    "S": "#f2c94c",
    "T": "#8ec5ea",
    "D": "#f0ad4e",
    "C": "#f0883e",
    "O": "#c9c9c9",
    "delta": "#ffffff",
    "absent": "#ececec",
    "nodwarf": "#c7d6ea",
}

#: Strip letters and colours, in legend order.
LEGEND = [
    ("ok", "", "✅ no issue"),
    ("F", "F", "Full inline (no symbol to attach to)"),
    ("S", "S", "Selective inline"),
    ("T", "T", "Transformed (.isra, .constprop, .part, .cold, …)"),
    ("D", "D", "Duplicate (a static helper, one copy per compile unit)"),
    ("C", "C", "Collision (several functions share the name)"),
    ("O", "O", "Declared only"),
    ("delta", "Δ", "changed vs the previous build (vs the baseline for variants)"),
    ("absent", "", "absent"),
    ("nodwarf", "?", "no DWARF: inlining unknown"),
]


class Surface(NamedTuple):
    """A page of another surface (docs/concepts.md#surfaces): its table, view, canned query,
    change item kind, title and the `kernsurf check` attach types whose
    verdicts it shows."""

    table: str
    view: str
    query: str
    item: str
    title: str
    attaches: tuple[str, ...]


#: URL segment -> Surface.
SURFACES = {
    "tracepoint": Surface(
        "tracepoints",
        "tracepoint_list",
        "tracepoints_per_build",
        "tracepoint",
        "Tracepoint",
        ("tracepoint", "raw_tracepoint", "tp_btf"),
    ),
    "syscall": Surface(
        "syscalls", "syscall_list", "syscalls_per_build", "syscall", "System call", ("ksyscall",)
    ),
    "lsm": Surface("lsm_hooks", "lsm_hook_list", "lsm_hooks_per_build", "lsm_hook", "LSM hook", ("lsm",)),
    "kfunc": Surface("kfuncs", "kfunc_list", "kfuncs_per_build", "kfunc", "kfunc", ("kfunc",)),
    "config": Surface(
        "config_options", "config_list", "config_per_build", "config", "Config option", ("kconfig",)
    ),
}
#: Surface tables whose names search finds -> the URL segment of their pages.
SURFACE_TABLES = {surface.table: segment for segment, surface in SURFACES.items()}
#: Strip colour of a surface item's worst `kernsurf check` verdict in a build.
SURFACE_CLASSES = {"ok": "ok", "warn": "S", "fail": "F", "unknown": "nodwarf"}
SURFACE_LEGEND = [
    ("ok", "", "✅ every attach type works"),
    ("S", "W", "works, but look (see the status line)"),
    ("F", "✗", "present, but an attach type fails"),
    ("nodwarf", "?", "not recorded for this build"),
    ("delta", "Δ", "changed vs the previous build (vs the baseline for variants)"),
    ("absent", "", "absent"),
]


# --------------------------------------------------------------------------- hooks


@hookimpl
def extra_template_vars(view_name, datasette):
    if view_name in ("page", "index"):
        return {"ks": _pages(datasette)}
    return None


#: Pages served by their own route: the same templates Datasette would find
#: as custom pages, without first trying (and failing) its database routes.
PAGE_ROUTES = [
    (r"^/function/(?P<name>[^/]+)$", "pages/function/{name}.html"),
    (r"^/struct/(?P<name>[^/]+)$", "pages/struct/{name}.html"),
    (r"^/diff/(?P<build_a>[^/]+)/(?P<build_b>[^/]+)$", "pages/diff/{build_a}/{build_b}.html"),
    (r"^/search$", "pages/search.html"),
    (r"^/builds$", "pages/builds.html"),
    (r"^/matrix$", "pages/matrix.html"),
    (r"^/(?P<kind>tracepoint|syscall|lsm|kfunc|config)/(?P<name>[^/]+)$", "pages/surface.html"),
]


@hookimpl
def register_routes():
    return [(regex, _page_view(template)) for regex, template in PAGE_ROUTES] + [
        (r"^/check(?P<format>\.json)?$", _check_view)
    ]


async def _check_view(datasette, request):
    """/check: a form (dependency lines, or BPF objects uploaded) and the
    matrix of `kernsurf check`; /check.json: the same report as JSON.
    GET takes `deps` (one kind:name per line) and `group`; POST takes the
    same as multipart form fields plus `object` files."""
    fields, files = {k: request.args.get(k) for k in request.args.keys()}, []
    if request.method == "POST":
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_UPLOAD:
            return Response.text(f"upload too large: {length} bytes (at most {MAX_UPLOAD})", status=413)
        form = _multipart(request.headers.get("content-type", ""), await request.post_body())
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
        files = [v for k, v in form.items() if k.startswith("object") and isinstance(v, tuple)]
    result = await _pages(datasette).check(fields.get("deps", ""), fields.get("group") or None, files)
    status = 400 if result["errors"] and not result["report"] else 200
    if request.url_vars.get("format"):
        body = {
            "errors": result["errors"],
            "warnings": result["warnings"],
            "link": result["link"],
            **(result["report"] or {}),
        }
        return Response.json(body, status=status)
    body = await datasette.render_template(
        "pages/check.html", {"c": result}, request=request, view_name="page"
    )
    return Response.html(body, status=status)


def _multipart(content_type: str, body: bytes) -> dict:
    """Fields of a multipart/form-data body: text fields as str, files as
    (filename, bytes); several files of one field get keys field, field#2, ..."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or not match:
        return {}
    out: dict = {}
    for part in body.split(b"--" + match.group(1).encode())[1:]:
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        head = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', head)
        if name is None:
            continue
        content = content[:-2] if content.endswith(b"\r\n") else content
        filename = re.search(r'\bfilename="([^"]*)"', head)
        key, k = name.group(1), 1
        while key in out:
            k += 1
            key = f"{name.group(1)}#{k}"
        if filename is None:
            out[key] = content.decode("utf-8", "replace")
        elif content:
            out[key] = (filename.group(1) or "upload.bpf.o", content)
    return out


def _page_view(template):
    async def view(datasette, request):
        headers, status = {}, [200]

        def custom_header(name, value):
            headers[name] = value
            return ""

        def custom_status(code):
            status[0] = code
            return ""

        context = {**request.url_vars, "custom_header": custom_header, "custom_status": custom_status}
        body = await datasette.render_template(template, context, request=request, view_name="page")
        return Response.html(body, status=status[0], headers=headers)

    return view


@hookimpl
def prepare_jinja2_environment(env):
    env.filters["path"] = _segment


@hookimpl
def prepare_connection(conn):
    conn.create_function("ks_status", 5, _sql_status, deterministic=True)


@hookimpl
def canned_queries(datasette, database):
    """metadata.yml's conditional queries: offered when their `requires`
    tables (or views) exist and their `nonempty` tables hold rows, else `otherwise`."""
    wanted = (datasette.plugin_config("kernsurf") or {}).get("conditional_queries") or {}
    if not wanted or database not in datasette.databases:
        return None

    async def inner():
        db = datasette.get_database(database)
        tables = set(await db.table_names()) | set(await db.view_names())
        out = {}
        for name, q in wanted.items():
            base = {k: v for k, v in q.items() if k not in ("requires", "nonempty", "otherwise")}
            ok = set(q.get("requires", ())) | set(q.get("nonempty", ())) <= tables
            for table in q.get("nonempty", ()) if ok else ():
                ok = ok and (await db.execute(f"SELECT EXISTS (SELECT 1 FROM [{table}])")).first()[0]
            if ok:
                out[name] = base
            elif q.get("otherwise"):
                out[name] = {**base, **q["otherwise"]}
        return out

    return inner


def _sql_status(collision, inline, suffixes, present, has_dwarf):
    """SQL ks_status(): the status line of docs/concepts.md#function-status for one build."""
    if not present:
        return "not in BTF or symbols (no DWARF: inlining unknown)" if has_dwarf == 0 else "Absent ⚠️"
    if has_dwarf == 0:
        return classify.status_line(None, None, (suffixes or "").split()) + " (no DWARF: inlining unknown)"
    return classify.status_line(collision, inline, (suffixes or "").split())


_instances: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_instances_lock = threading.Lock()


def _pages(datasette):
    with _instances_lock:
        pages = _instances.get(datasette)
        if pages is None:
            pages = _instances[datasette] = Pages(datasette)
        return pages


# --------------------------------------------------------------------------- small helpers


def _hex(address):
    return None if address is None else format(address & MASK64, "x")


def _segment(name):
    """A name as one URL path segment: %-escaped, "+" and "." kept (6.12.1+deb13-amd64)."""
    return quote(name, safe="+")


def _decode(segment):
    """A name from a URL segment (the page routes see the raw, %-escaped path)."""
    return unquote(segment)


def _split_names(text):
    return [n for n in dict.fromkeys(re.split(r"[\s,;]+", text or "")) if n]


def _columns(conn, table):
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _tables(conn):
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}


def _letters(state, has_dwarf):
    """Strip letters and colour class of one build's state (None: absent)."""
    if state is None:
        return "", "absent"
    collision, inline, suffixes = state[0], state[1], state[2]
    if not has_dwarf:
        return "?" + ("T" if suffixes else ""), "nodwarf"
    out, cls = "", "ok"
    if collision == classify.STATIC_DUPLICATION:
        out, cls = "D", "D"
    elif collision in COLLISIONS:
        out, cls = "C", "C"
    if inline == classify.INLINE_FULL:
        out, cls = out + "F", "F"
    elif inline == classify.INLINE_SELECTIVE:
        out, cls = out + "S", cls if cls != "ok" else "S"
    elif inline == classify.DECLARED_ONLY:
        out, cls = out + "O", "O"
    if suffixes:
        out, cls = out + "T", cls if cls != "ok" else "T"
    return out, cls


class _LRU:
    """A small thread-safe LRU for page data of immutable databases."""

    def __init__(self, size):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def put(self, key, value):
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


# --------------------------------------------------------------------------- pages


class Pages:
    """`ks` in templates: one async method per page, returning plain dicts."""

    def __init__(self, datasette):
        self.datasette = datasette
        self.cache = _LRU(CACHE_SIZE)
        self.contexts = {}
        #: metadata.yml plugins.kernsurf.database, else Datasette's first database
        self.database = (datasette.plugin_config("kernsurf") or {}).get("database")

    @property
    def db(self):
        return self.datasette.get_database(self.database)

    @property
    def db_name(self):
        return self.db.name

    def url(self, query, fmt=None, **params):
        """URL of a canned query (or table) in `fmt` ("json", "csv") with parameters."""
        base = self.datasette.urls.query(self.db_name, query, format=fmt)
        params = {k: v for k, v in params.items() if v is not None}
        return base + ("?" + urlencode(params) if params else "")

    def data_links(self, query, **params):
        """{"json": ..., "csv": ..., "html": ...} for a canned query."""
        return {
            "html": self.url(query, **params),
            "json": self.url(query, "json", **params),
            "csv": self.url(query, "csv", _size="max", **params),
        }

    async def _run(self, key, fn, *args):
        db = self.db
        cacheable = key is not None and not db.is_mutable and CACHE_SIZE > 0
        if cacheable:
            hit = self.cache.get((db.name, key))
            if hit is not None:
                return hit
        limit = self.datasette.setting("sql_time_limit_ms")

        def run(conn):
            with sqlite_timelimit(conn, limit):
                return fn(conn, *args)

        result = await db.execute_fn(run)
        if cacheable:
            self.cache.put((db.name, key), result)
        return result

    def cache_control(self):
        """Cache-Control value for custom pages: long for an immutable database."""
        if self.db.is_mutable:
            return "no-cache"
        return f"max-age={self.datasette.setting('default_cache_ttl')}"

    legend = LEGEND
    colours = COLOURS
    decode = staticmethod(_decode)

    # ---- shared context: builds and groups -----------------------------------

    def _context(self, conn):
        """Builds, groups and tables; kept for the life of an immutable database."""
        db = self.db
        if not db.is_mutable and db.name in self.contexts:
            return self.contexts[db.name]
        tables = _tables(conn)
        builds = {}
        for r in conn.execute(
            "SELECT id, name, has_dwarf, has_btf, has_symtab, lacks, release, version, arch, flavor"
            " FROM builds ORDER BY version_sort IS NULL, version_sort, name, id"
        ):
            builds[r[0]] = {
                "id": r[0],
                "name": r[1],
                "has_dwarf": bool(r[2]),
                "has_btf": bool(r[3]),
                "has_symtab": bool(r[4]),
                "lacks": r[5],
                "release": r[6],
                "version": r[7],
                "arch": r[8],
                "flavor": r[9],
            }
        groups = []
        if {"groups", "group_members"} <= tables:
            current = None
            for gid, gname, kind, bid, label in conn.execute(
                "SELECT g.id, g.name, g.kind, gm.build_id, gm.label FROM groups g"
                " JOIN group_members gm ON gm.group_id = g.id ORDER BY g.position, g.id, gm.position"
            ):
                if bid not in builds:
                    continue
                if current is None or current["id"] != gid:
                    current = {"id": gid, "name": gname, "kind": kind, "members": []}
                    groups.append(current)
                current["members"].append({"build": builds[bid], "label": label})
        grouped = {m["build"]["id"] for g in groups for m in g["members"]}
        rest = [{"build": b, "label": b["name"]} for b in builds.values() if b["id"] not in grouped]
        if rest:
            groups.append(
                {
                    "id": None,
                    "name": "Other builds" if groups else "All builds",
                    "kind": "series",
                    "members": rest,
                }
            )
        ctx = {"tables": tables, "builds": builds, "groups": groups, "diffs": _has_diffs(tables)}
        if not db.is_mutable:
            self.contexts[db.name] = ctx
        return ctx

    @staticmethod
    def _pairs(group):
        """(index, member, member it is compared with) for a group's members."""
        members = group["members"]
        for k, m in enumerate(members):
            if k == 0:
                yield k, m, None
            else:
                yield k, m, members[0] if group["kind"] == "variants" else members[k - 1]

    # ---- /function/<name> ------------------------------------------------------

    async def function(self, name):
        name = _decode(name)
        return await self._run(("function", name), self._function, name)

    def _function(self, conn, name):
        ctx = self._context(conn)
        out = {
            "name": name,
            "found": False,
            "groups": [],
            "strip": [],
            "legend": LEGEND,
            "links": {
                "status": self.data_links("function_status", name=name),
                "instances": self.data_links("function_instances", name=name),
                "symbols": self.data_links("function_symbols", name=name),
            },
            "search": self.url("search_names", q=name),
        }
        row = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
        if row is None:
            return out
        nid = row[0]
        funcs = {}
        for bid, collision, inline, suffixes, n_inst, n_sym, proto_id, proto, source in conn.execute(
            "SELECT f.build_id, f.collision, f.inline, f.suffixes, f.n_instances, f.n_symbols,"
            " f.prototype_id, p.text, f.prototype_source FROM functions f"
            " LEFT JOIN prototypes p ON p.id = f.prototype_id WHERE f.name_id = ?",
            (nid,),
        ):
            funcs[bid] = {
                "collision": collision,
                "inline": inline,
                "suffixes": (suffixes or "").split(),
                "n_instances": n_inst,
                "n_symbols": n_sym,
                "prototype_id": proto_id,
                "prototype": proto,
                "prototype_source": source,
                "kprobe": None,
                "fentry": None,
                "ftrace": None,
            }
        if "ftrace" in _columns(conn, "functions"):
            for bid, kprobe, fentry, ftrace in conn.execute(
                "SELECT build_id, kprobe, fentry, ftrace FROM function_status WHERE name_id = ?", (nid,)
            ):
                funcs[bid].update(kprobe=kprobe, fentry=fentry, ftrace=ftrace)
        out["is_type"] = (
            conn.execute("SELECT 1 FROM types WHERE name_id = ? LIMIT 1", (nid,)).fetchone() is not None
        )
        if not funcs:
            return out
        out["found"] = True

        # Instances (capped per build), then their callers (capped per instance and kind).
        instances, hidden = defaultdict(list), defaultdict(int)
        for iid, bid, external, decl, line, cu, inline, address, defined in conn.execute(
            "SELECT i.id, i.build_id, i.external, dp.path, i.decl_line, cp.path, i.inline, i.address,"
            " i.defined FROM instances i LEFT JOIN paths dp ON dp.id = i.decl_path_id"
            " LEFT JOIN paths cp ON cp.id = i.cu_path_id WHERE i.name_id = ?"
            " ORDER BY i.build_id, i.address IS NULL, cp.path IS NULL, cp.path, i.id",
            (nid,),
        ):
            if len(instances[bid]) >= MAX_INSTANCES:
                hidden[bid] += 1
                continue
            instances[bid].append(
                {
                    "id": iid,
                    "external": bool(external),
                    "cu": cu,
                    "address": _hex(address),
                    "location": f"{decl}:{line}" if decl and line else decl,
                    "defined": bool(defined),
                    "inline": inline,
                    "inlined": inline in (1, 3),
                    "inline_callers": [],
                    "direct_callers": [],
                    "more": {"inline": 0, "direct": 0},
                }
            )
        by_id = {i["id"]: i for rows in instances.values() for i in rows}
        if by_id:
            for callee, kind, sites, caller, cu, total, k in conn.execute(
                "SELECT * FROM (SELECT c.callee_id, c.kind, c.sites, rn.name, rp.path,"
                " count(*) OVER (PARTITION BY c.callee_id, c.kind),"
                " row_number() OVER (PARTITION BY c.callee_id, c.kind ORDER BY rp.path, rn.name, c.caller_id)"
                " AS k FROM callers c JOIN instances r ON r.id = c.caller_id"
                " JOIN names rn ON rn.id = r.name_id LEFT JOIN paths rp ON rp.id = r.cu_path_id"
                " WHERE c.callee_id IN (SELECT value FROM json_each(?))) WHERE k <= ?",
                (json.dumps(list(by_id)), MAX_CALLERS),
            ):
                inst = by_id[callee]
                inst[kind + "_callers"].append({"name": caller, "cu": cu, "sites": sites})
                inst["more"][kind] = total - MAX_CALLERS if total > MAX_CALLERS else 0
        symbols, more_symbols = defaultdict(list), defaultdict(int)
        for bid, sname, address, size, binding, section in conn.execute(
            "SELECT s.build_id, n.name, s.address, s.size, s.binding, s.section FROM symbols s"
            " JOIN names n ON n.id = s.name_id WHERE s.stem_id = ? ORDER BY s.build_id, s.address",
            (nid,),
        ):
            if len(symbols[bid]) >= MAX_SYMBOLS:
                more_symbols[bid] += 1
                continue
            start = address & MASK64
            symbols[bid].append(f"{start:x}-{(start + (size or 0)) & MASK64:x}: {sname} ({binding})")

        def state(bid):
            f = funcs.get(bid)
            if f is None:
                return None
            return (f["collision"], f["inline"], tuple(f["suffixes"]), f["prototype_id"])

        for gi, group in enumerate(ctx["groups"]):
            rows = []
            for k, member, base in self._pairs(group):
                b = member["build"]
                f = funcs.get(b["id"])
                st = state(b["id"])
                letters, cls = _letters(st, b["has_dwarf"])
                changed = base is not None and st != state(base["build"]["id"])
                if changed:
                    letters += "Δ"
                anchor = f"g{gi}-{k}"
                row = {
                    "label": member["label"],
                    "build": b["name"],
                    "anchor": anchor,
                    "present": f is not None,
                    "letters": letters,
                    "cls": cls,
                    "changed": changed,
                    "no_dwarf": not b["has_dwarf"],
                    "build_lacks": b["lacks"],
                    "status": _sql_status(
                        f and f["collision"],
                        f and f["inline"],
                        " ".join(f["suffixes"]) if f else None,
                        f is not None,
                        int(b["has_dwarf"]),
                    ),
                }
                if f is not None:
                    row.update(f)
                    row["instances"] = instances.get(b["id"], [])
                    row["more_instances"] = hidden.get(b["id"], 0)
                    row["symbols"] = symbols.get(b["id"], [])
                    row["more_symbols"] = more_symbols.get(b["id"], 0)
                    row["callers_links"] = self.data_links("function_callers", name=name, build=b["name"])
                rows.append(row)
                out["strip"].append(
                    {
                        "group": group["name"],
                        "first": k == 0,
                        "label": member["label"],
                        "build": b["name"],
                        "letters": letters,
                        "cls": cls,
                        "anchor": anchor,
                        "title": f"{member['label']} ({b['name']}): {row['status']}"
                        + (" Δ" if changed else ""),
                    }
                )
            out["groups"].append({"name": group["name"], "kind": group["kind"], "rows": rows})
        out["differences"] = _item_differences(conn, ctx, ("function",), nid)
        return out

    # ---- /struct/<name> --------------------------------------------------------

    async def struct(self, name):
        name = _decode(name)
        return await self._run(("struct", name), self._struct, name)

    def _struct(self, conn, name):
        ctx = self._context(conn)
        out = {
            "name": name,
            "found": False,
            "groups": [],
            "strip": [],
            "legend": LEGEND,
            "links": {"layout": self.data_links("struct_layout", name=name)},
            "search": self.url("search_names", q=name),
        }
        row = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
        if row is None:
            return out
        nid = row[0]
        per_build = defaultdict(list)
        layout_ids = set()
        for bid, lid, kind, size in conn.execute(
            "SELECT t.build_id, t.layout_id, t.kind, l.size FROM types t JOIN layouts l ON l.id = t.layout_id"
            " WHERE t.name_id = ? ORDER BY t.build_id, t.kind = 'enum', t.kind, t.layout_id",
            (nid,),
        ):
            per_build[bid].append((lid, kind, size))
            layout_ids.add(lid)
        out["is_function"] = (
            conn.execute("SELECT 1 FROM functions WHERE name_id = ? LIMIT 1", (nid,)).fetchone() is not None
        )
        if not per_build:
            return out
        out["found"] = True
        fields, values = defaultdict(list), defaultdict(list)
        ids = json.dumps(sorted(layout_ids))
        for lid, pos, fname, ttext, decl, bit_offset, bit_size, byte_size, parent in conn.execute(
            "SELECT sf.layout_id, sf.position, sf.name, tt.text, dt.text, sf.bit_offset, sf.bit_size,"
            " sf.byte_size, sf.parent FROM struct_fields sf JOIN type_texts tt ON tt.id = sf.type_id"
            " JOIN type_texts dt ON dt.id = sf.decl_id"
            " WHERE sf.layout_id IN (SELECT value FROM json_each(?)) ORDER BY sf.layout_id, sf.position",
            (ids,),
        ):
            fields[lid].append(
                Field(
                    position=pos,
                    name=fname,
                    type_text=ttext,
                    decl=decl,
                    bit_offset=bit_offset,
                    bit_size=bit_size,
                    byte_size=byte_size,
                    parent=parent,
                )
            )
        for lid, vname, value in conn.execute(
            "SELECT layout_id, name, value FROM enum_values WHERE layout_id IN (SELECT value FROM json_each(?))"
            " ORDER BY layout_id, position",
            (ids,),
        ):
            values[lid].append((vname, value))
        texts = {}
        for layouts in per_build.values():
            for lid, kind, size in layouts:
                if lid not in texts:
                    texts[lid] = layout_text(
                        Layout(
                            kind=kind,
                            name=name,
                            size=size,
                            fields=fields.get(lid, []),
                            values=values.get(lid, []),
                        )
                    )

        def state(bid):
            return tuple(lid for lid, _, _ in per_build[bid]) if bid in per_build else None

        for gi, group in enumerate(ctx["groups"]):
            rows = []
            for k, member, base in self._pairs(group):
                b = member["build"]
                st = state(b["id"])
                changed = base is not None and st != state(base["build"]["id"])
                defs = [
                    {"kind": kind, "size": size, "text": texts[lid], "layout_id": lid}
                    for lid, kind, size in per_build.get(b["id"], ())
                ]
                if st is None:
                    status, letters, cls = "Absent ⚠️", "", "absent"
                elif len(defs) > 1:
                    status, letters, cls = f"{len(defs)} distinct definitions ⚠️", "C", "C"
                else:
                    status, letters, cls = "✅", "", "ok"
                if changed:
                    letters += "Δ"
                anchor = f"g{gi}-{k}"
                rows.append(
                    {
                        "label": member["label"],
                        "build": b["name"],
                        "anchor": anchor,
                        "present": bool(defs),
                        "status": status,
                        "definitions": defs,
                        "changed": changed,
                        "letters": letters,
                        "cls": cls,
                    }
                )
                out["strip"].append(
                    {
                        "group": group["name"],
                        "first": k == 0,
                        "label": member["label"],
                        "build": b["name"],
                        "letters": letters,
                        "cls": cls,
                        "anchor": anchor,
                        "title": f"{member['label']} ({b['name']}): {status}" + (" Δ" if changed else ""),
                    }
                )
            out["groups"].append({"name": group["name"], "kind": group["kind"], "rows": rows})
        kinds = {kind for layouts in per_build.values() for _, kind, _ in layouts}
        out["kind"] = "/".join(sorted(kinds))
        out["differences"] = _item_differences(conn, ctx, ("struct", "union", "enum"), nid)
        return out

    # ---- /tracepoint, /syscall, /lsm, /kfunc, /config /<name> -----------------

    async def surface(self, kind, name):
        name = _decode(name)
        if kind not in SURFACES:
            return {"kind": kind, "name": name, "found": False, "known_kind": False}
        return await self._run((kind, name), self._surface, kind, name)

    def _surface(self, conn, kind, name):
        ctx = self._context(conn)
        _, view, query, item, title, attaches = SURFACES[kind]
        out = {
            "kind": kind,
            "title": title,
            "name": name,
            "found": False,
            "known_kind": True,
            "groups": [],
            "strip": [],
            "legend": SURFACE_LEGEND,
            "links": self.data_links(query, name=name, build=""),
            "function": False,
        }
        if view not in ctx["tables"]:
            out["missing"] = True  # a database made before the surfaces were recorded
            return out
        row = conn.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
        if row is None:
            return out
        nid = row[0]
        cursor = conn.execute(f"SELECT * FROM {view} WHERE name_id = ?", (nid,))
        columns = [d[0] for d in cursor.description]
        per_build = defaultdict(list)
        for r in cursor:
            facts = dict(zip(columns, r))
            per_build[facts["build_id"]].append(
                {k: v for k, v in facts.items() if k not in ("build", "name", "build_id", "name_id")}
            )
        if not per_build:
            return out
        out["found"] = True
        out["function"] = (
            conn.execute("SELECT 1 FROM functions WHERE name_id = ? LIMIT 1", (nid,)).fetchone() is not None
        )
        dependencies = [check.parse_spec(f"{how}:{name}") for how in attaches]

        def state(bid):
            rows = per_build.get(bid)
            return tuple(sorted(tuple(sorted(r.items())) for r in rows)) if rows else None

        for gi, group in enumerate(ctx["groups"]):
            rows = []
            for k, member, base in self._pairs(group):
                b = member["build"]
                facts = per_build.get(b["id"], [])
                changed = base is not None and state(b["id"]) != state(base["build"]["id"])
                verdicts = []
                if facts:
                    for dep in dependencies:
                        cell = check.verdict(conn, dep, b["id"])
                        verdicts.append(
                            {
                                "spec": check.spec(dep),
                                "mark": check.MARKS[cell.level],
                                "text": cell.text,
                                "level": cell.level,
                            }
                        )
                worst = max((v["level"] for v in verdicts), key=check.severity, default=None)
                cls = SURFACE_CLASSES[worst] if facts else "absent"
                status = (
                    "Absent ⚠️"
                    if not facts
                    else _surface_summary(kind, name, facts)
                    + (
                        " ✅"
                        if worst == "ok"
                        else " — "
                        + "; ".join(f"{v['spec']} {v['text']}" for v in verdicts if v["level"] != "ok")
                        + " ⚠️"
                    )
                )
                anchor = f"g{gi}-{k}"
                letters = {"ok": "", "warn": "W", "fail": "✗", "unknown": "?"}.get(worst, "") + (
                    "Δ" if changed else ""
                )
                rows.append(
                    {
                        "label": member["label"],
                        "build": b["name"],
                        "anchor": anchor,
                        "present": bool(facts),
                        "facts": facts,
                        "verdicts": verdicts,
                        "status": status,
                        "changed": changed,
                    }
                )
                out["strip"].append(
                    {
                        "group": group["name"],
                        "first": k == 0,
                        "label": member["label"],
                        "build": b["name"],
                        "letters": letters,
                        "cls": cls,
                        "anchor": anchor,
                        "title": f"{member['label']} ({b['name']}): {status}" + (" Δ" if changed else ""),
                    }
                )
            out["groups"].append({"name": group["name"], "kind": group["kind"], "rows": rows})
        out["differences"] = _item_differences(conn, ctx, (item,), nid)
        return out

    # ---- /check --------------------------------------------------------------------

    async def check(self, text, group, files):
        """`kernsurf check` of dependency lines and uploaded BPF objects
        [(filename, bytes)]: the report as a dict and as table rows."""
        out = {
            "deps_text": text,
            "group": group,
            "errors": [],
            "warnings": [],
            "report": None,
            "objects": [name for name, _ in files],
            "link": None,
        }
        found = []
        for filename, data in files:
            try:
                obj = bpf_object.parse_bpf_object(data, filename)
            except bpf_object.BadBpfObject as exc:
                out["errors"].append(str(exc))
                continue
            found += obj.dependencies
            out["warnings"] += [
                f"{filename}: unknown program section {sec!r} (not checked)" for sec in obj.unknown_sections
            ]
        for line in (text or "").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                try:
                    found.append(check.parse_spec(line))
                except check.BadDependency as exc:
                    out["errors"].append(str(exc))
        deps = check.merge(found)
        if len(deps) > MAX_CHECK_DEPS:
            out["errors"].append(f"{len(deps)} dependencies: at most {MAX_CHECK_DEPS} per check")
            deps = []
        if not deps:
            return out
        out["deps_text"] = "\n".join(check.spec(d) for d in deps)
        out["link"] = "/check?" + urlencode(
            {k: v for k, v in (("deps", out["deps_text"]), ("group", group)) if v}
        )
        try:
            out.update(await self._run(("check", tuple(deps), group), self._check, deps, group))
        except LookupError as exc:
            out["errors"].append(str(exc.args[0]))
        return out

    def _check(self, conn, deps, group):
        report = check.evaluate(conn, deps, group)
        notes: dict[str, int] = {}
        rows = []
        for dep, cells in zip(report.dependencies, report.cells):
            rows.append(
                {
                    "spec": check.spec(dep),
                    "programs": list(dep.programs),
                    "url": _dependency_url(dep),
                    "cells": [
                        {
                            "level": c.level,
                            "mark": check.MARKS[c.level],
                            "text": c.text,
                            "note": notes.setdefault(c.text, len(notes) + 1) if c.level != "ok" else None,
                        }
                        for c in cells
                    ],
                }
            )
        heads = []
        for k, col in enumerate(report.columns):
            if k == 0 or col.group != report.columns[k - 1].group:
                heads.append({"group": col.group or "Other builds", "span": 0})
            heads[-1]["span"] += 1
        counts = {lv: sum(c.level == lv for row in report.cells for c in row) for lv in check.LEVELS}
        return {
            "report": report.as_dict(),
            "columns": [
                {"label": c.label, "build": c.build, "worst": report.worst(k)}
                for k, c in enumerate(report.columns)
            ],
            "heads": heads,
            "rows": rows,
            "notes": [{"n": n, "text": t} for t, n in notes.items()],
            "counts": counts,
            "groups": [r[0] for r in conn.execute("SELECT name FROM groups ORDER BY position, id")],
        }

    # ---- /diff/<a>/<b> ----------------------------------------------------------

    async def diff(self, build_a, build_b, request):
        args = request.args if request is not None else {}
        item = args.get("item") or None
        change = args.get("change") or None
        q = args.get("q") or None
        try:
            page = max(1, int(args.get("page") or 1))
        except ValueError:
            page = 1
        a, b = _decode(build_a), _decode(build_b)
        key = ("diff", a, b, item, change, q, page)
        return await self._run(key, self._diff, a, b, item, change, q, page)

    def _diff(self, conn, a, b, item, change, q, page):
        ctx = self._context(conn)
        names = {bb["name"]: bb for bb in ctx["builds"].values()}
        out = {
            "a": a,
            "b": b,
            "known": a in names and b in names,
            "builds": list(names),
            "item": item,
            "change": change,
            "q": q,
            "page": page,
            "computed": False,
            "tables": ctx["diffs"],
            "rows": [],
            "counts": [],
            "pairs": [],
        }
        if not ctx["diffs"] or not out["known"]:
            return out
        out["pairs"] = _stored_pairs(conn, ctx)
        pair = _find_pair(conn, names[a]["id"], names[b]["id"])
        if pair is None:
            return out
        pair_id, out["reversed"] = pair
        out["computed"] = True
        out["counts"] = [
            {"item": r[0], "change": r[1], "count": r[2], "n_items": r[3]}
            for r in conn.execute(
                "SELECT c.item_kind, c.change_kind, count(*), count(DISTINCT c.name_id) FROM changes c"
                " LEFT JOIN change_kinds k ON k.name = c.change_kind WHERE c.pair_id = ?"
                f" GROUP BY c.item_kind, c.change_kind ORDER BY {_ITEM_ORDER}, min(k.position)",
                (pair_id,),
            )
        ]
        groups = {}
        for c in out["counts"]:
            g = groups.setdefault(c["item"], {"item": c["item"], "total": 0, "rows": []})
            g["total"] += c["count"]
            g["rows"].append(c)
        out["count_groups"] = list(groups.values())
        where, params = ["c.pair_id = ?"], [pair_id]
        if item:
            where.append("c.item_kind = ?")
            params.append(item)
        if change:
            where.append("c.change_kind = ?")
            params.append(change)
        if q:
            where.append("instr(n.name, ?) > 0")
            params.append(q)
        base = (
            "FROM changes c JOIN names n ON n.id = c.name_id LEFT JOIN change_kinds k ON k.name = c.change_kind"
            " WHERE " + " AND ".join(where)
        )
        if q:
            out["total"] = conn.execute(f"SELECT count(*) {base}", params).fetchone()[0]
        else:  # the per-kind counts already say
            out["total"] = sum(
                c["count"]
                for c in out["counts"]
                if (not item or c["item"] == item) and (not change or c["change"] == change)
            )
        out["pages"] = max(1, -(-out["total"] // DIFF_PAGE_SIZE))
        for r in conn.execute(
            f"SELECT c.item_kind, n.name, c.change_kind, c.detail, c.old, c.new, c.name_id {base}"
            f" ORDER BY {_ITEM_ORDER}, n.name, k.position, c.detail LIMIT ? OFFSET ?",
            params + [DIFF_PAGE_SIZE, (page - 1) * DIFF_PAGE_SIZE],
        ):
            row = {"item": r[0], "name": r[1], "change": r[2], "detail": r[3], "old": r[4], "new": r[5]}
            if row["old"] is None and row["new"] is None:  # not stored (e.g. a prototype): change_list has it
                row["old"], row["new"] = conn.execute(
                    "SELECT old, new FROM change_list WHERE pair_id = ? AND name_id = ? AND change_kind = ?"
                    " AND detail IS ? LIMIT 1",
                    (pair_id, r[6], r[2], r[3]),
                ).fetchone() or (None, None)
            out["rows"].append(row)
        stored_a, stored_b = (b, a) if out["reversed"] else (a, b)
        out["links"] = self.data_links(
            "diff_between_builds",
            build_a=stored_a,
            build_b=stored_b,
            item_kind=item or "",
            change_kind=change or "",
            name=q or "",
        )
        return out

    def query_string(self, params, **more):
        """A URL query string from `params` and `more`, without empty values."""
        merged = {**params, **more}
        return urlencode({k: v for k, v in merged.items() if v not in (None, "")})

    # ---- /search -----------------------------------------------------------------

    async def search(self, q, limit=SEARCH_LIMIT):
        q = (q or "").strip()
        if not q:
            return {"q": "", "results": [], "links": None}
        return await self._run(("search", q, limit), self._search, q, limit)

    def _search(self, conn, q, limit):
        ctx = self._context(conn)
        indexed = (
            "name_search" in ctx["tables"]
            and conn.execute("SELECT EXISTS (SELECT 1 FROM name_search_docsize)").fetchone()[0]
        )
        order = (
            "ORDER BY (n.name = :q) DESC, (substr(n.name, 1, length(:q)) = :q) DESC, length(n.name), n.name"
        )
        args = {"q": q, "limit": limit + 1}
        known = _known(ctx["tables"])
        if indexed and len(q) >= 3:
            args["match"] = '"' + q.replace('"', '""') + '"'
            sql = (
                "SELECT n.id, n.name FROM name_search s JOIN names n ON n.id = s.rowid"
                f" WHERE name_search MATCH :match {order} LIMIT :limit"
            )
        elif indexed:  # too short for trigrams: prefix only, on the names index
            args["end"] = q + "\U0010ffff"
            sql = (
                f"SELECT n.id, n.name FROM names n WHERE n.name >= :q AND n.name < :end AND {known}"
                f" {order} LIMIT :limit"
            )
        else:  # no index built: a scan, still parameterized
            sql = f"SELECT n.id, n.name FROM names n WHERE instr(n.name, :q) > 0 AND {known} {order} LIMIT :limit"
        rows = conn.execute(sql, args).fetchall()
        results = []
        for nid, name in rows[:limit]:
            n_func = conn.execute("SELECT count(*) FROM functions WHERE name_id = ?", (nid,)).fetchone()[0]
            kinds = [r[0] for r in conn.execute("SELECT DISTINCT kind FROM types WHERE name_id = ?", (nid,))]
            others = [
                segment
                for table, segment in SURFACE_TABLES.items()
                if table in ctx["tables"]
                and conn.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {table} WHERE name_id = ?)", (nid,)
                ).fetchone()[0]
            ]
            results.append(
                {"name": name, "functions": n_func, "types": kinds, "others": others, "exact": name == q}
            )
        return {
            "q": q,
            "results": results,
            "more": len(rows) > limit,
            "indexed": bool(indexed),
            "builds": len(ctx["builds"]),
            "links": self.data_links("search_names", q=q),
        }

    # ---- /builds -------------------------------------------------------------------

    async def summary(self):
        return await self._run(("summary",), self._summary)

    def _summary(self, conn):
        ctx = self._context(conn)
        rows = []
        attach = (
            (
                ", sum(ftrace IS NOT NULL AND kprobe_blocked IS NULL), sum(ftrace = 1 AND btf_func = 1),"
                " sum(ftrace = 0)"
            )
            if "ftrace" in _columns(conn, "functions")
            else ""
        )
        for b in ctx["builds"].values():
            f = conn.execute(
                "SELECT count(*), sum(inline = 'Full'), sum(inline = 'Selective'), sum(inline = 'Declared only'),"
                " sum(suffixes IS NOT NULL), sum(collision IN ('Static-Static Collision', 'Static-Global Collision')),"
                f" sum(collision = 'Static Duplication'){attach} FROM functions WHERE build_id = ?",
                (b["id"],),
            ).fetchone()
            t = dict(
                conn.execute("SELECT kind, count(*) FROM types WHERE build_id = ? GROUP BY kind", (b["id"],))
            )
            n_sym = conn.execute("SELECT n_symbols FROM builds WHERE id = ?", (b["id"],)).fetchone()[0]
            total, full, selective, declared = f[0], f[1] or 0, f[2] or 0, f[3] or 0
            rows.append(
                {
                    "build": b,
                    "functions": total,
                    "full": full,
                    "selective": selective,
                    "declared": declared,
                    "plain": total - full - selective - declared,
                    "transformed": f[4] or 0,
                    "collisions": f[5] or 0,
                    "duplicates": f[6] or 0,
                    "structs": t.get("struct", 0),
                    "unions": t.get("union", 0),
                    "enums": t.get("enum", 0),
                    "symbols": n_sym,
                    "surfaces": self._surface_counts(conn, ctx, b, f[7:]),
                }
            )
        return {
            "rows": rows,
            "chart": _summary_chart(rows),
            "bars": _summary_bars(rows),
            "links": self.data_links("builds_summary"),
            "surfaces": any(r["surfaces"] for r in rows),
        }

    def _surface_counts(self, conn, ctx, build, attach):
        """Attachability (`attach`: kprobe-able, fentry-able and notrace
        function counts) and the other surfaces of one build (docs/concepts.md#attachability, §4):
        None when the build predates them; counts link to their canned query."""
        recorded = (
            "tracepoints" in ctx["tables"]
            and conn.execute(
                "SELECT n_tracepoints IS NOT NULL FROM builds WHERE id = ?", (build["id"],)
            ).fetchone()[0]
        )
        if not recorded:
            return None
        bid, name = build["id"], build["name"]
        counts = [
            ("kprobe ✓", attach[0], self.url("function_attach", build=name, name="", only="")),
            (
                "fentry ✓",
                attach[1] if build["has_btf"] else 0,
                self.url("function_attach", build=name, name="", only=""),
            ),
            ("notrace", attach[2], self.url("function_attach", build=name, name="", only="notrace")),
        ]
        for label, sql, query in (
            (
                "trace events",
                "SELECT count(*) FROM tracepoints WHERE build_id = ? AND system IS NOT NULL",
                "tracepoints_per_build",
            ),
            (
                "raw tracepoints",
                "SELECT count(*) FROM tracepoints WHERE build_id = ? AND raw_prototype_id IS NOT NULL",
                "tracepoints_per_build",
            ),
            (
                "syscalls",
                "SELECT count(DISTINCT name_id) FROM syscalls WHERE build_id = ? AND abi = 'native'",
                "syscalls_per_build",
            ),
            (
                "compat syscalls",
                "SELECT count(DISTINCT name_id) FROM syscalls WHERE build_id = ? AND abi != 'native'",
                "syscalls_per_build",
            ),
            ("LSM hooks", "SELECT count(*) FROM lsm_hooks WHERE build_id = ?", "lsm_hooks_per_build"),
            ("kfuncs", "SELECT count(*) FROM kfuncs WHERE build_id = ?", "kfuncs_per_build"),
            ("config options", "SELECT count(*) FROM config_options WHERE build_id = ?", "config_per_build"),
        ):
            counts.append(
                (label, conn.execute(sql, (bid,)).fetchone()[0], self.url(query, build=name, name=""))
            )
        return [{"label": label, "count": count or 0, "url": url} for label, count, url in counts]

    # ---- /matrix ---------------------------------------------------------------------

    async def matrix(self, text):
        names = _split_names(text)[:MAX_MATRIX_NAMES]
        if not names:
            return {"names": [], "rows": [], "legend": LEGEND}
        return await self._run(("matrix", tuple(names)), self._matrix, names)

    def _matrix(self, conn, names):
        ctx = self._context(conn)
        ids = dict(
            conn.execute(
                "SELECT name, id FROM names WHERE name IN (SELECT value FROM json_each(?))",
                (json.dumps(names),),
            )
        )
        funcs, types = defaultdict(dict), defaultdict(lambda: defaultdict(list))
        id_list = json.dumps(list(ids.values()))
        for nid, bid, collision, inline, suffixes, proto in conn.execute(
            "SELECT name_id, build_id, collision, inline, suffixes, prototype_id FROM functions"
            " WHERE name_id IN (SELECT value FROM json_each(?))",
            (id_list,),
        ):
            funcs[nid][bid] = (collision, inline, tuple((suffixes or "").split()), proto)
        for nid, bid, lid in conn.execute(
            "SELECT name_id, build_id, layout_id FROM types"
            " WHERE name_id IN (SELECT value FROM json_each(?))",
            (id_list,),
        ):
            types[nid][bid].append(lid)
        columns = []
        for group in ctx["groups"]:
            for k, member, base in self._pairs(group):
                columns.append(
                    {
                        "group": group["name"],
                        "first": k == 0,
                        "label": member["label"],
                        "build": member["build"],
                        "base": base and base["build"],
                    }
                )
        rows = []
        for name in names:
            nid = ids.get(name)
            kind = "function" if nid in funcs else "struct" if nid in types else None
            cells = []
            for col in columns:
                b, base = col["build"], col["base"]
                if kind == "function":
                    st = funcs[nid].get(b["id"])
                    letters, cls = _letters(st, b["has_dwarf"])
                    changed = base is not None and st != funcs[nid].get(base["id"])
                    status = _sql_status(
                        st and st[0],
                        st and st[1],
                        " ".join(st[2]) if st else None,
                        st is not None,
                        int(b["has_dwarf"]),
                    )
                elif kind == "struct":
                    st = tuple(sorted(types[nid].get(b["id"], ()))) or None
                    letters, cls = ("", "absent") if st is None else ("C", "C") if len(st) > 1 else ("", "ok")
                    changed = base is not None and st != (
                        tuple(sorted(types[nid].get(base["id"], ()))) or None
                    )
                    status = "Absent ⚠️" if st is None else "✅"
                else:
                    letters, cls, changed, status = "", "absent", False, "unknown name"
                cells.append(
                    {
                        "letters": letters + ("Δ" if changed else ""),
                        "cls": cls,
                        "title": f"{name} in {col['label']}: {status}",
                    }
                )
            rows.append({"name": name, "kind": kind, "cells": cells})
        return {
            "names": names,
            "columns": columns,
            "rows": rows,
            "legend": LEGEND,
            "picture": _matrix_picture(columns, rows),
        }


def _surface_summary(kind: str, name: str, facts: list[dict]) -> str:
    """The few words a status line says about a surface item in one build."""
    f = facts[0]
    if kind == "tracepoint":
        if not f["system"]:
            return "raw tracepoint only"
        return f"trace event {f['system']}/{name}" + (f" (class {f['class']})" if f["class"] != name else "")
    if kind == "syscall":
        return ", ".join(
            f"{x['abi']} nr {x['number']}"
            for x in sorted(facts, key=lambda x: (x["abi"] != "native", x["abi"], x["number"]))
        )
    if kind == "lsm":
        return "hook" + (" with bpf_lsm" if f["bpf_lsm"] else " without bpf_lsm")
    if kind == "kfunc":
        return "kfunc" + (f" in {f['sets']}" if f["sets"] else "")
    return f"= {f['value']}"


#: Dependency kinds with a page of their own: kind -> URL segment.
_DEPENDENCY_PAGES = {
    "function": "function",
    "struct": "struct",
    "enum": "struct",
    "struct_ops": "struct",
    "field": "struct",
    "tracepoint": "tracepoint",
    "raw_tracepoint": "tracepoint",
    "syscall": "syscall",
    "lsm_hook": "lsm",
    "kfunc": "kfunc",
    "kconfig": "config",
}


def _dependency_url(dep) -> str | None:
    """The page that explains a `kernsurf check` dependency, if any."""
    segment = _DEPENDENCY_PAGES.get(dep.kind)
    if segment is None or dep.detail == "glob":
        return None
    name = dep.name.split(".")[0] if dep.kind == "field" else dep.name
    return f"/{segment}/{_segment(name)}"


# --------------------------------------------------------------------------- differences (issue 4's tables)


#: Functions first, then structs, unions, enums (an ORDER BY term; `c` is the changes alias).
_ITEM_ORDER = "CASE c.item_kind WHEN 'function' THEN 0 WHEN 'struct' THEN 1 WHEN 'union' THEN 2 ELSE 3 END"


def _has_diffs(tables):
    return {"diff_pairs", "changes", "change_kinds", "change_list"} <= tables


def _find_pair(conn, a, b):
    """(pair id, stored reversed?) of the computed pair of builds a and b, or None."""
    for x, y, rev in ((a, b, False), (b, a, True)):
        r = conn.execute("SELECT id FROM diff_pairs WHERE build_a = ? AND build_b = ?", (x, y)).fetchone()
        if r:
            return r[0], rev
    return None


def _stored_pairs(conn, ctx):
    builds = ctx["builds"]
    return [
        (builds[a]["name"], builds[b]["name"])
        for a, b in conn.execute(
            "SELECT build_a, build_b FROM diff_pairs ORDER BY group_id IS NULL, group_id, id"
        )
        if a in builds and b in builds
    ]


def _item_differences(conn, ctx, kinds, name_id):
    """Differences per group for one item (its change item kinds): None without
    diff tables; else per group, per pair, whether it was computed and its changes."""
    if not ctx["diffs"]:
        return None
    pair_changes = defaultdict(list)
    for pair, kind, change, detail, old, new in conn.execute(
        "SELECT c.pair_id, c.item_kind, c.change_kind, c.detail, c.old, c.new FROM change_list c"
        " LEFT JOIN change_kinds k ON k.name = c.change_kind"
        f" WHERE c.name_id = ? AND c.item_kind IN ({','.join('?' * len(kinds))})"
        " ORDER BY c.pair_id, k.position, c.detail",
        (name_id, *kinds),
    ):
        pair_changes[pair].append({"kind": kind, "change": change, "detail": detail, "old": old, "new": new})
    pair_ids = {(a, b): pid for pid, a, b in conn.execute("SELECT id, build_a, build_b FROM diff_pairs")}
    groups = []
    for group in ctx["groups"]:
        entries = []
        for _, member, base in Pages._pairs(group):
            if base is None:
                continue
            a, b = base["build"], member["build"]
            la, lb = base["label"], member["label"]
            pid = pair_ids.get((a["id"], b["id"]))
            if pid is None and (b["id"], a["id"]) in pair_ids:  # stored the other way round: show it so
                pid, a, b, la, lb = pair_ids[(b["id"], a["id"])], b, a, lb, la
            entries.append(
                {
                    "a": la,
                    "b": lb,
                    "computed": pid is not None,
                    "changes": pair_changes.get(pid, []),
                    "url": f"/diff/{_segment(a['name'])}/{_segment(b['name'])}",
                }
            )
        groups.append({"name": group["name"], "pairs": entries})
    return groups


# --------------------------------------------------------------------------- charts (inline SVG data)


def _matrix_picture(columns, rows):
    """Geometry of the matrix as an SVG picture: a row per name, a column per
    build, groups separated by a gap."""
    cell_w, cell_h, gap, group_gap = 30, 20, 2, 8
    left = min(320, 16 + 7.5 * max((len(r["name"]) for r in rows), default=4))
    top = 14 + 7 * max((len(c["label"]) for c in columns), default=4)
    xs, x = [], left
    for k, c in enumerate(columns):
        if c["first"] and k:
            x += group_gap
        xs.append(x)
        x += cell_w + gap
    heads = [
        {"x": xs[k] + cell_w / 2 + 4, "y": top - 6, "label": c["label"], "title": c["build"]["name"]}
        for k, c in enumerate(columns)
    ]
    out_rows = []
    for i, r in enumerate(rows):
        y = top + i * (cell_h + gap)
        out_rows.append(
            {
                "y": y,
                "name": r["name"],
                "kind": r["kind"],
                "cells": [
                    {
                        "x": xs[k],
                        "fill": COLOURS[c["cls"]],
                        "letters": c["letters"],
                        "title": c["title"],
                        "ink": "#fff" if c["cls"] == "F" else "#111",
                    }
                    for k, c in enumerate(r["cells"])
                ],
            }
        )
    return {
        "width": round(x + 4),
        "height": round(top + len(rows) * (cell_h + gap) + 4),
        "left": left,
        "cell_w": cell_w,
        "cell_h": cell_h,
        "heads": heads,
        "rows": out_rows,
    }


CHART_SERIES = [
    ("plain", "No inline", "#5cb85c"),
    ("selective", "Selective inline", "#f2c94c"),
    ("full", "Full inline", "#d9534f"),
    ("declared", "Declared only", "#9e9e9e"),
]


def _summary_chart(rows):
    """Geometry of a stacked horizontal bar per build: functions by inline status."""
    width, label_w, bar_h, gap = 720, 170, 22, 10
    top = 34
    biggest = max((r["functions"] for r in rows), default=0) or 1
    scale = (width - label_w - 70) / biggest
    bars = []
    for k, r in enumerate(rows):
        y = top + k * (bar_h + gap)
        x = label_w
        parts = []
        for key, label, colour in CHART_SERIES:
            w = r[key] * scale
            parts.append(
                {
                    "x": round(x, 1),
                    "w": round(w, 1),
                    "colour": colour,
                    "title": f"{r['build']['name']}: {label} {r[key]:,}",
                }
            )
            x += w
        bars.append(
            {
                "y": y,
                "label": r["build"]["name"],
                "parts": parts,
                "total": r["functions"],
                "end": round(x + 6, 1),
            }
        )
    legend, x = [], label_w
    for key, label, colour in CHART_SERIES:
        legend.append({"x": x, "label": label, "colour": colour})
        x += 24 + 8 * len(label)
    return {
        "width": width,
        "height": top + len(rows) * (bar_h + gap) + 4,
        "bar_h": bar_h,
        "bars": bars,
        "legend": legend,
        "label_w": label_w,
    }


BAR_SERIES = [
    ("transformed", "Transformed", "#56a0d3"),
    ("collisions", "Collisions", "#f0883e"),
    ("duplicates", "Duplicates", "#b07cc6"),
    ("selective", "Selective inline", "#f2c94c"),
]


def _summary_bars(rows):
    """Geometry of grouped vertical bars: per metric, one bar per build."""
    n = max(len(rows), 1)
    bar_w = max(8, min(36, 160 // n))
    group_w = n * bar_w + 30
    height, top, bottom = 240, 20, 40
    biggest = max((r[k] for r in rows for k, _, _ in BAR_SERIES), default=0) or 1
    scale = (height - top - bottom) / biggest
    groups = []
    for g, (key, label, colour) in enumerate(BAR_SERIES):
        x0 = 50 + g * group_w
        bars = []
        for k, r in enumerate(rows):
            h = r[key] * scale
            bars.append(
                {
                    "x": x0 + k * bar_w,
                    "y": round(height - bottom - h, 1),
                    "h": round(h, 1),
                    "w": bar_w - 2,
                    "colour": colour,
                    "opacity": 0.55 + 0.45 * (k + 1) / n,
                    "title": f"{r['build']['name']}: {label} {r[key]:,}",
                    "value": r[key],
                }
            )
        groups.append({"label": label, "x": x0 + (n * bar_w) / 2, "bars": bars})
    return {
        "width": 50 + len(BAR_SERIES) * group_w,
        "height": height,
        "base": height - bottom,
        "groups": groups,
        "max": biggest,
    }
