"""/check uploads, off the event loop and within budgets.

The body is streamed to a temporary file as it arrives, its bytes counted
whatever Content-Length or chunked encoding say (`receive_body`); then a child
process reads it -- the multipart form, then each BPF object -- under a time
budget (killed when over) and a memory budget (RLIMIT_AS), and hands back the
text fields and the parsed objects (`parse_upload`). A thread could be bounded
in neither: one crafted object held the whole server for 22 s.

Children fork from a forkserver that has already imported the parser, so one
costs milliseconds, not an interpreter start.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from ingest.errors import CheckRefused
from ingest.web import forms
from ingest.web.check import ParsedObject, parse_objects

#: ASGI's receive()
Receive = Callable[[], Awaitable[dict[str, Any]]]

NOT_MULTIPART = (
    "send multipart/form-data: a field `object` per compiled BPF object and/or `deps`,"
    " one kind:name per line (curl -F object=@prog.bpf.o -F deps=kprobe:vmap URL)"
)


class Budget(NamedTuple):
    """What one /check upload may cost."""

    seconds: float = 10.0  # wall time of the child parsing it
    memory_mb: int = 512  # address space the child may add to what it starts with
    max_bytes: int = forms.MAX_UPLOAD
    max_parts: int = forms.MAX_PARTS
    max_objects: int = forms.MAX_OBJECTS
    receive_seconds: float = 60.0  # for the whole body to arrive


class ParsedUpload(NamedTuple):
    """A /check form: its text fields and its objects, read."""

    texts: dict[str, str]
    objects: list[ParsedObject]


async def receive_body(receive: Receive, dest: Any, budget: Budget) -> int:
    """Copy a request body from ASGI `receive` into the file `dest`; returns its
    size. Raises CheckRefused (413) past budget.max_bytes, (408) when it does not
    arrive within budget.receive_seconds, (400) when the client goes away."""
    total = 0
    deadline = time.monotonic() + budget.receive_seconds
    while True:
        left = deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
        except TimeoutError:
            raise CheckRefused(
                f"upload too slow: not received within {budget.receive_seconds:g} s (receive budget)", 408
            ) from None
        if message["type"] == "http.disconnect":
            raise CheckRefused("the client closed the connection before the upload ended", 400)
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > budget.max_bytes:
            raise CheckRefused(
                f"upload too large: more than {budget.max_bytes} bytes received (at most {budget.max_bytes})",
                413,
            )
        dest.write(chunk)
        if not message.get("more_body"):
            return total


def read_upload(path: str, content_type: str, budget: Budget) -> ParsedUpload:
    """The form in the file at `path` and its objects, read (in the child)."""
    form = forms.multipart(content_type, Path(path).read_bytes(), budget.max_parts)
    files = forms.uploads(form)
    if len(files) > budget.max_objects:
        raise CheckRefused(
            f"too many objects: {len(files)} uploaded (at most {budget.max_objects} per check)", 413
        )
    return ParsedUpload(forms.texts(form), parse_objects(files))


def _child(conn: Connection, path: str, content_type: str, budget: Budget) -> None:
    """The child process: limit its own memory, read the upload, send the outcome."""
    size = _address_space()
    limit = size + (budget.memory_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result: tuple = ("ok", read_upload(path, content_type, budget))
    except CheckRefused as exc:
        result = ("refused", str(exc), exc.status)
    except MemoryError:
        result = ("memory",)
    except RecursionError:
        result = ("refused", "upload could not be read: its types nest too deeply", 422)
    conn.send(result)
    conn.close()


def _address_space() -> int:
    """This process's virtual memory size in bytes (VmSize)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) << 10
    return 0


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingest.web.uploads"])
    return ctx


def warm() -> None:
    """Start the forkserver (about a second: it imports the parser once)."""
    from multiprocessing import forkserver

    _context()
    forkserver.ensure_running()


def read_in_child(path: str, content_type: str, budget: Budget) -> ParsedUpload:
    """read_upload of the form in the file at `path`, in a child process within
    `budget` (blocking: parse_upload runs it in a thread). Raises CheckRefused."""
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, path, content_type, budget), daemon=True)
    proc.start()
    sender.close()
    try:
        if not receiver.poll(budget.seconds):
            raise CheckRefused(
                f"upload not read within {budget.seconds:g} s (time budget): upload fewer or smaller objects",
                422,
            )
        try:
            result = receiver.recv()
        except (EOFError, OSError):
            result = ("died",)
    finally:
        receiver.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if result[0] == "ok":
        return result[1]
    if result[0] == "refused":
        raise CheckRefused(result[1], result[2])
    if result[0] == "memory":
        raise CheckRefused(
            f"upload needs more than {budget.memory_mb} MB to read (memory budget): upload fewer or smaller objects",
            422,
        )
    raise CheckRefused(
        f"upload could not be read: the reader stopped (exit code {proc.exitcode}), most likely over"
        f" its memory budget of {budget.memory_mb} MB",
        422,
    )


async def parse_upload(receive: Receive, content_type: str, budget: Budget) -> ParsedUpload:
    """Receive a /check POST body and read it in a child process within `budget`."""
    if forms.boundary(content_type) is None:
        raise CheckRefused(NOT_MULTIPART, 400)
    fd, path = tempfile.mkstemp(prefix="kernsurf-check-", suffix=".form")
    try:
        with os.fdopen(fd, "wb") as dest:
            await receive_body(receive, dest, budget)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, read_in_child, path, content_type, budget)
    finally:
        os.unlink(path)
