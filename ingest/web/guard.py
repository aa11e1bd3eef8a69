"""What keeps one request from freezing a served database (docs/serving.md#limits).

- Lanes: at most N requests of a heavy kind at a time -- /check uploads being
  read, /check evaluations, Datasette requests carrying ad-hoc SQL -- so that they
  cannot take every SQL thread; the others wait for a slot, then get a 503.
- ``Serving``: the limits and the profile, from metadata's ``plugins.kernsurf.serving``
  (``kernsurf serve`` writes them there).
- ``wrap``: the ASGI layer: 405 for writes, and with ``public`` the ``/-/``
  information endpoints off and security headers on every response.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from datasette.app import Datasette

from ingest.errors import CheckRefused
from ingest.web import forms
from ingest.web.check import MAX_GLOB_MATCHES
from ingest.web.uploads import NOT_MULTIPART, Budget

ASGIApp = Callable[[dict, Any, Any], Awaitable[None]]

#: Headers of every response of a public server. The pages (and Datasette's) carry
#: inline scripts and styles, hence 'unsafe-inline'; everything else is this origin only.
SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
        b" img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self';"
        b" frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
#: /-/ paths a public server still serves: the stylesheets and scripts of the pages.
PUBLIC_PATHS = ("/-/static/", "/-/static-plugins/")
#: The paths that take POST.
CHECK_PATHS = ("/check", "/check.json")
#: Query arguments that make a Datasette request run SQL the client wrote, or stream a whole table.
AD_HOC_ARGS = ("sql", "_where", "_stream")


class Serving(NamedTuple):
    """The serving profile and its limits (metadata: plugins.kernsurf.serving)."""

    public: bool = False  # /-/ information endpoints off, security headers on
    upload_slots: int = 2  # /check uploads read at a time (child processes)
    check_slots: int = 1  # /check evaluations at a time (SQL threads they hold)
    sql_slots: int = 1  # requests with ad-hoc SQL or CSV streams (?sql=, ?_where=, ?_stream=) at a time
    wait_seconds: float = 10.0  # how long a request waits for its slot before its 503
    max_glob_matches: int = MAX_GLOB_MATCHES  # symbols a /check glob may match in a build
    budget: Budget = Budget()


def serving(datasette: Datasette) -> Serving:
    """The Serving of a Datasette: defaults, then metadata's plugins.kernsurf.serving."""
    given = dict((datasette.plugin_config("kernsurf") or {}).get("serving") or {})
    budget = Budget(**{k: given.pop(k) for k in list(given) if k in Budget._fields})
    return Serving(**{k: v for k, v in given.items() if k in Serving._fields}, budget=budget)


class Lane:
    """At most `slots` requests of one kind at a time; `acquire` waits up to `wait` s."""

    def __init__(self, what: str, slots: int, wait: float):
        self.what, self.slots, self.wait = what, max(1, slots), wait
        self.semaphore = asyncio.Semaphore(self.slots)

    async def __aenter__(self) -> Lane:
        try:
            await asyncio.wait_for(self.semaphore.acquire(), timeout=self.wait)
        except TimeoutError:
            raise CheckRefused(
                f"busy: {self.slots} {self.what} at a time, and no slot came free within"
                f" {self.wait:g} s; retry in a few seconds",
                503,
            ) from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.semaphore.release()


class Lanes:
    """The lanes of one served Datasette."""

    def __init__(self, settings: Serving):
        self.uploads = Lane("/check uploads", settings.upload_slots, settings.wait_seconds)
        self.checks = Lane("/check evaluations", settings.check_slots, settings.wait_seconds)
        self.sql = Lane("ad-hoc SQL queries", settings.sql_slots, settings.wait_seconds)


async def send_text(send: Any, status: int, text: str, headers: tuple = (), as_json: bool = False) -> None:
    """A one-line response: text/plain, or {"errors": [text]} `as_json`."""
    _, content_type, body = refusal(CheckRefused(text, status), as_json)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


def _ad_hoc(scope: dict, databases: Any) -> bool:
    """Whether a request runs SQL of the client's (a database path with ?sql= or ?_where=)
    or streams a whole table as CSV (?_stream=)."""
    path = scope.get("path", "")
    head = path[1:].split("/", 1)[0].split(".", 1)[0]
    if head not in databases:
        return False
    args = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return any(a in args for a in AD_HOC_ARGS)


def wrap(app: ASGIApp, datasette: Datasette, lanes: Callable[[], Lanes]) -> ASGIApp:
    """The ASGI layer of docs/serving.md#limits over a Datasette app."""
    settings = serving(datasette)

    async def guarded(scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        path = scope.get("path", "")
        if scope.get("method", "GET") not in ("GET", "HEAD") and path not in CHECK_PATHS:
            await send_text(
                send, 405, "this server is read-only: only /check takes POST", ((b"allow", b"GET, HEAD"),)
            )
            return
        if settings.public:
            if path.startswith("/-/") and not path.startswith(PUBLIC_PATHS):
                await send_text(send, 404, "not found: a public server does not serve /-/ pages")
                return
            send = _with_headers(send)
        if path in CHECK_PATHS and scope.get("method") == "POST":
            refused = _refuse_upload(scope)
            if refused:
                await send_text(send, *refused, as_json=path.endswith(".json"))
                return
            receive = _bounded(receive, settings.budget.max_bytes)
        if _ad_hoc(scope, datasette.databases):
            try:
                async with lanes().sql:
                    await app(scope, receive, send)
            except CheckRefused as exc:
                await send_text(send, exc.status, str(exc), ((b"retry-after", b"5"),))
            return
        await app(scope, receive, send)

    return guarded


def _refuse_upload(scope: dict) -> tuple[int, str] | None:
    """(status, line) refusing a /check POST from its headers alone, before anything
    reads its body (Datasette's CSRF layer, given a cookie, reads a whole
    urlencoded body into memory): too large, or not multipart/form-data."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    refused = forms.too_large(headers.get("content-length"))
    if refused:
        return 413, refused
    if forms.boundary(headers.get("content-type", "")) is None:
        return 400, NOT_MULTIPART
    return None


def _bounded(receive: Any, limit: int) -> Any:
    """`receive` that ends the body (as a disconnect) once more than `limit` bytes
    came through: whoever reads it holds at most `limit` bytes and one chunk."""
    seen = [0]

    async def bounded() -> dict:
        if seen[0] > limit:
            return {"type": "http.disconnect"}
        message = await receive()
        seen[0] += len(message.get("body", b""))
        return message

    return bounded


def _with_headers(send: Any) -> Any:
    async def send_with_headers(message: dict) -> None:
        if message["type"] == "http.response.start":
            names = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_with_headers


def refusal(exc: CheckRefused, as_json: bool) -> tuple[int, str, str]:
    """(status, content type, body) of a refused /check request: one line of text,
    or {"errors": [that line]} for /check.json."""
    if as_json:
        return exc.status, "application/json", json.dumps({"errors": [str(exc)]})
    return exc.status, "text/plain; charset=utf-8", str(exc) + "\n"


def authorizer(action: int, arg1: str | None, *rest: object) -> int:
    """A public server's SQLite authorizer: `pragma database_list` would show the
    file's absolute path; every other statement is allowed (read-only anyway)."""
    if action == sqlite3.SQLITE_PRAGMA and arg1 == "database_list":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


async def no_attached_databases() -> list:
    """Database.attached_databases of a public server, which never attaches any
    (Datasette asks SQLite with `PRAGMA database_list`, which the authorizer denies)."""
    return []
