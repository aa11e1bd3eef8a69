"""kernsurf's Datasette hooks; the pages themselves are built by ingest.web.

Hooks: register_routes (the pages and /check), extra_template_vars (`ks`, an
ingest.web.site.Pages), prepare_jinja2_environment (the `path` filter for URL
segments), prepare_connection (the SQL function `ks_status` of canned queries; a
public server's authorizer), startup (the forkserver reading /check uploads),
canned_queries (metadata.yml's `plugins.kernsurf.conditional_queries` whose tables
exist) and asgi_wrapper (the old function_status canned-query URL redirects to
function_builds, now that the name belongs to the view alone; the limits of
ingest.web.guard around everything).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from datasette import hookimpl
from datasette.app import Datasette
from datasette.utils.asgi import Request, Response

from ingest.errors import CheckRefused
from ingest.join import classify
from ingest.queries import database as database_q
from ingest.web import guard, uploads
from ingest.web.context import segment
from ingest.web.site import Pages

#: Pages served by their own route: the same templates Datasette would find
#: as custom pages, without first trying (and failing) its database routes.
PAGE_ROUTES = [
    (r"^/function/(?P<name>[^/]+)$", "pages/function/{name}.html"),
    (r"^/struct/(?P<name>[^/]+)$", "pages/struct/{name}.html"),
    (r"^/type/(?P<name>[^/]+)$", "pages/type.html"),
    (r"^/module/(?P<name>[^/]+)$", "pages/module.html"),
    (r"^/diff/(?P<build_a>[^/]+)/(?P<build_b>[^/]+)$", "pages/diff/{build_a}/{build_b}.html"),
    (r"^/search$", "pages/search.html"),
    (r"^/builds$", "pages/builds.html"),
    (r"^/matrix$", "pages/matrix.html"),
    (r"^/(?P<kind>tracepoint|syscall|lsm|kfunc|config)/(?P<name>[^/]+)$", "pages/surface.html"),
    # libbpf's spelling, system/event: the page redirects to /tracepoint/<event>
    (r"^/(?P<kind>tracepoint)/(?P<name>[^/]+/[^/]+)$", "pages/surface.html"),
]
#: Canned queries renamed because they shadowed a view: old name -> new name.
RENAMED_QUERIES = {"function_status": "function_builds"}

_instances: weakref.WeakKeyDictionary[Datasette, Pages] = weakref.WeakKeyDictionary()
_instances_lock = threading.Lock()


def _pages(datasette: Datasette) -> Pages:
    with _instances_lock:
        pages = _instances.get(datasette)
        if pages is None:
            pages = _instances[datasette] = Pages(datasette)
        return pages


@hookimpl
def extra_template_vars(view_name: str, datasette: Datasette) -> dict[str, Pages] | None:
    if view_name in ("page", "index"):
        return {"ks": _pages(datasette)}
    return None


@hookimpl
def register_routes() -> list[tuple[str, Callable[..., Awaitable[Response]]]]:
    return [(regex, _page_view(template)) for regex, template in PAGE_ROUTES] + [
        (r"^/check(?P<format>\.json)?$", _check_view)
    ]


def _page_view(template: str) -> Callable[[Datasette, Request], Awaitable[Response]]:
    async def view(datasette: Datasette, request: Request) -> Response:
        headers: dict[str, str] = {}
        status = [200]

        def custom_header(name: str, value: str) -> str:
            headers[name] = value
            return ""

        def custom_status(code: int) -> str:
            status[0] = code
            return ""

        redirect: list[str] = []

        def custom_redirect(location: str) -> str:
            """Datasette's custom-page redirect; the request's query string goes along."""
            query = request.query_string
            redirect.append(location + (f"?{query}" if query and "?" not in location else ""))
            return ""

        context = {
            **request.url_vars,
            "custom_header": custom_header,
            "custom_status": custom_status,
            "custom_redirect": custom_redirect,
        }
        try:
            body = await datasette.render_template(template, context, request=request, view_name="page")
        except Exception as exc:
            if not _interrupted(exc):
                raise
            limit = datasette.setting("sql_time_limit_ms")
            return Response.text(
                f"this page took more than {limit} ms of SQL (sql_time_limit_ms); reload it in a moment,"
                " or narrow it (a diff page's item, change and name filters)",
                status=503,
                headers={"retry-after": "5"},
            )
        if redirect:
            return Response.redirect(redirect[0], status=302, headers=headers)
        return Response.html(body, status=status[0], headers=headers)

    return view


def _interrupted(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it was raised from, is SQLite stopping a
    query at the time limit (the template engine may wrap what a page raised)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, sqlite3.OperationalError) and "interrupted" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


async def _check_view(datasette: Datasette, request: Request) -> Response:
    """/check: a form (dependency lines, or BPF objects uploaded) and the matrix of
    `kernsurf check`; /check.json: the same report as JSON. GET takes `deps` (one
    kind:name per line) and `group`; POST the same as multipart fields plus `object` files.
    A request over a limit (ingest.web.guard) gets one line saying which."""
    as_json = bool(request.url_vars.get("format"))
    fields = {k: request.args.get(k) for k in request.args.keys()}
    objects: list = []
    pages = _pages(datasette)
    try:
        if request.method == "POST":  # its headers passed ingest.web.guard
            form = await pages.upload(request.receive, request.headers.get("content-type", ""))
            fields.update(form.texts)
            objects = form.objects
            if not objects and not (fields.get("deps") or "").strip():
                raise CheckRefused(
                    "nothing to check: upload a compiled BPF object (field `object`)"
                    " or give dependencies (field `deps`)",
                    400,
                )
        result = await pages.check(fields.get("deps", ""), fields.get("group") or None, objects)
    except CheckRefused as exc:
        status, content_type, body = guard.refusal(exc, as_json)
        return Response(body, status=status, content_type=content_type)
    status = 400 if result["errors"] and not result["report"] else 200
    if as_json:
        report = result["report"] or {}
        assert isinstance(report, dict)
        keys = ("errors", "warnings", "link")
        return Response.json({**{k: result[k] for k in keys}, **report}, status=status)
    body = await datasette.render_template(
        "pages/check.html", {"c": result}, request=request, view_name="page"
    )
    return Response.html(body, status=status)


@hookimpl
def prepare_jinja2_environment(env: Any) -> None:
    env.filters["path"] = segment


def _sql_status(
    collision: str | None, inline: str | None, suffixes: str | None, present: object, has_dwarf: object
) -> str:
    """SQL ks_status(): the status line of docs/concepts.md#function-status for one build."""
    return classify.build_status(collision, inline, (suffixes or "").split(), bool(present), has_dwarf != 0)


