"""Gap zones: uncovered residents grouped by the unserved street network they live on.

Two uncovered residents share a zone when the streets between them are all beyond the goal
(every node farther than the headline distance from any facility) and they lie within one
circle of the goal's radius: a zone is a contiguous piece of unserved city as a walker
experiences it, so it never jumps a river or a compound wall, and it is never larger than one
new facility could serve, so "the 10 worst gaps" is a list of places where one new site each
would help.

How: the unserved streets are cut by a grid of cells (side: goal x sqrt 2, so a cell's diagonal
is twice the goal) into connected pieces, and pieces on either side of a cell edge are merged
back while the merged piece's bounding box still has a diagonal of at most twice the goal (so a
small pocket is not split by an arbitrary grid line).  Everything is one
connected-components call plus a union-find over the pieces that meet at cell edges.  Outlines
are the zone's unserved street pieces and its residents' access legs, drawn on one raster for
all zones (:mod:`geo.outline`), never a hull over the residents' points: time and memory stay
linear in the network and in the residents.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from geo.network import WalkNetwork
from geo.outline import label_outlines, sample_lines
from geo.routing import Nearest
from geo.service_area import cut_pieces
from geo.snap import Snapped

#: Zone outlines reach this far around their unserved streets and their residents.
ZONE_BUFFER_M = 120.0
#: Outline raster resolution, as a share of the buffer.
PIXELS_PER_BUFFER = 2


@dataclass(frozen=True, eq=False)
class GapZones:
    """Gap zones of one layer, worst first.

    Attributes
    ----------
    label
        Zone number per resident (1 = largest uncovered target population), 0 if not in a gap.
    uncovered_population, residents, area_km2
        Per zone (index 0 is zone 1): exact sums over the zone's residents, and the outline's
        area.
    geometry
        Zone outlines in the network CRS (zones never overlap).
    nearest_facility, nearest_m
        Per zone: the existing facility nearest to any of its residents (index, -1 when none
        reachable at all) and that walk in metres.
    members
        Per zone: resident indices.
    cell_m
        Side of the grid cells the unserved streets were cut by (goal x sqrt 2).  Every zone's
        unserved nodes have a bounding box with a diagonal of at most twice the goal, so one
        new site in its middle is within the goal, as the crow flies, of all of them.
    """

    label: np.ndarray
    uncovered_population: np.ndarray
    residents: np.ndarray
    area_km2: np.ndarray
    geometry: np.ndarray
    nearest_facility: np.ndarray
    nearest_m: np.ndarray
    members: tuple[np.ndarray, ...]
    cell_m: float = np.inf


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
    outlines: bool = True,
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
        The headline distance: nodes farther than this are unserved streets, and no zone's
        unserved nodes spread wider than a circle of this radius.
    outlines
        Draw each zone's outline (and its ``area_km2``).  Off for numbers only: every count,
        population and nearest facility is the same, the polygons are empty.
    buffer_m
        How far outlines reach around the zone's streets and residents.  Capped at a quarter
        of ``goal_m`` so that no outline is wider than twice the goal.
    """
    idx = np.flatnonzero(uncovered & ~residents.unsnapped & (weight > 0))
    label = np.zeros(len(uncovered), dtype=np.int64)
    reach_m = float(goal_m) if goal_m > 0 else 1.0
    cell_m = reach_m * np.sqrt(2.0)
    if len(idx) == 0:
        empty = np.array([], dtype=float)
        none = np.array([], dtype=np.int64)
        return GapZones(
            label, empty, none, empty, np.array([], dtype=object), none, empty, (), cell_m
        )
    node_m = near.node_m if near.node_m is not None else np.full(net.n_nodes, np.inf)
    far = ~(node_m <= goal_m)
    piece = _pieces(net, far, cell_m, max_diagonal_m=2 * reach_m)

    # each uncovered resident: the piece of the unserved end of its edge (the nearer one when
    # both are), else a pocket of its own cell (covered streets at both ends, but the
    # resident's own walk is too long)
    e = residents.edge[idx]
    u, v = net.edge_u[e], net.edge_v[e]
    near_u = residents.offset_m[idx] <= net.edge_length_m[e] / 2
    end = np.where(far[u] & (near_u | ~far[v]), u, np.where(far[v], v, -1))
    alone = end < 0
    key = np.where(alone, 0, piece[np.maximum(end, 0)])
    if alone.any():
        pocket = _cell_parts(net, cell_m)
        key[alone] = net.n_nodes + pocket[np.where(near_u[alone], u[alone], v[alone])]
    keys, comp = np.unique(key, return_inverse=True)
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
    # nearest member of every zone at once: sort by (zone, distance), first per zone
    first = np.lexsort((dist, zone))[bounds[:-1]]
    ok = np.isfinite(dist[first])
    nearest_fac[ok] = near.source[idx[first[ok]]]
    nearest_m[ok] = dist[first[ok]]

    zone_of_key = np.full(max(int(keys.max()), int(piece.max())) + 1, -1, dtype=np.int64)
    zone_of_key[keys] = rank
    node_zone = zone_of_key[piece]  # -1: a piece without uncovered residents, or served
    if not outlines:  # the numbers only (the studio's live summary): no polygon drawn
        geoms = np.full(k, _EMPTY, dtype=object)  # one immutable empty polygon, shared
    else:
        geoms = _outlines(
            net,
            residents,
            points_xy,
            idx,
            zone,
            node_zone,
            node_m,
            far,
            goal_m=goal_m,
            k=k,
            buffer_m=min(buffer_m, goal_m / 4) if goal_m > 0 else buffer_m,
        )
    return GapZones(
        label=label,
        uncovered_population=pop[order],
        residents=np.bincount(zone, minlength=k),
        area_km2=shapely.area(geoms) / 1e6 if outlines else np.full(k, np.nan),
        geometry=geoms,
        nearest_facility=nearest_fac,
        nearest_m=nearest_m,
        members=members,
        cell_m=cell_m,
    )


