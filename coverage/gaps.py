"""Gap zones: uncovered residents grouped by the uncovered street network they live on.

Two uncovered residents share a zone when the streets between them are all beyond the goal
(every node farther than the headline distance from any facility): a zone is a contiguous piece
of unserved city as a walker experiences it, so it never jumps a river or a compound wall, and
one new facility inside it is the natural remedy.  Built from the node distances of the one
multi-source pass, it costs milliseconds even for 100k residents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from geo.network import WalkNetwork
from geo.routing import Nearest
from geo.snap import Snapped

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
    near: Nearest,
    goal_m: float,
    *,
    buffer_m: float = ZONE_BUFFER_M,
) -> GapZones:
    """Group uncovered (snapped, weighted) residents into zones, ranked by uncovered people.

    Parameters
    ----------
    net, residents, points_xy
        The network, the residents' snapped locations and their points (network CRS).
    uncovered, weight
        Which residents miss the goal, and their target population.
    near
        The layer's nearest-facility result, with node distances (``near.node_m``).
    goal_m
        The headline distance: nodes farther than this are unserved streets.
    """
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
    node_m = near.node_m if near.node_m is not None else np.full(net.n_nodes, np.inf)
    far = ~(node_m <= goal_m)
    e_far = far[net.edge_u] & far[net.edge_v]
    n = net.n_nodes
    g = sp.coo_matrix(
        (np.ones(int(e_far.sum())), (net.edge_u[e_far], net.edge_v[e_far])), shape=(n, n)
    )
    _, node_comp = connected_components(g, directed=False)
    e = residents.edge[idx]
    u, v = net.edge_u[e], net.edge_v[e]
    comp = np.where(far[u], node_comp[u], np.where(far[v], node_comp[v], -1))
    # a resident uncovered only by its own access leg or mid-edge stands alone
    alone = comp < 0
    comp[alone] = node_comp.max() + 1 + np.arange(int(alone.sum()))
    _, comp = np.unique(comp, return_inverse=True)
    pop = np.bincount(comp, weights=weight[idx])
    order = np.lexsort((np.arange(len(pop)), -pop))  # most people first, then stable
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    zone = rank[comp]  # 0-based zone per uncovered resident
    label[idx] = zone + 1
    k = len(pop)
    by_zone = np.argsort(zone, kind="stable")
    bounds = np.searchsorted(zone[by_zone], np.arange(k + 1))
    members = tuple(idx[by_zone[bounds[z] : bounds[z + 1]]] for z in range(k))
    dist = near.distance_m[idx]
    nearest_fac = np.full(k, -1, dtype=np.int64)
    nearest_m = np.full(k, np.inf)
    pts = shapely.points(points_xy[idx])
    # nearest member of every zone at once: sort by (zone, distance), first per zone
    first = np.lexsort((dist, zone))[bounds[:-1]]
    ok = np.isfinite(dist[first])
    nearest_fac[ok] = near.source[idx[first[ok]]]
    nearest_m[ok] = dist[first[ok]]
    sizes = np.diff(bounds)
    geoms = np.empty(k, dtype=object)
    single = sizes == 1
    geoms[single] = shapely.buffer(pts[by_zone[bounds[:-1][single]]], buffer_m, quad_segs=4)
    for z in np.flatnonzero(~single):
        geoms[z] = _outline(pts[by_zone[bounds[z] : bounds[z + 1]]], buffer_m)
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


def _outline(points: np.ndarray, buffer_m: float) -> shapely.Geometry:
    """A zone's outline: its residents' points wrapped tightly, then widened by ``buffer_m``.

    A concave hull (not a convex one) follows the shape of the unserved blocks; unioning one
    buffer per resident gives nearly the same outline but costs seconds for large zones.
    """
    if len(points) <= 3:
        return shapely.union_all(shapely.buffer(points, buffer_m, quad_segs=4))
    hull = shapely.concave_hull(shapely.multipoints(points), ratio=0.3)
    return shapely.buffer(hull, buffer_m, quad_segs=4)


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
