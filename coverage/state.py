"""Per-layer state of a study: snapped once, routed once, reused by every table and every edit.

A study has one :class:`ResidentState` (the residents snapped to the walk network and placed in
their 街道/社区) and, per facility layer, one :class:`LayerState`: the facilities snapped, the
node and resident distances of ONE multi-source search, the target weights and, when asked for,
the :class:`CandidateSet` with its sparse reachable pairs.  Metrics, gap zones, suggestions and
targets all read from these objects; nothing is snapped or routed twice.  The what-if edits in
:mod:`coverage.whatif` return new states from old ones, so a planner's edit costs one search,
not a whole analysis.

All states are frozen; arrays are shared, never modified in place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import numpy as np
import shapely

from coverage.hexgrid import hex_areas
from geo.network import WalkNetwork
from geo.routing import Nearest, nearest_distances, reachable_pairs
from geo.snap import Snapped, snap_points
from layers.spec import LayerSpec

log = logging.getLogger(__name__)


def points_on_surface(geoms: np.ndarray) -> np.ndarray:
    """``shapely.point_on_surface`` of every geometry, calling GEOS only for the non-points.

    A point's point on surface is itself (the same coordinates), and residents are mostly
    points: the call cost about a second per million points and returned them unchanged.
    """
    geoms = np.asarray(geoms, dtype=object)
    not_pt = (shapely.get_type_id(geoms) != 0) | shapely.has_z(geoms)  # as GEOS would drop z
    if not not_pt.any():
        return geoms
    out = np.array(geoms, dtype=object, copy=True)
    out[not_pt] = shapely.point_on_surface(geoms[not_pt])
    return out


def points_xy(net: WalkNetwork, gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> np.ndarray:
    """One point per feature (polygons: a point inside) in the network's metric CRS."""
    geoms = gdf.geometry.to_numpy() if isinstance(gdf, gpd.GeoDataFrame) else gdf.to_numpy()
    if len(geoms) == 0:
        return np.zeros((0, 2))
    ll = shapely.get_coordinates(points_on_surface(geoms))
    return net.project_lonlat(ll[:, 0], ll[:, 1])


