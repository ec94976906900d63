"""Gap zones: uncovered residents grouped by network proximity, and candidate sites inside them.

Two uncovered residents belong to one zone when one can walk to the other within ``link_m``:
clustering by network rather than straight-line distance keeps a zone from jumping a river or a
compound wall, so each zone is a place one new facility could plausibly serve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from geo.network import WalkNetwork
from geo.routing import nearest_distances, reachable_pairs
from geo.snap import Snapped

#: Residents within this walk of each other join one gap zone.
LINK_M = 300.0
#: Zone outlines are the residents' points buffered by this much, then merged.
ZONE_BUFFER_M = 120.0


@dataclass(frozen=True, eq=False)
class GapZones:
    """Gap zones of one layer, worst first.

    Attributes
    ----------
    label
        Zone number per resident (1 = largest uncovered target population), 0 if not in a gap.
    uncovered_population, residents, area_km2
        Per zone (index 0 is zone 1).
    geometry
        Zone outlines in the network CRS.
    nearest_facility, nearest_m
        Per zone: the existing facility nearest to any of its residents (index, -1 when none
        reachable at all) and that walk in metres.
    members
        Per zone: resident indices.
    """

    label: np.ndarray
    uncovered_population: np.ndarray
    residents: np.ndarray
    area_km2: np.ndarray
    geometry: np.ndarray
    nearest_facility: np.ndarray
    nearest_m: np.ndarray
    members: tuple[np.ndarray, ...]


def find_gaps(
    net: WalkNetwork,
    residents: Snapped,
    points_xy: np.ndarray,
    uncovered: np.ndarray,
    weight: np.ndarray,
    facilities: Snapped,
    *,
    link_m: float = LINK_M,
    buffer_m: float = ZONE_BUFFER_M,
) -> GapZones:
    """Cluster uncovered (snapped, weighted) residents into zones, ranked by uncovered people."""
    idx = np.flatnonzero(uncovered & ~residents.unsnapped & (weight > 0))
    label = np.zeros(len(uncovered), dtype=np.int64)
    if len(idx) == 0:
        empty = np.array([], dtype=float)
        return GapZones(
            label,
            empty,
            np.array([], dtype=np.int64),
            empty,
            np.array([], dtype=object),
            np.array([], dtype=np.int64),
            empty,
            (),
        )
    sub = residents.subset(idx)
    pairs = reachable_pairs(net, sub, sub, cutoff_m=link_m)
    n = len(idx)
    g = sp.coo_matrix((np.ones(len(pairs)), (pairs["source"], pairs["target"])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    pop = np.bincount(comp, weights=weight[idx])
    order = np.lexsort((np.arange(len(pop)), -pop))  # most people first, then stable
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    zone = rank[comp]  # 0-based zone per uncovered resident
    label[idx] = zone + 1
    k = len(pop)
    members = tuple(idx[zone == z] for z in range(k))
    near = nearest_distances(net, facilities, sub)  # no cutoff: how far the service really is
    nearest_fac = np.full(k, -1, dtype=np.int64)
    nearest_m = np.full(k, np.inf)
    for z in range(k):
        local = np.flatnonzero(zone == z)
        j = local[np.argmin(near.distance_m[local])]
        if np.isfinite(near.distance_m[j]):
            nearest_fac[z] = near.source[j]
            nearest_m[z] = near.distance_m[j]
    pts = shapely.points(points_xy[idx])
    geoms = np.array(
        [
            shapely.union_all(shapely.buffer(pts[zone == z], buffer_m, quad_segs=4))
            for z in range(k)
        ],
        dtype=object,
    )
    return GapZones(
        label=label,
        uncovered_population=pop[order],
        residents=np.bincount(zone, minlength=k),
        area_km2=shapely.area(geoms) / 1e6,
        geometry=geoms,
        nearest_facility=nearest_fac,
        nearest_m=nearest_m,
        members=members,
    )


def candidates_in_gaps(
    net: WalkNetwork, zones: GapZones, *, spacing_m: float = 200.0, max_sites: int = 2000
) -> np.ndarray:
    """Network nodes inside gap zones, thinned to one per ``spacing_m`` grid cell.

    Used when the planner gives no candidate layer: every suggested site is then a street
    corner in an underserved place, which is where a new facility could actually open.
    """
    if len(zones.geometry) == 0:
        return np.zeros((0, 2))
    area = shapely.union_all(zones.geometry)
    inside = shapely.contains_xy(area, net.node_xy[:, 0], net.node_xy[:, 1])
    xy = net.node_xy[inside]
    if len(xy) == 0:
        return xy
    cell = np.floor(xy / spacing_m).astype(np.int64)
    _, first = np.unique(cell, axis=0, return_index=True)
    chosen = xy[np.sort(first)]
    return chosen[:max_sites]
