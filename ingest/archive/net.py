"""HTTP with urllib: opening URLs with domain errors, and a hashing reader."""

from __future__ import annotations

import hashlib
import http.client
import io
import urllib.error
import urllib.request
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING, BinaryIO

from ingest.errors import MirrorError, TruncatedDownload

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

USER_AGENT = "kernsurf/0.1 (+python-urllib)"
TIMEOUT = 60.0

#: Called as progress(done_bytes, total_bytes).
Progress = Callable[[int, int], None]


def open_url(
    url: str,
    *,
    if_modified_since: float | None = None,
    timeout: float = TIMEOUT,
    extra_headers: dict[str, str] | None = None,
) -> http.client.HTTPResponse | None:
    """Open `url` for streaming; None when the server says 304 Not Modified.

    Raises MirrorError (with `.url` and `.status`) for HTTP errors and for
    mirrors that cannot be reached.
    """
    headers = {"User-Agent": USER_AGENT, **(extra_headers or {})}
    if if_modified_since is not None:
        headers["If-Modified-Since"] = formatdate(if_modified_since, usegmt=True)
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304:
            return None
        raise MirrorError(
            f"{url}: HTTP {exc.code} {exc.reason}; check the mirror URL, suite and package (or refresh the index)",
            url,
            exc.code,
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MirrorError(
            f"{url}: mirror unreachable ({reason}); check the network or pass another mirror", url
        ) from None


def read_url(url: str, *, if_modified_since: float | None = None, timeout: float = TIMEOUT) -> bytes | None:
    """The whole body of `url` (None on 304); see open_url for errors."""
    resp = open_url(url, if_modified_since=if_modified_since, timeout=timeout)
    if resp is None:
        return None
    with resp:
        try:
            return resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise TruncatedDownload(f"{url}: download interrupted ({exc}); run the command again") from None


class HashingReader(io.RawIOBase):
    """Wraps a response: hashes and counts every byte read, reports progress.

    Raises TruncatedDownload when the stream ends (or breaks) before
    `expected` bytes.
    """

    def __init__(
        self,
        raw: BinaryIO,
        expected: int,
        url: str,
        progress: Progress | None = None,
        offset: int = 0,
        total: int | None = None,
    ):
        self._raw, self.expected, self.url = raw, expected, url
        self._progress, self._offset = progress, offset
        self._total = expected if total is None else total
        self.sha256 = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        if self.count >= self.expected:
            return 0
        view = memoryview(b)
        try:
            data = self._raw.read(min(len(view), self.expected - self.count))
        except (OSError, http.client.HTTPException) as exc:
            raise TruncatedDownload(
                f"{self.url}: download broke after {self.count} of {self.expected} bytes ({exc}); run the command again"
            ) from None
        if not data:
            raise TruncatedDownload(
                f"{self.url}: download stopped after {self.count} of {self.expected} bytes; run the command again"
            )
        n = len(data)
        view[:n] = data
        self.sha256.update(data)
        self.count += n
        if self._progress:
            self._progress(self._offset + self.count, self._total)
        return n

    def drain(self) -> None:
        """Read (without decompressing) up to `expected` bytes."""
        buf = bytearray(1 << 20)
        while self.count < self.expected:
            self.readinto(buf)
