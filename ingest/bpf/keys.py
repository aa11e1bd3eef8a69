"""A dependency before the programs that need it are known: what the object
reader collects per use (ingest.bpf.objects turns them into Dependency rows)."""

from __future__ import annotations

from typing import NamedTuple


class Key(NamedTuple):
    """The fields of ingest.bpf.objects.Dependency but its programs."""

    kind: str
    name: str
    attach: str | None
    detail: str | None
    local: str | None = None  # Dependency.local
    members: tuple[tuple[Key, ...], ...] = ()  # Dependency.members (kind "alternatives")
