"""Files of a running kernel below /sys and /proc (or a copy of them): the raw
ELF notes of `/sys/kernel/notes` and a module's `notes/.note.gnu.build-id`,
the config (`/boot/config-<release>`, `/proc/config.gz`), short text files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path


def read_text(path: Path) -> str | None:
    """The stripped text of a small file, None when unreadable."""
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def read_build_id(path: Path) -> str | None:
    """The GNU build-id of `/sys/kernel/notes` (the kernel's ELF notes, raw), None when absent."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    offset = 0
    while offset + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from("=III", data, offset)  # the running kernel's byte order
        name_at = offset + 12
        desc_at = name_at + (namesz + 3) // 4 * 4
        end = desc_at + (descsz + 3) // 4 * 4
        if end > len(data):
            return None
        if kind == 3 and data[name_at : name_at + namesz].rstrip(b"\0") == b"GNU":
            return data[desc_at : desc_at + descsz].hex()
        offset = end
    return None


def config_text(root: Path, release: str | None) -> tuple[str, str] | None:
    """The running kernel's config text and where it came from: `/boot/config-<release>`,
    else `/proc/config.gz`; None when neither is there."""
    boot = root / f"boot/config-{release}"
    if release and boot.is_file():
        return boot.read_text(errors="replace"), f"/boot/config-{release}"
    try:
        text = gzip.decompress((root / "proc/config.gz").read_bytes()).decode(errors="replace")
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    return text, "/proc/config.gz"
