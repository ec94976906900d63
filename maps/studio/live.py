"""A scenario as the batch run's :class:`~coverage.result.StudyResult`, from the routed state.

Nothing here computes: :meth:`coverage.whatif.Study.result` runs the batch stages on the
studio's study, with a per-layer cache so that an edit recomputes its own layer only.  The live
summary IS the batch ``summary.json`` of the same facility set (tested through the HTTP API).
"""

from __future__ import annotations

from coverage.result import StudyResult
from coverage.whatif import LayerCache, Study

__all__ = ["LayerCache", "live_result"]


def live_result(
    study: Study,
    *,
    title: str,
    synthetic: bool,
    sources: tuple[str, ...],
    cache: LayerCache,
    drawing: bool = True,
) -> StudyResult:
    """The batch result of ``study``'s facility set (no service areas, no suggestions)."""
    return study.result(
        title=title, synthetic=synthetic, sources=sources, cache=cache, drawing=drawing
    )
