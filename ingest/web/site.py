"""`ks`, the object kernsurf's templates call: one async method per page that
runs the page builder in Datasette's SQL thread under `sql_time_limit_ms`,
caching the pages of an immutable database in memory."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar
from urllib.parse import urlencode

from datasette.app import Datasette
from datasette.database import Database
from datasette.utils import sqlite_timelimit

from ingest.errors import CheckRefused
from ingest.queries.changes import ChangeFilter
from ingest.web import check, diff, guard, items, modules, notfound, overview, typedefs, uploads
from ingest.web.cache import LRU
from ingest.web.context import Context, Links, Page, decode, load_context
from ingest.web.style import COLOURS, LEGEND

#: Pages of an immutable database kept in memory (KERNSURF_PAGE_CACHE=0 turns it off).
CACHE_SIZE = int(os.environ.get("KERNSURF_PAGE_CACHE", "512"))

T = TypeVar("T")


class Pages:
    """`ks` in templates: one async method per page, returning the template context."""

    legend = LEGEND
    colours = COLOURS
    decode = staticmethod(decode)

    def __init__(self, datasette: Datasette):
        self.datasette = datasette
        self.cache = LRU(CACHE_SIZE)
        self.contexts: dict[str, Context] = {}
        #: metadata.yml plugins.kernsurf.database, else Datasette's first database
        self.database: str | None = (datasette.plugin_config("kernsurf") or {}).get("database")
        self.links = Links(lambda query, fmt: self.datasette.urls.query(self.db_name, query, format=fmt))
        self.serving = guard.serving(datasette)
        self._lanes: guard.Lanes | None = None

    @property
    def db(self) -> Database:
        return self.datasette.get_database(self.database)

    @property
    def db_name(self) -> str:
        return self.db.name

    def url(self, query: str, fmt: str | None = None, **params: str | None) -> str:
        """URL of a canned query (or table) in `fmt` ("json", "csv") with parameters."""
        return self.links.url(query, fmt, **params)

    def data_links(self, query: str, **params: str | None) -> dict[str, str]:
        """{"json": ..., "csv": ..., "html": ...} for a canned query."""
        return self.links.data(query, **params)

    def cache_control(self) -> str:
        """Cache-Control value for custom pages: long for an immutable database."""
        if self.db.is_mutable:
            return "no-cache"
        return f"max-age={self.datasette.setting('default_cache_ttl')}"

    def query_string(self, params: dict[str, str | None], **more: str | None) -> str:
        """A URL query string from `params` and `more`, without empty values."""
        merged = {**params, **more}
        return urlencode({k: v for k, v in merged.items() if v not in (None, "")})

    def context(self, conn: sqlite3.Connection) -> Context:
        """Builds, groups and tables; kept for the life of an immutable database."""
        db = self.db
        if not db.is_mutable and db.name in self.contexts:
            return self.contexts[db.name]
        ctx = load_context(conn)
        if not db.is_mutable:
            self.contexts[db.name] = ctx
        return ctx

    async def _run(self, key: Hashable | None, build: Callable[[sqlite3.Connection], T]) -> T:
        """`build(conn)` in the SQL thread, cached by `key` for an immutable database."""
        db = self.db
        cacheable = key is not None and not db.is_mutable and CACHE_SIZE > 0
        if cacheable:
            hit = self.cache.get((db.name, key))
            if hit is not None:
                return hit  # type: ignore[return-value]
        limit = self.datasette.setting("sql_time_limit_ms")

        def run(conn: sqlite3.Connection) -> T:
            with sqlite_timelimit(conn, limit):
                return build(conn)

        result = await db.execute_fn(run)
        if cacheable:
            self.cache.put((db.name, key), result)
        return result

    async def function(self, name: str) -> Page:
        name = decode(name)
        return await self._run(
            ("function", name),
            lambda conn: notfound.suggest(
                conn,
                self.context(conn),
                items.function_page(conn, self.context(conn), self.links, name),
                "functions",
            ),
        )

    async def struct(self, name: str) -> Page:
        name = decode(name)
        return await self._run(
            ("struct", name),
            lambda conn: notfound.suggest(
                conn,
                self.context(conn),
                items.struct_page(conn, self.context(conn), self.links, name),
                "types",
            ),
        )

    async def typedef(self, name: str) -> Page:
        name = decode(name)
        return await self._run(
            ("typedef", name), lambda conn: typedefs.typedef_page(conn, self.context(conn), name)
        )

    async def module(self, name: str) -> Page:
        name = decode(name)
        return await self._run(
            ("module", name),
            lambda conn: notfound.suggest(
                conn,
                self.context(conn),
                modules.module_page(conn, self.context(conn), self.links, name),
                "modules",
            ),
        )

    async def surface(self, kind: str, name: str) -> Page:
        name = decode(name)
        if kind not in items.SURFACES:
            return {"kind": kind, "name": name, "found": False, "known_kind": False}
        return await self._run((kind, name), lambda conn: self._surface(conn, kind, name))

    def _surface(self, conn: sqlite3.Connection, kind: str, name: str) -> Page:
        """A surface page; for a tracepoint named the way perf or libbpf write it,
        a redirect to its page; for an unknown name, close names."""
        ctx = self.context(conn)
        page = items.surface_page(conn, ctx, self.links, kind, name)
        if not page["found"] and kind == "tracepoint" and items.SURFACES[kind].table in ctx.tables:
            page["redirect"] = notfound.tracepoint_redirect(conn, name)
        if page.get("redirect"):
            return page
        return notfound.suggest(conn, ctx, page, items.SURFACES[kind].table)

    async def diff(self, build_a: str, build_b: str, request: object | None) -> Page:
        args = getattr(request, "args", {})
        only = ChangeFilter(
            item=args.get("item") or None, change=args.get("change") or None, name=args.get("q") or None
        )
        page = diff.page_number(args.get("page"))
        a, b = decode(build_a), decode(build_b)
        return await self._run(("diff", a, b, *only, page), lambda conn: self._diff(conn, a, b, only, page))

    def _diff(self, conn: sqlite3.Connection, a: str, b: str, only: ChangeFilter, number: int) -> Page:
        """The diff page of two builds; for builds named by their group labels, a redirect."""
        ctx = self.context(conn)
        out = diff.diff_page(conn, ctx, self.links, a, b, only, number)
        if not out["known"]:
            out["redirect"] = notfound.diff_redirect(ctx, a, b)
        return out

    async def search(self, text: str | None, limit: int = overview.SEARCH_LIMIT) -> Page:
        text = (text or "").strip()
        if not text:
            return {"q": "", "results": [], "links": None}
        return await self._run(
            ("search", text, limit),
            lambda conn: overview.search_page(conn, self.context(conn), self.links, text, limit),
        )

    async def summary(self) -> Page:
        return await self._run(
            ("summary",), lambda conn: overview.summary_page(conn, self.context(conn), self.links)
        )

    async def matrix(self, text: str | None) -> Page:
        names = overview.split_names(text)[: overview.MAX_MATRIX_NAMES]
        if not names:
            return {"names": [], "rows": [], "legend": LEGEND}
        return await self._run(
            ("matrix", tuple(names)), lambda conn: overview.matrix_page(conn, self.context(conn), names)
        )

    @property
    def lanes(self) -> guard.Lanes:
        """The lanes of heavy requests (made in the event loop, on first use)."""
        if self._lanes is None:
            self._lanes = guard.Lanes(self.serving)
        return self._lanes

    async def upload(self, receive: uploads.Receive, content_type: str) -> uploads.ParsedUpload:
        """A /check POST body, received and read in a child process within the budget.
        Raises CheckRefused."""
        async with self.lanes.uploads:
            return await uploads.parse_upload(receive, content_type, self.serving.budget)

    async def check(self, text: str | None, group: str | None, objects: Sequence[check.ParsedObject]) -> Page:
        """`kernsurf check` of dependency lines and uploaded BPF objects (check.parse_objects),
        one at a time (Lanes.checks). Raises CheckRefused when a glob is too broad or
        the check outlasts sql_time_limit_ms."""
        out, deps = check.check_form(text, group, objects)
        if not deps:
            return out

        def report(conn: sqlite3.Connection) -> Page:
            refused = check.too_broad(conn, deps, self.serving.max_glob_matches)
            if refused:
                raise CheckRefused(refused, 422)
            return check.check_report(conn, deps, group)

        try:
            async with self.lanes.checks:
                out.update(await self._run(("check", tuple(deps), group), report))
        except LookupError as exc:
            errors = out["errors"]
            assert isinstance(errors, list)
            errors.append(str(exc.args[0]))
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                raise
            limit = self.datasette.setting("sql_time_limit_ms")
            raise CheckRefused(
                f"check took more than {limit} ms (sql_time_limit_ms): check fewer or narrower dependencies",
                503,
            ) from None
        return out
