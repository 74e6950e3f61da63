"""What a store read or wrote last per customer, kept as objects for the next write."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    """What was read or written last per customer, at most ``most`` customers.

    ``generation`` counts commits: a read that a commit overtook does not put
    what it read in (it may be older than what the commit wrote).
    """

    def __init__(self, most: int) -> None:
        self._held: OrderedDict[str, T] = OrderedDict()
        self._most = most
        self._generation = 0
        self._lock = threading.Lock()

    def read(
        self, wanted: set[str], stored: Callable[[set[str]], dict[str, T]], keep: bool = True
    ) -> dict[str, T]:
        """What is held of ``wanted``, the rest from ``stored`` (kept too, if ``keep``)."""
        found: dict[str, T] = {}
        with self._lock:
            for key in wanted:
                held = self._held.get(key)
                if held is not None:
                    found[key] = held
                    self._held.move_to_end(key)
            generation = self._generation
        if len(found) == len(wanted):
            return found
        read = stored(wanted - found.keys())
        with self._lock:
            if keep and self._generation == generation:
                for key, value in read.items():
                    self._keep(key, value)
        return {**found, **read}

    def committed(self, written: Mapping[str, T], dropped: set[str]) -> None:
        with self._lock:
            self._generation += 1
            for key in dropped:
                self._held.pop(key, None)
            for key, value in written.items():
                self._keep(key, value)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._held.clear()

    def _keep(self, key: str, value: T) -> None:
        self._held[key] = value
        self._held.move_to_end(key)
        while len(self._held) > self._most:
            self._held.popitem(last=False)
