"""A scenario as the batch run's :class:`~coverage.result.StudyResult`, from the routed state.

Nothing here computes coverage: every number comes from :mod:`coverage.analysis`'s stage
functions, called on the studio's :class:`coverage.whatif.Study` in the order :func:`analyse`
calls them, minus the two things the panel never reads (service-area polygons, drawn only on
the exported map, and site suggestions, run on request).  So the live summary IS the batch
``summary.json`` of the same facility set (tested through the HTTP API).

Gap zones, 2SFCA loads and the targets' candidate sets depend on one layer only, so they are
cached per layer state: an edit recomputes them for the edited layer alone.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import pandas as pd

from coverage import analysis
from coverage.analysis import layer_candidates, layer_gaps
from coverage.result import StudyResult
from coverage.state import layer_horizon_m
from coverage.whatif import Study

log = logging.getLogger(__name__)


class LayerCache:
    """Values derived from one layer state, kept while the state is recent (undo/redo)."""

    def __init__(self, *, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[tuple[tuple[int, ...], str], tuple[tuple[object, ...], Any]] = (
            OrderedDict()
        )

    def get(self, owner: object, name: str, make: Callable[[], Any]) -> Any:
        """``make()`` once per (owner, name); a tuple owner is its items (held: ids stay theirs)."""
        owners = owner if isinstance(owner, tuple) else (owner,)
        key = (tuple(id(o) for o in owners), name)
        hit = self._items.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], owners, strict=True)):
            self._items.move_to_end(key)
            return hit[1]
        value = make()
        self._items[key] = (owners, value)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


def live_result(
    study: Study,
    *,
    title: str,
    synthetic: bool,
    sources: tuple[str, ...],
    cache: LayerCache,
) -> StudyResult:
    """The batch result of ``study``'s facility set (no service areas, no suggestions)."""
    net, inputs, residents, layers = study.net, study.inputs, study.residents, study.layers
    opts = replace(study.options, suggest={})
    kinds = list(layers)
    metrics = pd.concat(
        [cache.get(layers[k], "metrics", partial(study.metrics, k)) for k in kinds],
        ignore_index=True,
    )
    zones = {
        k: cache.get(layers[k], "gaps", partial(layer_gaps, net, residents, layers[k]))
        for k in kinds
    }
    loads = {
        k: cache.get(layers[k], "2sfca", partial(analysis._access, net, residents, layers[k]))
        for k in kinds
    }
    targets = (pd.DataFrame(), pd.DataFrame())
    if opts.targets:
        wanted: dict[str, list[float | None]] = {}
        for t in opts.targets:
            wanted.setdefault(t.layer, []).append(t.minutes)
        cands = {
            k: cache.get(
                layers[k],
                "candidates",
                partial(
                    layer_candidates,
                    net,
                    inputs,
                    residents,
                    layers[k],
                    zones[k],
                    horizon_m=layer_horizon_m(layers[k].spec, wanted[k]),
                    opts=opts,
                ),
            )
            for k in kinds
            if k in wanted
        }
        targets = cache.get(
            tuple(layers[k] for k in sorted(wanted)),
            "targets",
            lambda: analysis.check_targets(
                net,
                inputs,
                residents,
                layers,
                cands,
                opts.targets,
                time_limit_s=opts.time_limit_s,
            ),
        )
    return analysis._assemble(
        net,
        inputs,
        residents,
        layers,
        metrics=metrics,
        zones=zones,
        sa_rows=[],
        loads=loads,
        suggested={},
        targets=targets,
        clock=analysis._Clock(None),
        opts=opts,
        title=title,
        synthetic=synthetic,
        sources=sources,
    )