def assign_areas(points_ll: gpd.GeoSeries, polygons: gpd.GeoDataFrame | None) -> np.ndarray:
    """Name of the polygon containing each point ("" outside all); the first polygon wins.

    Overlaps are reported when the areas are read (:func:`layers.model.read_areas`), so the
    file-order rule here never decides silently.
    """
    out = np.full(len(points_ll), "", dtype=object)
    if polygons is None or polygons.empty:
        return out
    tree = shapely.STRtree(polygons.geometry.to_numpy())
    pi, ai = tree.query(points_ll.to_numpy(), predicate="within")
    order = np.lexsort((ai, pi))
    pi, ai = pi[order], ai[order]
    first = np.ones(len(pi), dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    out[pi[first]] = polygons["area"].to_numpy()[ai[first]]
    return out


@dataclass(frozen=True, eq=False)
class ResidentState:
    """The residents, snapped once and placed in their areas; shared by every layer.

    Attributes
    ----------
    frame
        The checked residents as given (WGS84, any geometry).
    points_ll
        One WGS84 point per unit (a point inside polygons).
    xy
        The same points in the network CRS.
    snap
        Where each unit meets the walk network (``snap.unsnapped`` beyond the snapping limit).
    street, community
        街道 / 社区 name per unit, ``""`` outside all (or when no polygons were given).
    hex_cells, hex_grid
        H3 cell per unit and the cells' polygons, used for per-area tables without 街道.
    """

    frame: gpd.GeoDataFrame
    points_ll: gpd.GeoSeries
    xy: np.ndarray
    snap: Snapped
    street: np.ndarray
    community: np.ndarray
    hex_cells: np.ndarray | None = None
    hex_grid: gpd.GeoDataFrame | None = None

    @property
    def unsnapped(self) -> np.ndarray:
        """True for units farther than the snapping limit from every walkable street."""
        return self.snap.unsnapped

    @property
    def area(self) -> np.ndarray:
        """The unit of the per-area tables: 街道 name, or H3 cell without 街道 polygons."""
        return self.street if self.hex_cells is None else self.hex_cells

    def weight(self, group: str) -> np.ndarray:
        """Target population per unit (``population``, ``elderly``, ``youth``...).

        Raises
        ------
        ValueError
            When the residents have no such column: the plan checks this before any routing
            (``layers.model.read_residents``), so here it is a caller's mistake.
        """
        if group not in self.frame.columns:
            msg = f"the residents have no '{group}' column (have {list(self.frame.columns)})"
            raise ValueError(msg)
        return self.frame[group].to_numpy(dtype=float)


def snap_residents(
    net: WalkNetwork,
    residents: gpd.GeoDataFrame,
    *,
    streets: gpd.GeoDataFrame | None,
    communities: gpd.GeoDataFrame | None,
    max_snap_m: float,
    hex_resolution: int = 8,
) -> ResidentState:
    """The snap stage: residents on the network and in their 街道/社区 (or H3 cells)."""
    points_ll = gpd.GeoSeries(
        points_on_surface(residents.geometry.to_numpy()), crs=4326, index=residents.index
    )
    xy = points_xy(net, residents)
    snap = snap_points(net, xy, max_snap_m=max_snap_m)
    hex_cells = hex_grid = None
    if streets is None:
        hex_cells, hex_grid = hex_areas(
            points_ll.x.to_numpy(), points_ll.y.to_numpy(), resolution=hex_resolution
        )
    return ResidentState(
        frame=residents,
        points_ll=points_ll,
        xy=xy,
        snap=snap,
        street=assign_areas(points_ll, streets),
        community=assign_areas(points_ll, communities),
        hex_cells=hex_cells,
        hex_grid=hex_grid,
    )


@dataclass(frozen=True, eq=False)
class CandidateSet:
    """Possible new sites of one layer with their sparse reachable pairs (one search batch).

    ``pair_*`` hold every (resident, candidate) walk up to ``horizon_m``; suggestions and
    targets take the pairs they need from the same arrays.
    """

    xy: np.ndarray
    ids: np.ndarray
    names: np.ndarray
    capacity: np.ndarray
    snap: Snapped
    horizon_m: float
    pair_resident: np.ndarray
    pair_candidate: np.ndarray
    pair_m: np.ndarray

    def __len__(self) -> int:
        return len(self.xy)

    def pairs_within(self, metres: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (resident, candidate, metres) pairs no longer than ``metres`` (<= horizon)."""
        if metres > self.horizon_m:
            msg = f"pairs were routed to {self.horizon_m:.0f} m, not {metres:.0f} m"
            raise ValueError(msg)
        keep = self.pair_m <= metres
        return self.pair_resident[keep], self.pair_candidate[keep], self.pair_m[keep]


def candidate_set(
    net: WalkNetwork,
    residents: ResidentState,
    xy: np.ndarray,
    *,
    ids: np.ndarray,
    names: np.ndarray,
    capacity: np.ndarray,
    horizon_m: float,
    max_snap_m: float,
) -> CandidateSet:
    """Snap the candidates and route every resident to them up to ``horizon_m``, once."""
    snap = snap_points(net, xy, max_snap_m=max_snap_m)
    if len(xy):
        pairs = reachable_pairs(net, snap, residents.snap, cutoff_m=horizon_m)
        pr = pairs["target"].to_numpy(dtype=np.int64)
        pc = pairs["source"].to_numpy(dtype=np.int64)
        pm = pairs["distance_m"].to_numpy(dtype=float)
    else:
        pr = pc = np.zeros(0, dtype=np.int64)
        pm = np.zeros(0)
    return CandidateSet(xy, ids, names, capacity, snap, horizon_m, pr, pc, pm)


@dataclass(frozen=True, eq=False)
class LayerState:
    """One facility layer, routed: the single source of every number about it.

    Attributes
    ----------
    spec
        Kind, target group, speed, thresholds and goal.
    facilities
        The facilities (WGS84 points; ``facility_id``, ``kind``, ``name``, ``capacity``).
    xy, snap
        Facilities in the network CRS and where they meet the network.
    near
        The one multi-source search from every snapped facility, without a cutoff: distance and
        nearest facility per resident, distance per network node (gap zones, drawing).
    weight
        Target population per resident unit.
    """

    spec: LayerSpec
    facilities: gpd.GeoDataFrame
    xy: np.ndarray
    snap: Snapped
    near: Nearest
    weight: np.ndarray

    @property
    def kind(self) -> str:
        """The layer's kind."""
        return self.spec.kind

    @cached_property
    def minutes(self) -> np.ndarray:
        """Walking minutes per resident to the nearest facility (``inf``: unsnapped or none)."""
        return self.near.distance_m / self.spec.metres_per_minute

    @cached_property
    def ids(self) -> np.ndarray:
        """Facility ids as text, in the order of ``facilities``."""
        return self.facilities["facility_id"].astype(str).to_numpy()

    def nearest_facility_ids(self) -> np.ndarray:
        """Id of each resident's nearest facility, ``""`` when none is reached."""
        src = self.near.source
        if len(self.ids) == 0:
            return np.full(len(src), "", dtype=object)
        return np.where(src >= 0, self.ids[np.maximum(src, 0)], "")


def route_layer(
    net: WalkNetwork,
    residents: ResidentState,
    spec: LayerSpec,
    facilities: gpd.GeoDataFrame,
    *,
    max_snap_m: float,
) -> LayerState:
    """The route stage of one layer: snap its facilities, one multi-source search, no cutoff.

    No cutoff, because one pass costs milliseconds either way and the real minutes beyond the
    goal (not ``inf``) are what mean/P90, gap zones and the map need.
    """
    xy = points_xy(net, facilities)
    snap = snap_points(net, xy, max_snap_m=max_snap_m)
    if len(facilities) and snap.unsnapped.any():
        log.warning(
            "%s: %d facilities are farther than %.0f m from any street and are left out of routing",
            spec.kind,
            int(snap.unsnapped.sum()),
            max_snap_m,
        )
    near = nearest_distances(net, snap, residents.snap)
    return LayerState(
        spec=spec,
        facilities=facilities,
        xy=xy,
        snap=snap,
        near=near,
        weight=residents.weight(spec.target_group),
    )


def layer_horizon_m(spec: LayerSpec, minutes: Iterable[float | None] = ()) -> float:
    """The one routing horizon of a layer: its longest threshold or goal, or a longer target.

    Candidate pairs are routed to this distance once; suggestions and targets filter them.
    """
    longest = max([spec.cutoff_m / spec.metres_per_minute, *(m for m in minutes if m)])
    return float(longest * spec.metres_per_minute)


def concat_snapped(parts: Sequence[Snapped]) -> Snapped:
    """Snapped points of several sets, in order (for a layer that gains a facility)."""
    return Snapped(
        np.concatenate([p.edge for p in parts]),
        np.concatenate([p.offset_m for p in parts]),
        np.concatenate([p.access_m for p in parts]),
        np.concatenate([p.xy.reshape(-1, 2) for p in parts]),
        np.concatenate([p.unsnapped for p in parts]),
    )
