"""Read a kernel .config (the `boot/config-<release>` file a package ships)."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.errors import BadConfig

_SET = re.compile(r"(CONFIG_[A-Za-z0-9_]+)=(.*)")
_UNSET = re.compile(r"# (CONFIG_[A-Za-z0-9_]+) is not set")


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X -> value as written ("y", "m", "0x1000", "\"str\""); "is not set" -> "n"."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        if m := _SET.fullmatch(line.strip()):
            options[m.group(1)] = m.group(2)
        elif m := _UNSET.fullmatch(line.strip()):
            options[m.group(1)] = "n"
    return options


def read_config(path: Path) -> dict[str, str]:
    """parse_config() of a file; BadConfig when it has no CONFIG_ line at all."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise BadConfig(f"{path}: cannot read ({exc.strerror})") from None
    options = parse_config(text)
    if not options:
        raise BadConfig(f"{path}: not a kernel config (no CONFIG_ lines)")
    return options