#: Per network and cell size: the cells and the street parts inside them do not depend on the
#: facilities, so a studio edit (or the next layer with the same goal) reuses them.
_GRID: weakref.WeakKeyDictionary[WalkNetwork, dict[tuple[str, float], np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


_EMPTY = shapely.Polygon()


def _cells(net: WalkNetwork, cell_m: float) -> np.ndarray:
    """Grid cell (one integer) of every node, cells of ``cell_m`` from the network's corner."""
    memo = _GRID.setdefault(net, {})
    hit = memo.get(("cells", cell_m))
    if hit is None:
        ij = np.floor((net.node_xy - net.node_xy.min(axis=0)) / cell_m).astype(np.int64)
        hit = memo[("cells", cell_m)] = ij[:, 0] * (int(ij[:, 1].max()) + 1) + ij[:, 1]
        hit.flags.writeable = False
    return hit


def _components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    g = sp.coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    return np.asarray(connected_components(g, directed=False)[1])


def _cell_parts(net: WalkNetwork, cell_m: float) -> np.ndarray:
    """Connected parts of the streets inside each grid cell, numbered per node."""
    memo = _GRID.setdefault(net, {})
    hit = memo.get(("parts", cell_m))
    if hit is None:
        cell = _cells(net, cell_m)
        same = cell[net.edge_u] == cell[net.edge_v]
        hit = memo[("parts", cell_m)] = _components(net.n_nodes, net.edge_u[same], net.edge_v[same])
        hit.flags.writeable = False
    return hit


def _pieces(
    net: WalkNetwork, far: np.ndarray, cell_m: float, *, max_diagonal_m: float
) -> np.ndarray:
    """Unserved pieces per node: connected within a cell, merged across while they fit.

    Pieces on both sides of a cell edge, joined by an unserved street, are merged (smallest
    merged extent first) as long as the merged unserved nodes' bounding box has a diagonal of
    at most ``max_diagonal_m``.
    """
    n = net.n_nodes
    cell = _cells(net, cell_m)
    eu, ev = net.edge_u, net.edge_v
    e_far = far[eu] & far[ev]
    inner = e_far & (cell[eu] == cell[ev])
    piece = _components(n, eu[inner], ev[inner])
    cross = e_far & ~inner
    if not cross.any():
        return piece
    pa, pb = piece[eu[cross]], piece[ev[cross]]
    pairs = np.unique(np.column_stack([np.minimum(pa, pb), np.maximum(pa, pb)]), axis=0)
    # extent of every piece's (unserved) nodes
    m = int(piece.max()) + 1
    x, y = net.node_xy[:, 0], net.node_xy[:, 1]
    lo_x = np.full(m, np.inf)
    lo_y = np.full(m, np.inf)
    hi_x = np.full(m, -np.inf)
    hi_y = np.full(m, -np.inf)
    np.minimum.at(lo_x, piece[far], x[far])
    np.minimum.at(lo_y, piece[far], y[far])
    np.maximum.at(hi_x, piece[far], x[far])
    np.maximum.at(hi_y, piece[far], y[far])
    a, b = pairs[:, 0], pairs[:, 1]
    side = np.hypot(
        np.maximum(hi_x[a], hi_x[b]) - np.minimum(lo_x[a], lo_x[b]),
        np.maximum(hi_y[a], hi_y[b]) - np.minimum(lo_y[a], lo_y[b]),
    )
    ok = side <= max_diagonal_m
    a, b = a[ok], b[ok]
    parent = np.arange(m)
    box = np.column_stack([lo_x, lo_y, hi_x, hi_y])
    for i in np.argsort(side[ok], kind="stable").tolist():
        ra, rb = int(a[i]), int(b[i])
        while parent[ra] != ra:
            ra = int(parent[ra])
        while parent[rb] != rb:
            rb = int(parent[rb])
        if ra == rb:
            continue
        ba, bb = box[ra], box[rb]
        merged = (
            min(ba[0], bb[0]),
            min(ba[1], bb[1]),
            max(ba[2], bb[2]),
            max(ba[3], bb[3]),
        )
        if np.hypot(merged[2] - merged[0], merged[3] - merged[1]) <= max_diagonal_m:
            parent[rb] = ra
            box[ra] = merged
    # flatten the forest (paths are short: every merge points a root at a root)
    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            break
        parent = up
    return np.asarray(parent[piece])


def _outlines(
    net: WalkNetwork,
    residents: Snapped,
    points_xy: np.ndarray,
    idx: np.ndarray,
    zone: np.ndarray,
    node_zone: np.ndarray,
    node_m: np.ndarray,
    far: np.ndarray,
    *,
    goal_m: float,
    k: int,
    buffer_m: float,
) -> np.ndarray:
    """Each zone's unserved street pieces and its residents' access legs, outlined at once.

    Unserved pieces: whole edges between two unserved nodes of the zone, half an edge where
    two zones meet, and on an edge with one served end the part beyond the goal.  Everything is
    kept inside a square of side ``2 * goal_m`` (outline included) centred on the zone.
    """
    eu, ev, L = net.edge_u, net.edge_v, net.edge_length_m
    zu, zv = node_zone[eu], node_zone[ev]
    both = far[eu] & far[ev]
    whole = both & (zu == zv) & (zu >= 0)
    split = both & (zu != zv)
    du = np.where(far[eu], np.inf, node_m[eu])
    dv = np.where(far[ev], np.inf, node_m[ev])
    only_u = far[eu] & ~far[ev] & (zu >= 0)
    only_v = far[ev] & ~far[eu] & (zv >= 0)
    pixel_m = buffer_m / PIXELS_PER_BUFFER
    # whole edges are drawn by their nodes (each once) plus samples along those longer than
    # the buffer: most city blocks are shorter, and sampling every edge would double the work
    e_whole = np.flatnonzero(whole & np.greater(L, buffer_m))
    su = np.flatnonzero(split & (zu >= 0))
    sv = np.flatnonzero(split & (zv >= 0))
    ou = np.flatnonzero(only_u)
    ov = np.flatnonzero(only_v)
    edges = np.concatenate([e_whole, su, sv, ou, ov])
    start = np.concatenate(
        [np.zeros(len(e_whole)), np.zeros(len(su)), L[sv] / 2, np.zeros(len(ou)), (goal_m - du[ov])]
    )
    end = np.concatenate([L[e_whole], L[su] / 2, L[sv], L[ou] - (goal_m - dv[ou]), L[ov]])
    owner = np.concatenate([zu[e_whole], zu[su], zv[sv], zu[ou], zv[ov]])
    start = np.clip(start, 0.0, L[edges])
    end = np.clip(end, 0.0, L[edges])
    ok = end > start
    xy, pidx = cut_pieces(net, edges[ok], start[ok], end[ok])
    pts, which, _ = sample_lines(xy, pidx, step_m=pixel_m)
    # access legs: each resident's point and where it meets the street, sampled when long
    long_leg = np.flatnonzero(residents.access_m[idx] > pixel_m)
    legs = np.empty((2 * len(long_leg), 2))
    legs[0::2] = points_xy[idx[long_leg]]
    legs[1::2] = residents.xy[idx[long_leg]]
    leg_pts, leg_which, _ = sample_lines(
        legs, np.repeat(np.arange(len(long_leg)), 2), step_m=pixel_m
    )
    nodes = np.flatnonzero(node_zone >= 0)
    pts = np.vstack([pts, leg_pts, points_xy[idx], residents.xy[idx], net.node_xy[nodes]])
    pt_zone = np.concatenate(
        [owner[ok][which], zone[long_leg][leg_which], zone, zone, node_zone[nodes]]
    )
    # keep every zone inside a 2 x goal square around the middle of its residents' streets
    half = max(goal_m - buffer_m - pixel_m, 0.0)
    mid = _zone_middles(
        np.vstack([residents.xy[idx], net.node_xy[nodes]]),
        np.concatenate([zone, node_zone[nodes]]),
        k,
    )
    off = np.abs(pts - mid[pt_zone])
    pt_zone = np.where((off <= half).all(axis=1), pt_zone, -1)
    return label_outlines(pts, pt_zone, k, buffer_m=buffer_m, pixel_m=pixel_m)


def _zone_middles(xy: np.ndarray, zone: np.ndarray, k: int) -> np.ndarray:
    """Middle of the bounding box of each zone's points (residents and unserved nodes)."""
    lo = np.full((k, 2), np.inf)
    hi = np.full((k, 2), -np.inf)
    for d in range(2):
        np.minimum.at(lo[:, d], zone, xy[:, d])
        np.maximum.at(hi[:, d], zone, xy[:, d])
    return (lo + hi) / 2


def zone_majority(zones: GapZones, values: np.ndarray) -> np.ndarray:
    """The most frequent non-empty value among each zone's residents (``""`` when none).

    One hash pass and one integer sort for all zones, for the gap table's 街道 column (a
    per-zone ``value_counts`` costs seconds with thousands of zones).  Ties go to the value
    met first among the zone's residents.
    """
    k = len(zones.members)
    out = np.full(k, "", dtype=object)
    if k == 0:
        return out
    who = np.concatenate(zones.members)
    z = np.repeat(np.arange(k), [len(m) for m in zones.members])
    codes, uniq = pd.factorize(pd.Series(np.asarray(values, dtype=object)[who]), sort=False)
    uniq = np.asarray(uniq, dtype=object)
    named = codes >= 0  # None and NaN are -1
    empty = np.flatnonzero(np.array([not isinstance(u, str) or u == "" for u in uniq]))
    named &= ~np.isin(codes, empty)
    z, codes = z[named], codes[named].astype(np.int64)
    if len(z) == 0:
        return out
    pair = z * len(uniq) + codes
    p, first_at, counts = np.unique(pair, return_index=True, return_counts=True)
    pz, pc = p // len(uniq), p % len(uniq)
    best = np.lexsort((first_at, -counts, pz))  # per zone: most residents, then met first
    top = best[np.searchsorted(pz[best], np.unique(pz))]
    out[pz[top]] = uniq[pc[top]]
    return out


def candidates_in_gaps(
    net: WalkNetwork, zones: GapZones, *, spacing_m: float = 200.0, max_sites: int = 2000
) -> np.ndarray:
    """Network nodes inside gap zones, thinned to one per ``spacing_m`` grid cell.

    Used when the planner gives no candidate layer: every suggested site is then a street
    corner in an underserved place, which is where a new facility could actually open.  Each
    cell keeps its first node (in node order) strictly inside a zone outline, and the first
    ``max_sites`` cells in that order are kept.

    How: nodes are visited in node order, in chunks, and the visit stops once ``max_sites``
    cells are found (a later node can only add a later cell).  A chunk's nodes are paired with
    the zones whose bounding box holds them through a grid of the zones' boxes, then tested
    with ``contains_xy`` on the prepared outlines: no shapely point is built and no union of
    all outlines either, so time and memory stay linear in the nodes.
    """
    geoms = np.asarray(zones.geometry)
    if len(geoms) == 0 or max_sites <= 0:
        return np.zeros((0, 2))
    boxes = _ZoneBoxes(geoms)
    xy_all = net.node_xy
    lo = np.floor(xy_all.min(axis=0) / spacing_m).astype(np.int64)
    ny = int(np.floor(xy_all[:, 1].max() / spacing_m)) - int(lo[1]) + 1
    found: list[np.ndarray] = []
    n_cells = 0
    for start in range(0, net.n_nodes, _NODE_CHUNK):
        xy = xy_all[start : start + _NODE_CHUNK]
        inside = start + np.flatnonzero(boxes.contains(xy))
        if len(inside) == 0:
            continue
        found.append(inside)
        if n_cells + len(inside) >= max_sites:  # cheap bound first, then the exact count
            n_cells = len(np.unique(_cell_keys(xy_all[np.concatenate(found)], spacing_m, lo, ny)))
            if n_cells >= max_sites:
                break
        else:
            n_cells += len(inside)
    if not found:
        return np.zeros((0, 2))
    xy = xy_all[np.concatenate(found)]
    _, first = np.unique(_cell_keys(xy, spacing_m, lo, ny), return_index=True)
    chosen = xy[np.sort(first)]
    return chosen[:max_sites]


#: Nodes per chunk of :func:`candidates_in_gaps`.
_NODE_CHUNK = 1 << 17


def _cell_keys(xy: np.ndarray, spacing_m: float, lo: np.ndarray, ny: int) -> np.ndarray:
    """One integer per ``spacing_m`` cell (cells counted from ``lo``, ``ny`` rows)."""
    cell = np.floor(xy / spacing_m).astype(np.int64) - lo
    return np.asarray(cell[:, 0] * ny + cell[:, 1])


class _ZoneBoxes:
    """Zone outlines binned by bounding box into a uniform grid, to test many points at once.

    A point is tested only against the zones whose box holds it; the test is GEOS's
    ``contains_xy`` on the prepared outline (strictly inside: a point on the outline is out,
    as with ``within``).
    """

    def __init__(self, geoms: np.ndarray) -> None:
        bounds = shapely.bounds(geoms)
        keep = np.flatnonzero(np.isfinite(bounds).all(axis=1))  # empty outlines hold nothing
        self.geoms = geoms
        self.zone = keep
        self.bounds = bounds[keep]
        if len(keep) == 0:
            return
        shapely.prepare(geoms[keep])
        b = self.bounds
        self.x0, self.y0 = float(b[:, 0].min()), float(b[:, 1].min())
        self.extent = (self.x0, self.y0, float(b[:, 2].max()), float(b[:, 3].max()))
        w, h = float(b[:, 2].max()) - self.x0, float(b[:, 3].max()) - self.y0
        # cells about the size of a typical zone, at most about 4 million of them
        side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
        self.cell = max(float(np.median(side)), np.sqrt(w * h / 4e6), 1e-9)
        self.nx, self.ny = int(w // self.cell) + 1, int(h // self.cell) + 1
        i0, j0 = self._ij(b[:, 0], b[:, 1])
        i1, j1 = self._ij(b[:, 2], b[:, 3])
        wi = i1 - i0 + 1
        counts = wi * (j1 - j0 + 1)
        owner = np.repeat(np.arange(len(b)), counts)
        k = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        key = (i0[owner] + k % wi[owner]) * self.ny + j0[owner] + k // wi[owner]
        order = np.argsort(key, kind="stable")
        self.members = owner[order]
        self.indptr = np.searchsorted(key[order], np.arange(self.nx * self.ny + 1))

    def _ij(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.clip(np.floor((x - self.x0) / self.cell), 0, self.nx - 1).astype(np.int64)
        j = np.clip(np.floor((y - self.y0) / self.cell), 0, self.ny - 1).astype(np.int64)
        return i, j

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Whether each point lies strictly inside any zone outline."""
        out = np.zeros(len(xy), dtype=bool)
        if len(self.zone) == 0:
            return out
        x, y = xy[:, 0], xy[:, 1]
        b = self.bounds
        x0, y0, x1, y1 = self.extent
        near = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
        i, j = self._ij(x[near], y[near])
        cell = i * self.ny + j
        lo = self.indptr[cell]
        counts = self.indptr[cell + 1] - lo
        pt = np.repeat(near, counts)
        zb = self.members[np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(len(pt))]
        px, py = x[pt], y[pt]
        hit = (px >= b[zb, 0]) & (px <= b[zb, 2]) & (py >= b[zb, 1]) & (py <= b[zb, 3])
        pt, zb = pt[hit], zb[hit]
        inside = shapely.contains_xy(self.geoms[self.zone[zb]], x[pt], y[pt])
        out[pt[inside]] = True
        return out
