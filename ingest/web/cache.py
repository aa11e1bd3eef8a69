"""A small thread-safe LRU for the pages of immutable databases."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class LRU:
    """At most `size` values, the least recently used dropped first."""

    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict[Hashable, object] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self.lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: object) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)
