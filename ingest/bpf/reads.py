"""Query results one `kernsurf check` evaluation asks for again, for another
build or dependency (whether any build has a function, a build's module
count, a module's chain, the builds that compile a unit): each read once."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Reads:
    """Read-layer queries (ingest.queries) on `conn`, each answer kept by its
    arguments. The answers are shared: callers must not change them."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self._answers: dict[Hashable, Any] = {}

    def __call__(
        self, query: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        key = (query, args, tuple(kwargs.items()))
        if key not in self._answers:
            self._answers[key] = query(self.conn, *args, **kwargs)
        answer: T = self._answers[key]
        return answer
