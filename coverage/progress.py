"""How long work says how far it has got, without the library knowing who is watching.

A progress receiver is any callable taking one line of text (the stage that starts).  A receiver
that can also draw counts (the CLI's terminal bar) has a ``count(stage, done, total)`` method;
:func:`count` calls it when present and does nothing otherwise, so library code reports counts
unconditionally and a plain ``print`` or ``log.info`` still works as a receiver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

#: One line per stage: what the CLI shows and logging records.
Progress = Callable[[str], None]


@runtime_checkable
class CountingProgress(Protocol):
    """A receiver that also shows how many of a stage's items are done (a bar, or lines)."""

    def __call__(self, text: str, /) -> None:
        """Show that a stage starts."""

    def count(self, stage: str, done: int, total: int) -> None:
        """Show that ``done`` of ``total`` items of ``stage`` are finished."""


def count(progress: Progress | None, stage: str, done: int, total: int) -> None:
    """Tell ``progress`` that ``done`` of ``total`` items of ``stage`` are finished, if it counts.

    ``stage`` is a short English label ("routing", "partitions"); the same label in a row of
    calls is one bar.
    """
    if progress is not None and isinstance(progress, CountingProgress):
        progress.count(stage, done, total)
