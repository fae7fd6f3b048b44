"""The one way a service reads a stream into a view: a fold over the stream's events with a
handler per event type. Pure code over envelopes, shared through ``contracts``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from contracts.envelope import Envelope


class Versioned(Protocol):
    version: int  # the stream version the view was read at (0: empty stream)


V = TypeVar("V", bound=Versioned)
Handlers = Mapping[str, Callable[[V, dict[str, Any]], V]]


def fold(view: V, events: Iterable[Envelope], handlers: Handlers[V]) -> V:
    """``view`` after ``events`` (one stream, in order): the handler of an event's type takes the
    view and the payload and returns the view after it (``dataclasses.replace``, or the view itself,
    changed); other types change nothing. ``version`` follows every event."""
    for e in events:
        handle = handlers.get(e.type)
        if handle is not None:
            view = handle(view, e.payload)
        view.version = e.stream_version
    return view
