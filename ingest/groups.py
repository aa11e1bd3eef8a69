"""The comparison rule of build groups, in one place.

A group is an ordered list of builds of one of two kinds:

- a *series* (successive versions): each member is compared with the one before it;
- *variants* (one version across arches or flavours): the first member is the
  baseline and every other member is compared with it.

The manifest, the stored diff pairs, `kernsurf check`'s "changed since" column and
the pages' Differences sections all ask this module which member a member is
compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar

GroupKind = Literal["series", "variants"]
KINDS: tuple[GroupKind, ...] = ("series", "variants")

T = TypeVar("T")


def compared_with(kind: str, members: Sequence[T], index: int) -> T | None:
    """The member `members[index]` is compared with, or None when it is the first."""
    if index == 0:
        return None
    return members[0] if kind == "variants" else members[index - 1]


def baseline(kind: str, members: Sequence[T]) -> T | None:
    """The member every other member is compared with: the first of variants; None for a series."""
    return members[0] if kind == "variants" and members else None


def comparisons(kind: str, members: Sequence[T]) -> list[tuple[T, T | None]]:
    """(member, the member it is compared with) for every member, in order."""
    return [(m, compared_with(kind, members, k)) for k, m in enumerate(members)]


def pairs(kind: str, members: Sequence[T]) -> list[tuple[T, T]]:
    """(older or baseline, member) for every member that is compared with another."""
    return [(before, m) for m, before in comparisons(kind, members) if before is not None]
