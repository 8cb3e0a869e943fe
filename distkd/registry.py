"""A tiny name -> builder registry (one per kind: models, KD losses)."""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T", bound=Callable)


class Registry:
    """Maps names the command line accepts to the callables that build them."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def wrap(fn: T) -> T:
            key = name or fn.__name__
            if key in self._items:
                raise KeyError(f"{self.kind} '{key}' is registered twice")
            self._items[key] = fn
            return fn

        return wrap

    def get(self, name: str) -> Callable:
        if name not in self._items:
            raise KeyError(self.unknown_message(name))
        return self._items[name]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} '{name}'.{hint} Valid names: {', '.join(sorted(self._items))}"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)
