"""`ks`, the object kernsurf's templates call: one async method per page that
runs the page builder in Datasette's SQL thread under `sql_time_limit_ms`,
caching the pages of an immutable database in memory."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Hashable
from typing import TypeVar
from urllib.parse import urlencode

from datasette.app import Datasette
from datasette.database import Database
from datasette.utils import sqlite_timelimit

from ingest.queries.changes import ChangeFilter
from ingest.web import check, diff, items, modules, overview
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
            ("function", name), lambda conn: items.function_page(conn, self.context(conn), self.links, name)
        )

    async def struct(self, name: str) -> Page:
        name = decode(name)
        return await self._run(
            ("struct", name), lambda conn: items.struct_page(conn, self.context(conn), self.links, name)
        )

    async def module(self, name: str) -> Page:
        name = decode(name)
        return await self._run(
            ("module", name), lambda conn: modules.module_page(conn, self.context(conn), self.links, name)
        )

    async def surface(self, kind: str, name: str) -> Page:
        name = decode(name)
        if kind not in items.SURFACES:
            return {"kind": kind, "name": name, "found": False, "known_kind": False}
        return await self._run(
            (kind, name), lambda conn: items.surface_page(conn, self.context(conn), self.links, kind, name)
        )

    async def diff(self, build_a: str, build_b: str, request: object | None) -> Page:
        args = getattr(request, "args", {})
        only = ChangeFilter(
            item=args.get("item") or None, change=args.get("change") or None, name=args.get("q") or None
        )
        page = diff.page_number(args.get("page"))
        a, b = decode(build_a), decode(build_b)
        return await self._run(
            ("diff", a, b, *only, page),
            lambda conn: diff.diff_page(conn, self.context(conn), self.links, a, b, only, page),
        )

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

    async def check(self, text: str | None, group: str | None, files: list[tuple[str, bytes]]) -> Page:
        """`kernsurf check` of dependency lines and uploaded BPF objects [(filename, bytes)]."""
        out, deps = check.check_form(text, group, files)
        if not deps:
            return out
        try:
            out.update(
                await self._run(
                    ("check", tuple(deps), group), lambda conn: check.check_report(conn, deps, group)
                )
            )
        except LookupError as exc:
            errors = out["errors"]
            assert isinstance(errors, list)
            errors.append(str(exc.args[0]))
        return out
