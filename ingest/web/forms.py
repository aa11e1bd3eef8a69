"""Form input of the /check page: multipart/form-data bodies and their limits."""

from __future__ import annotations

import re

from ingest.errors import CheckRefused

MAX_UPLOAD = 32 << 20  # bytes of one /check POST body
MAX_PARTS = 80  # form parts of one /check POST (objects and text fields)
MAX_OBJECTS = 64  # BPF objects of one /check POST (libbpf-tools has 52)

#: A form field: text, or an uploaded file as (filename, bytes).
FormValue = str | tuple[str, bytes]


def too_large(content_length: str | None) -> str | None:
    """Why a request body of this Content-Length is refused (None: it is not)."""
    try:
        length = int(content_length or 0)
    except ValueError:
        return f"bad Content-Length {content_length[:40]!r}"  # type: ignore[index]
    if length > MAX_UPLOAD:
        return f"upload too large: {length} bytes (at most {MAX_UPLOAD})"
    return None


def boundary(content_type: str) -> str | None:
    """The boundary of a multipart/form-data Content-Type, None for any other type."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/form-data") or not match:
        return None
    return match.group(1)


def multipart(content_type: str, body: bytes, max_parts: int = MAX_PARTS) -> dict[str, FormValue]:
    """Fields of a multipart/form-data body: text fields as str, files as
    (filename, bytes); several values of one field get keys field, field#2, ...
    A file field left empty is kept as (filename, b"") for the caller to report.
    Raises CheckRefused past `max_parts` parts. Linear in the body: each name
    keeps its own count (restarting at 1 for each part, 6 000 parts took 8.5 s)."""
    sep = boundary(content_type)
    if sep is None:
        return {}
    out: dict[str, FormValue] = {}
    counts: dict[str, int] = {}
    parts = body.split(b"--" + sep.encode(), max_parts + 1)[1:]
    if len(parts) > max_parts and parts[-1].strip(b"-\r\n"):
        raise CheckRefused(f"too many form parts: more than {max_parts} (at most {max_parts})", 413)
    for part in parts:
        raw_head, found, content = part.partition(b"\r\n\r\n")
        if not found:
            continue
        head = raw_head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', head)
        if name is None:
            continue
        content = content[:-2] if content.endswith(b"\r\n") else content
        filename = re.search(r'\bfilename="([^"]*)"', head)
        field = name.group(1)
        k = counts.get(field, 0) + 1
        key = field if k == 1 else f"{field}#{k}"
        while key in out:  # a field literally named "x#2" came first
            k += 1
            key = f"{field}#{k}"
        counts[field] = k
        if filename is None:
            out[key] = content.decode("utf-8", "replace")
        else:
            out[key] = (filename.group(1) or "upload.bpf.o", content)
    return out


def uploads(form: dict[str, FormValue], field: str = "object") -> list[tuple[str, bytes]]:
    """The files uploaded under `field` (field, field#2, ...)."""
    return [v for k, v in form.items() if k.split("#")[0] == field and isinstance(v, tuple)]


def texts(form: dict[str, FormValue]) -> dict[str, str]:
    """The text fields of a form."""
    return {k: v for k, v in form.items() if isinstance(v, str)}
