"""What-if edits on a study's per-layer state, each equal to a full re-analysis of the edited set.

A planner adds, moves and removes sites and changes walking speeds or minutes; the studio
(``maps/studio``) calls this module and nothing else.  Each edit returns a NEW :class:`Study`
(the old one stays valid, which is what undo needs) and touches only the edited layer:

* add a site: one single-source search from the new site and an element-wise ``min`` with the
  layer's distances.  The search stops at the layer's longest current walk, because beyond it
  the old facilities are nearer anyway; so the result is exactly the multi-source answer.
* move or remove a site: that layer is routed again (one multi-source search).
* speed or minutes: no search at all: distances do not depend on either.

Numbers are read with :meth:`Study.metrics` (the same :func:`coverage.analysis.measure_layer`
the batch run uses), so an edited study and a batch run of the same facility set agree exactly
(tested with random edit sequences against :func:`coverage.analysis.analyse`).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.analysis import (
    AnalysisOptions,
    StudyInputs,
    access,
    assemble,
    check_inputs,
    check_targets,
    gap_frame,
    layer_candidates,
    layer_gaps,
    measure_layer,
    route_study,
)
from coverage.equity import equity_table
from coverage.metrics import is_covered
from coverage.result import StudyResult
from coverage.state import (
    LayerState,
    ResidentState,
    concat_snapped,
    layer_horizon_m,
    points_xy,
    route_layer,
)
from geo.network import WalkNetwork
from geo.routing import Nearest, nearest_distances
from geo.snap import snap_points

log = logging.getLogger(__name__)


def _exact_limit(near: Nearest) -> float:
    """The longest current walk to any node or resident, or ``inf`` if one is unreached."""
    node_m = near.node_m
    if node_m is None or node_m.size == 0 or not np.isfinite(node_m).all():
        return math.inf
    # every node is reached, so every snapped resident is too; unsnapped ones stay inf
    d = near.distance_m
    reached = np.isfinite(d)
    limit = float(node_m.max())
    if reached.any():
        limit = max(limit, float(d[reached].max()))
    return limit


def _merge(old: Nearest, new: Nearest, index: int) -> Nearest:
    better = new.distance_m < old.distance_m
    dist = np.where(better, new.distance_m, old.distance_m)
    src = np.where(better, index, old.source)
    node = None
    if old.node_m is not None and new.node_m is not None:
        node = np.minimum(old.node_m, new.node_m)
    return Nearest(dist, src, node)


class LayerCache:
    """Values derived from one layer state, kept while the state is recent (undo, redo).

    An edit replaces one :class:`LayerState`; the others are the same objects, so what was
    derived from them (metrics, gap zones, loads, candidates) is found here by identity and
    only the edited layer is recomputed.
    """

    def __init__(self, *, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[tuple[tuple[int, ...], str], tuple[tuple[object, ...], Any]]
        self._items = OrderedDict()

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


@dataclass(frozen=True, eq=False)
class Study:
    """A routed study the studio edits: network, residents and one state per layer.

    Immutable: every edit returns a new ``Study`` sharing the untouched arrays.
    """

    net: WalkNetwork
    inputs: StudyInputs
    options: AnalysisOptions
    residents: ResidentState
    layers: Mapping[str, LayerState]

    @classmethod
    def route(
        cls, net: WalkNetwork, inputs: StudyInputs, options: AnalysisOptions | None = None
    ) -> Study:
        """Snap and route a study: the batch run's snap and route stages, nothing more."""
        opts = options or AnalysisOptions()
        kinds = check_inputs(inputs, replace(opts, suggest={}, targets=()))
        routed = route_study(net, inputs, kinds, opts)
        residents, layers = routed.residents, dict(routed.layers)
        return cls(net, inputs, opts, residents, layers)

    # ------------------------------------------------------------------------- reading

    def metrics(self, kind: str) -> pd.DataFrame:
        """The layer's rows of the batch ``metrics`` table (district, 街道, 社区)."""
        layer = self.layers[kind]
        return measure_layer(layer, self.residents, self.inputs, layer.minutes)

    def covered(self, kind: str) -> np.ndarray:
        """Which residents reach the layer within its goal (never an unsnapped one)."""
        layer = self.layers[kind]
        return is_covered(layer.minutes, layer.spec.headline_min) & ~self.residents.unsnapped

    def facilities(self, kind: str) -> gpd.GeoDataFrame:
        """The layer's current facilities (WGS84)."""
        return self.layers[kind].facilities

    def facility_inputs(self) -> dict[str, gpd.GeoDataFrame]:
        """Every layer's current facility set, as :class:`StudyInputs` takes it."""
        return {k: s.facilities for k, s in self.layers.items()}

    def edited_inputs(self) -> StudyInputs:
        """The inputs of a batch run of this scenario (same residents, areas and candidates)."""
        specs = {**self.inputs.specs, **{k: s.spec for k, s in self.layers.items()}}
        return replace(self.inputs, facilities=self.facility_inputs(), specs=specs)

    def result(
        self,
        *,
        title: str,
        synthetic: bool = False,
        sources: tuple[str, ...] = (),
        cache: LayerCache | None = None,
        drawing: bool = True,
    ) -> StudyResult:
        """The batch result of this facility set, minus service-area polygons and suggestions.

        The same stage functions as :func:`coverage.analysis.analyse`, in the same order, so
        ``summary_dict(study.result(...))`` IS the batch ``summary.json`` of the scenario (timings
        aside).  With a ``cache`` shared across edits, only the edited layer is recomputed.
        ``drawing=False`` gives the numbers only, fast enough for every edit: no gap outlines,
        no 2SFCA loads, no area polygons or street minutes (summary.json reads none of them).
        """
        c = cache if cache is not None else LayerCache()
        net, inputs, residents, layers = self.net, self.inputs, self.residents, self.layers
        opts = replace(self.options, suggest={})
        kinds = list(layers)
        area = np.asarray(residents.area)
        per_layer = {k: c.get(layers[k], "metrics", partial(self.metrics, k)) for k in kinds}
        metrics = pd.concat(list(per_layer.values()), ignore_index=True)
        level = "street" if inputs.streets is not None else "hex"
        equity = pd.concat(  # one row per layer, from that layer's rows: kept per layer state
            [
                c.get(
                    layers[k],
                    "equity",
                    partial(
                        equity_table,
                        per_layer[k],
                        headline_by_kind={k: layers[k].spec.headline_min},
                        level=level,
                    ),
                )
                for k in kinds
            ],
            ignore_index=True,
        )
        zones = {
            k: c.get(
                layers[k],
                "gaps" if drawing else "gap_numbers",
                partial(layer_gaps, net, residents, layers[k], outlines=drawing),
            )
            for k in kinds
        }
        gaps = {
            k: c.get(
                layers[k],
                "gap_frame" if drawing else "gap_numbers_frame",
                partial(gap_frame, net, layers[k], zones[k], area),
            )
            for k in kinds
        }
        loads = {
            k: c.get(layers[k], "2sfca", partial(access, net, residents, layers[k]))
            if drawing
            else None
            for k in kinds
        }

        def outlined(k: str) -> Any:
            """Zones with outlines: generated candidates are the street corners inside them."""
            if drawing or inputs.candidates is not None:
                return zones[k]
            return c.get(layers[k], "gaps", partial(layer_gaps, net, residents, layers[k]))

        targets = (pd.DataFrame(), pd.DataFrame())
        if opts.targets:
            wanted: dict[str, list[float | None]] = {}
            for t in opts.targets:
                wanted.setdefault(t.layer, []).append(t.minutes)
            cands = {
                k: c.get(
                    layers[k],
                    "candidates",
                    partial(
                        layer_candidates,
                        net,
                        inputs,
                        residents,
                        layers[k],
                        outlined(k),
                        horizon_m=layer_horizon_m(layers[k].spec, wanted[k]),
                        opts=opts,
                    ),
                )
                for k in kinds
                if k in wanted
            }
            targets = c.get(
                tuple(layers[k] for k in sorted(wanted)),
                "targets",
                lambda: check_targets(
                    net,
                    inputs,
                    residents,
                    layers,
                    cands,
                    opts.targets,
                    time_limit_s=opts.time_limit_s,
                ),
            )
        return assemble(
            net,
            inputs,
            residents,
            layers,
            metrics=metrics,
            zones=zones,
            gaps=gaps,
            equity=equity,
            sa_rows=[],
            loads=loads,
            suggested={},
            targets=targets,
            opts=opts,
            title=title,
            synthetic=synthetic,
            sources=sources,
            drawing=drawing,
        )

    # --------------------------------------------------------------------------- edits

    def add_facility(
        self,
        kind: str,
        *,
        lon: float,
        lat: float,
        name: str = "",
        facility_id: str | None = None,
        capacity: float = math.nan,
    ) -> tuple[Study, str]:
        """A new site of ``kind`` at (lon, lat), WGS84; returns the study and the site's id."""
        layer = self._layer(kind)
        fid = facility_id or self._new_id(kind)
        if fid in set(layer.ids):
            msg = f"facility id '{fid}' already exists in layer '{kind}'"
            raise ValueError(msg)
        geom = layer.facilities.geometry.name
        row = gpd.GeoDataFrame(
            {
                "facility_id": [fid],
                "kind": [kind],
                "name": [name or fid],
                "capacity": [float(capacity)],
                geom: [shapely.Point(float(lon), float(lat))],
            },
            geometry=geom,
            crs=4326,
        )
        new = _add(self.net, self.residents, layer, row, max_snap_m=self.options.max_snap_m)
        return self._with(kind, new), fid

    def move_facility(self, kind: str, facility_id: str, *, lon: float, lat: float) -> Study:
        """The site moved to (lon, lat): the layer is routed again."""
        layer = self._layer(kind)
        i = self._index(layer, facility_id)
        fac = layer.facilities.copy()
        fac.loc[fac.index[i], fac.geometry.name] = shapely.Point(float(lon), float(lat))
        return self._with(kind, self._reroute(layer, fac))

    def remove_facility(self, kind: str, facility_id: str) -> Study:
        """The site taken away: the layer is routed again."""
        layer = self._layer(kind)
        i = self._index(layer, facility_id)
        fac = layer.facilities.drop(index=layer.facilities.index[i]).reset_index(drop=True)
        return self._with(kind, self._reroute(layer, fac))

    def with_speed(self, kind: str, speed_kmh: float) -> Study:
        """Another walking speed for the layer's target group: no search, minutes rescaled."""
        layer = self._layer(kind)
        return self._with(kind, replace(layer, spec=layer.spec.with_speed(speed_kmh)))

    def with_thresholds(self, kind: str, minutes: Sequence[float]) -> Study:
        """Other thresholds for the layer (its goal stays among them): no search."""
        layer = self._layer(kind)
        return self._with(kind, replace(layer, spec=layer.spec.with_thresholds(tuple(minutes))))

    # ------------------------------------------------------------------------- helpers

    def _layer(self, kind: str) -> LayerState:
        if kind not in self.layers:
            msg = f"no facility layer '{kind}' (have {', '.join(self.layers)})"
            raise KeyError(msg)
        return self.layers[kind]

    @staticmethod
    def _index(layer: LayerState, facility_id: str) -> int:
        hits = np.flatnonzero(layer.ids == str(facility_id))
        if hits.size == 0:
            msg = f"no facility '{facility_id}' in layer '{layer.kind}'"
            raise KeyError(msg)
        return int(hits[0])

    def _new_id(self, kind: str) -> str:
        used = set(self.layers[kind].ids)
        k = 1
        while f"{kind}-new-{k}" in used:
            k += 1
        return f"{kind}-new-{k}"

    def _reroute(self, layer: LayerState, facilities: gpd.GeoDataFrame) -> LayerState:
        routed = route_layer(
            self.net, self.residents, layer.spec, facilities, max_snap_m=self.options.max_snap_m
        )
        return routed

    def _with(self, kind: str, layer: LayerState) -> Study:
        return replace(self, layers={**self.layers, kind: layer})


def _add(
    net: WalkNetwork,
    residents: ResidentState,
    layer: LayerState,
    site: gpd.GeoDataFrame,
    *,
    max_snap_m: float,
) -> LayerState:
    """``layer`` plus the facilities of ``site``: one limited single-source search each."""
    xy = points_xy(net, site)
    snap = snap_points(net, xy, max_snap_m=max_snap_m)
    near = layer.near
    offset = len(layer.facilities)
    for i in range(len(site)):
        if snap.unsnapped[i]:
            log.info("%s: the new site is beyond %.0f m of any street", layer.kind, max_snap_m)
            continue
        one = snap.subset(np.array([i]))
        new = nearest_distances(net, one, residents.snap, cutoff_m=_exact_limit(near))
        near = _merge(near, new, offset + i)
    facilities = gpd.GeoDataFrame(
        pd.concat([layer.facilities, site], ignore_index=True), crs=layer.facilities.crs
    )
    return replace(
        layer,
        facilities=facilities,
        xy=np.concatenate([layer.xy.reshape(-1, 2), xy]),
        snap=concat_snapped([layer.snap, snap]),
        near=near,
    )
