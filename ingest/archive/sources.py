"""Which Debian mirror to use: argument, environment, the machine's APT sources, default."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from debian.deb822 import Deb822

DEFAULT_MIRROR = "http://deb.debian.org/debian"
ENV_MIRROR = "KERNSURF_DEBIAN_MIRROR"
DEBIAN_CODENAMES = frozenset(
    "buster bullseye bookworm trixie forky duke sid experimental "
    "oldoldstable oldstable stable testing unstable".split()
)
_ONE_LINE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)")


@dataclass(frozen=True)
class Mirror:
    """Base URLs of the main archive and of the security archive."""

    main: str
    security: str

    def base_for(self, suite: str) -> str:
        """Archive base URL that serves `suite`."""
        return self.security if suite.endswith("-security") else self.main


def security_for(main: str) -> str:
    """<mirror-root>/debian-security, where the root is `main` without a trailing /debian."""
    main = main.rstrip("/")
    root = main[: -len("/debian")] if main.endswith("/debian") else main
    return root + "/debian-security"


def _is_debian_suite(suite: str) -> bool:
    return suite.split("-", 1)[0].split("/", 1)[0] in DEBIAN_CODENAMES


def apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[tuple[str, str]]:
    """(uri, suite) pairs of the enabled `deb` lines of APT's sources, in APT's file order."""
    files = [etc_apt / "sources.list"]
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    pairs: list[tuple[str, str]] = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            for para in Deb822.iter_paragraphs(text.splitlines(), use_apt_pkg=False):
                if "deb" not in para.get("Types", "").split() or para.get("Enabled", "yes").lower() == "no":
                    continue
                for uri in para.get("URIs", "").split():
                    pairs += [(uri, suite) for suite in para.get("Suites", "").split()]
        else:
            for line in text.splitlines():
                if m := _ONE_LINE.match(line.split("#", 1)[0]):
                    pairs.append((m["uri"], m["suite"]))
    return [
        (u.rstrip("/"), s)
        for u, s in pairs
        if urlsplit(u).scheme in ("http", "https") and _is_debian_suite(s)
    ]


def mirror_for(mirror: str | Mirror | None = None, etc_apt: Path = Path("/etc/apt")) -> Mirror:
    """The mirror to use: `mirror`, else $KERNSURF_DEBIAN_MIRROR, else APT's sources, else deb.debian.org."""
    if isinstance(mirror, Mirror):
        return mirror
    chosen = mirror or os.environ.get(ENV_MIRROR)
    if chosen:
        return Mirror(chosen.rstrip("/"), security_for(chosen))
    pairs = apt_sources(etc_apt)
    main = next((u for u, s in pairs if not s.endswith("-security")), None)
    security = next((u for u, s in pairs if s.endswith("-security")), None)
    main = main or DEFAULT_MIRROR
    return Mirror(main, security or security_for(main))
