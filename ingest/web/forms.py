"""Form input of the /check page: multipart/form-data bodies and their limits."""

from __future__ import annotations

import re

MAX_UPLOAD = 32 << 20  # bytes of BPF objects one /check POST may upload

#: A form field: text, or an uploaded file as (filename, bytes).
FormValue = str | tuple[str, bytes]


def too_large(content_length: str | None) -> str | None:
    """Why a request body of this Content-Length is refused (None: it is not)."""
    length = int(content_length or 0)
    if length > MAX_UPLOAD:
        return f"upload too large: {length} bytes (at most {MAX_UPLOAD})"
    return None


def multipart(content_type: str, body: bytes) -> dict[str, FormValue]:
    """Fields of a multipart/form-data body: text fields as str, files as
    (filename, bytes); several values of one field get keys field, field#2, ...
    A file field left empty is dropped."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or not match:
        return {}
    out: dict[str, FormValue] = {}
    for part in body.split(b"--" + match.group(1).encode())[1:]:
        raw_head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        head = raw_head.decode("utf-8", "replace")
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


def uploads(form: dict[str, FormValue], field: str = "object") -> list[tuple[str, bytes]]:
    """The files uploaded under `field` (field, field#2, ...)."""
    return [v for k, v in form.items() if k.startswith(field) and isinstance(v, tuple)]


def texts(form: dict[str, FormValue]) -> dict[str, str]:
    """The text fields of a form."""
    return {k: v for k, v in form.items() if isinstance(v, str)}