@hookimpl
def prepare_connection(conn: Any, datasette: Datasette) -> None:
    conn.create_function("ks_status", 5, _sql_status, deterministic=True)
    if _pages(datasette).serving.public:
        conn.set_authorizer(guard.authorizer)


@hookimpl
def startup(datasette: Datasette) -> Callable[[], Awaitable[None]]:
    """Start the forkserver that reads /check uploads, so that the first upload does
    not wait for it; a public server reports no attached databases (guard.authorizer)."""

    async def inner() -> None:
        if _pages(datasette).serving.public:
            for database in datasette.databases.values():
                database.attached_databases = guard.no_attached_databases
        await asyncio.get_running_loop().run_in_executor(None, uploads.warm)

    return inner


@hookimpl
def canned_queries(datasette: Datasette, database: str) -> Callable[[], Awaitable[dict]] | None:
    """metadata.yml's conditional queries: offered when their `requires` tables (or
    views) exist and their `nonempty` tables hold rows, else `otherwise`."""
    wanted = (datasette.plugin_config("kernsurf") or {}).get("conditional_queries") or {}
    if not wanted or database not in datasette.databases:
        return None

    async def inner() -> dict:
        db = datasette.get_database(database)
        tables = set(await db.table_names()) | set(await db.view_names())
        out = {}
        for name, q in wanted.items():
            base = {k: v for k, v in q.items() if k not in ("requires", "nonempty", "otherwise")}
            ok = set(q.get("requires", ())) | set(q.get("nonempty", ())) <= tables
            for table in q.get("nonempty", ()) if ok else ():
                ok = ok and (await db.execute(database_q.nonempty_sql(table))).first()[0]
            if ok:
                out[name] = base
            elif q.get("otherwise"):
                out[name] = {**base, **q["otherwise"]}
        return out

    return inner


@hookimpl
def asgi_wrapper(datasette: Datasette) -> Callable[[Any], Any]:
    """/<db>/function_status(.json|.csv)?name=... was a canned query: redirect it to
    its new name (without `name` it is the function_status view, served as before);
    around it, the limits of ingest.web.guard (405 for writes, ad-hoc SQL lane, public profile)."""

    def wrap(app: Any) -> Any:
        async def redirect_renamed(scope: dict, receive: Any, send: Any) -> None:
            target = _renamed_target(scope) if scope.get("type") == "http" else None
            if target is None:
                await app(scope, receive, send)
                return
            await Response.redirect(target).asgi_send(send)

        return guard.wrap(redirect_renamed, datasette, lambda: _pages(datasette).lanes)

    return wrap


def _renamed_target(scope: dict) -> str | None:
    """The new URL of a request for a renamed canned query, else None."""
    parts = scope.get("path", "").split("/")
    if len(parts) != 3 or not parts[1]:
        return None
    query, dot, fmt = parts[2].partition(".")
    query_string = scope.get("query_string", b"").decode("latin-1")
    if query not in RENAMED_QUERIES or "name" not in parse_qs(query_string, keep_blank_values=True):
        return None
    return f"/{parts[1]}/{RENAMED_QUERIES[query]}{dot}{fmt}?{query_string}"
