"""Splitting a study into partitions that are snapped and routed apart and merge exactly.

A partition is a set of *core* residents (one 街道, or one square tile of the residents outside
every 街道, or of all residents when no 街道 are given) plus the part of the walk network within
a *halo* of them: every edge of which any part lies within ``halo_m`` of the core's convex hull.
Every resident is in exactly one core; the halos overlap.

Why that is exact.  A walk of length ``L`` from a resident never leaves the disc of radius
``L`` around it (a straight line is never longer than the walk).  So with ``halo_m`` at least the
routing horizon ``H`` plus the snapping limit, every walk of ``H`` or less from a core resident,
every edge a core resident can snap to, and every facility such a walk reaches lie in the
partition's network, and a search there gives the same distance as on the whole network for
every resident whose distance is at most ``H``; a longer (or no) distance in the partition means
longer than ``H`` on the whole network too.  :func:`study_halo_m` adds two snapping legs, as
:func:`geo.load.walking_halo_m` does for the clip of the whole network.

The subnetwork keeps the whole network's edge and node order (ids ascending), so ties between
equally near edges go the same way as on the whole network (:func:`geo.snap.snap_points` breaks
them by the lowest edge id), and it carries the whole network's per-vertex distances along each
edge, so snapped offsets are the same floats.

The clip of :func:`geo.network.build_network` is not reused: it works on the raw OSM ways before
there is a network (it removes duplicates, picks the largest component and renumbers), while a
partition needs a cut of a built network that keeps its edges and ids.  :func:`subnetwork` is
that cut.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely

from coverage.state import layer_horizon_m
from geo.network import BuildReport, WalkNetwork
from layers.spec import LayerSpec

log = logging.getLogger(__name__)

#: Target residents per tile when the tiles are not counted by the caller: a partition of this
#: size snaps and routes in well under a second and ships a few megabytes.
RESIDENTS_PER_TILE = 20_000
#: Segments per quarter circle of the halo's round ends.
_QUAD_SEGS = 8


@dataclass(frozen=True, eq=False)
class Partition:
    """One partition: its core residents and the network edges of its halo.

    Attributes
    ----------
    name
        The 街道's name, or ``tile COL,ROW`` for a square tile.
    residents
        Indices of the core residents (into the study's residents), ascending.
    edges
        Ids of the whole network's edges within the halo of the core, ascending.
    """

    name: str
    residents: np.ndarray
    edges: np.ndarray


def study_halo_m(specs: Iterable[LayerSpec], *, max_snap_m: float) -> tuple[float, float]:
    """The routing horizon ``H`` of a study and the halo of its partitions, in metres.

    ``H`` is the longest walk any layer is measured against (its longest threshold or goal at
    its speed, :func:`coverage.state.layer_horizon_m`); the halo is ``H`` plus two snapping legs
    of ``max_snap_m``: the same slack as :func:`geo.load.walking_halo_m`, per layer rather than
    the fastest speed times the longest minutes, so partitions stay as small as is exact.
    """
    horizons = [layer_horizon_m(s) for s in specs]
    if not horizons:
        msg = "a study needs at least one facility layer to be partitioned"
        raise ValueError(msg)
    horizon = max(horizons)
    return horizon, horizon + 2.0 * float(max_snap_m)


def _tile_cells(pts: np.ndarray, *, n_tiles: int) -> tuple[np.ndarray, int]:
    """Each point's cell (``col * rows + row``) and the number of rows: see :func:`tile_labels`."""
    if n_tiles < 1:
        msg = f"n_tiles must be at least 1, got {n_tiles}"
        raise ValueError(msg)
    if len(pts) == 0:
        return np.zeros(0, dtype=np.int64), 1
    lo = pts.min(axis=0)
    w, h = (float(v) for v in pts.max(axis=0) - lo)
    # rows and columns whose cells are as square as the box allows, about n_tiles of them
    rows = max(1, round(math.sqrt(n_tiles * h / w))) if w > 0 else n_tiles
    cols = max(1, round(n_tiles / rows))
    cell = np.array([max(w / cols, 1e-9), max(h / rows, 1e-9)])
    ij = np.floor((pts - lo) / cell).astype(np.int64)
    ij = np.minimum(ij, [cols - 1, rows - 1])  # the points on the far edges
    return ij[:, 0] * rows + ij[:, 1], rows


def tile_labels(xy: np.ndarray, *, n_tiles: int) -> np.ndarray:
    """A tile per point: about ``n_tiles`` near-square cells over the points' bounding box.

    Returns ``tile COL,ROW`` per point (object array).  Rows and columns are chosen so that the
    cells are as square as the box allows: a halo around a square adds the least network.
    """
    pts = np.asarray(xy, dtype=float).reshape(-1, 2)
    cells, rows = _tile_cells(pts, n_tiles=n_tiles)
    uniq, inv = np.unique(cells, return_inverse=True)
    names = np.array([_tile_name(int(c), rows) for c in uniq] or [""], dtype=object)
    return names[inv] if len(cells) else np.zeros(0, dtype=object)


def _tile_name(cell: int, rows: int) -> str:
    return f"tile {cell // rows},{cell % rows}"


def _groups(codes: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(code, ascending indices) per distinct code, in order of first appearance."""
    if len(codes) == 0:
        return []
    uniq, first, inv = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    members = np.argsort(inv, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=len(uniq)))])
    return [(int(uniq[g]), members[bounds[g] : bounds[g + 1]]) for g in order]


@dataclass(frozen=True, eq=False)
class EdgeBoxes:
    """Every edge's bounding box, sorted by its left side, for cutting halos from one network.

    A halo's candidate edges are one slice of the sorted boxes (those that start at most
    ``widest_m`` left of the halo and no further right than it), so no shapely object per edge
    and no STRtree are built: 40 bytes per edge here against a LineString and a tree entry
    per edge (about 0.5 GB more peak memory on a 1.8M-edge network).  Built by
    :func:`edge_boxes`; used by :func:`edges_intersecting`.

    Attributes
    ----------
    order
        Edge ids by ascending left side.
    xmin, xmax, ymin, ymax
        Each box, in that order.
    widest_m
        The widest box (a bound on ``xmax - xmin``, rounded up).
    """

    order: np.ndarray
    xmin: np.ndarray
    xmax: np.ndarray
    ymin: np.ndarray
    ymax: np.ndarray
    widest_m: float


def edge_boxes(net: WalkNetwork) -> EdgeBoxes:
    """The bounding box of every edge's polyline (:class:`EdgeBoxes`)."""
    starts = net.coord_offsets[:-1]
    x, y = net.coords[:, 0], net.coords[:, 1]
    xmin = np.minimum.reduceat(x, starts)
    order = np.argsort(xmin, kind="stable")
    xmax = np.maximum.reduceat(x, starts)[order]
    ymin = np.minimum.reduceat(y, starts)[order]
    ymax = np.maximum.reduceat(y, starts)[order]
    xmin = xmin[order]
    width = float((xmax - xmin).max()) if len(order) else 0.0
    # the subtraction rounds: widen the bound so a box is never left out by an ulp
    return EdgeBoxes(order, xmin, xmax, ymin, ymax, width * (1 + 1e-9) + 1e-9)


def _vertex_index(offsets: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``coords`` of the vertices of ``edges``, in order, and the count per edge."""
    starts = offsets[edges]
    count = offsets[edges + 1] - starts
    before = np.cumsum(count) - count
    return np.repeat(starts - before, count) + np.arange(int(count.sum())), count


def halo_zone(core_xy: np.ndarray, *, halo_m: float) -> shapely.Polygon:
    """The core's convex hull buffered by ``halo_m`` (widened so its chords lie outside it).

    The hull is taken of one LineString through the points rather than a MultiPoint of them:
    GEOS reads the same coordinates in the same order either way (so the hull is the same
    polygon, vertex for vertex), without a Point object per resident.
    """
    pts = np.asarray(core_xy, dtype=float).reshape(-1, 2)
    if len(pts) == 0:
        msg = "a halo needs at least one core point"
        raise ValueError(msg)
    # a buffer's round ends are polygons whose vertices lie on the circle and whose chords cut
    # inside it: widen it so the chords lie outside, or edges at the halo's rim go missing
    reach = float(halo_m) / math.cos(math.pi / (4 * _QUAD_SEGS)) + 1e-6 * float(halo_m) + 1e-6
    hull = shapely.convex_hull(shapely.linestrings(pts if len(pts) > 1 else np.vstack([pts, pts])))
    zone: shapely.Polygon = shapely.buffer(hull, reach, quad_segs=_QUAD_SEGS)
    return zone


def edges_intersecting(
    net: WalkNetwork, zone: shapely.Geometry, *, boxes: EdgeBoxes | None = None
) -> np.ndarray:
    """Ids (ascending) of the edges of which any part lies in ``zone``: GEOS ``intersects``.

    The same set as ``STRtree(net.edge_geometries()).query(zone, predicate="intersects")``,
    without a shapely object per edge: the candidates are the edges whose box meets the
    zone's; an edge with a vertex inside the zone (``contains_xy``, most of them) intersects
    it; only the few others (crossing the rim between two vertices, or touching it) are built
    as LineStrings and tested with ``intersects``.
    """
    b = boxes if boxes is not None else edge_boxes(net)
    x0, y0, x1, y1 = (float(v) for v in shapely.bounds(zone))
    lo = int(np.searchsorted(b.xmin, x0 - b.widest_m, side="left"))
    hi = int(np.searchsorted(b.xmin, x1, side="right"))
    near = (b.xmax[lo:hi] >= x0) & (b.ymin[lo:hi] <= y1) & (b.ymax[lo:hi] >= y0)
    cand = np.sort(b.order[lo:hi][near])
    if len(cand) == 0:
        return cand.astype(np.int64)
    shapely.prepare(zone)
    vidx, count = _vertex_index(net.coord_offsets, cand)
    inside = shapely.contains_xy(zone, net.coords[vidx, 0], net.coords[vidx, 1])
    hit = np.zeros(len(cand), dtype=bool)
    hit[np.repeat(np.arange(len(cand)), count)[inside]] = True
    rest = np.flatnonzero(~hit)
    if len(rest):
        rv, rc = _vertex_index(net.coord_offsets, cand[rest])
        lines = shapely.linestrings(net.coords[rv], indices=np.repeat(np.arange(len(rest)), rc))
        hit[rest] = shapely.intersects(zone, lines)
    return cand[hit].astype(np.int64)


def halo_edges(
    net: WalkNetwork, core_xy: np.ndarray, *, halo_m: float, boxes: EdgeBoxes | None = None
) -> np.ndarray:
    """Ids of the edges of which any part lies within ``halo_m`` of the core's convex hull.

    A superset of the edges within ``halo_m`` of any core point, which is what exactness needs;
    one buffered hull per partition (:func:`halo_zone`) keeps the test to a single polygon.
    ``boxes`` is :func:`edge_boxes` of ``net`` when several partitions are cut from one network.
    """
    pts = np.asarray(core_xy, dtype=float).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros(0, dtype=np.int64)
    return edges_intersecting(net, halo_zone(pts, halo_m=halo_m), boxes=boxes)


def partition_cores(
    xy: np.ndarray, street: np.ndarray | None, *, n_tiles: int | None = None
) -> tuple[tuple[str, np.ndarray], ...]:
    """The partitions' names and core residents, without their halos (see :func:`partition_study`).

    Cheap (integer grouping): a caller that cuts each halo only when its task is made
    (:func:`coverage.distributed.route_on_dask`) starts the first task sooner.
    """
    pts = np.asarray(xy, dtype=float).reshape(-1, 2)
    n = len(pts)
    labels = np.full(n, "", dtype=object) if street is None else np.asarray(street, dtype=object)
    if labels.shape != (n,):
        msg = f"street has {labels.shape} entries for {n} residents"
        raise ValueError(msg)
    # one integer per partition: the 街道 first (by name), then the tiles (a 街道 called
    # "tile 0,0" stays apart from the tile of that name: two partitions must never merge)
    outside = labels == ""
    named, codes = np.unique(labels[~outside].astype(str), return_inverse=True)
    code = np.empty(n, dtype=np.int64)
    code[~outside] = codes.reshape(-1)
    rows = 1
    if outside.any():
        n_out = int(outside.sum())
        tiles = n_tiles if n_tiles is not None else math.ceil(n_out / RESIDENTS_PER_TILE)
        cells, rows = _tile_cells(pts[outside], n_tiles=max(int(tiles), 1))
        code[outside] = len(named) + cells
    return tuple(
        (str(named[c]) if c < len(named) else _tile_name(c - len(named), rows), members)
        for c, members in _groups(code)
    )


def partition_study(
    net: WalkNetwork,
    xy: np.ndarray,
    street: np.ndarray | None,
    *,
    halo_m: float,
    n_tiles: int | None = None,
) -> tuple[Partition, ...]:
    """Split the residents into partitions: one per 街道, tiles for the rest, each with its halo.

    Parameters
    ----------
    net
        The whole walk network.
    xy
        Every resident's point in the network CRS (``ResidentState.xy``).
    street
        The 街道 of each resident (``""`` outside all), or ``None`` when no 街道 were given:
        then every resident goes to a tile.
    halo_m
        How far around the core the network must reach (:func:`study_halo_m`).
    n_tiles
        About how many tiles to cut the residents without a 街道 into; default one per
        :data:`RESIDENTS_PER_TILE` residents.

    Returns
    -------
    tuple of Partition
        Every resident in exactly one partition, in order of each partition's first resident;
        partitions without residents are left out.
    """
    pts = np.asarray(xy, dtype=float).reshape(-1, 2)
    cores = partition_cores(pts, street, n_tiles=n_tiles)
    boxes = edge_boxes(net)
    parts = tuple(
        Partition(name, members, halo_edges(net, pts[members], halo_m=halo_m, boxes=boxes))
        for name, members in cores
    )
    log.info(
        "%d partitions (%d residents, largest %d; halo %.0f m)",
        len(parts),
        len(pts),
        max((len(p.residents) for p in parts), default=0),
        halo_m,
    )
    return parts


def subnetwork(net: WalkNetwork, edges: np.ndarray, *, names: bool = True) -> WalkNetwork:
    """The part of ``net`` made of ``edges`` (ids ascending), with the ids kept in order.

    Local edge ``i`` is ``edges[i]`` of the whole network and local node ``j`` is the ``j``-th
    smallest node id any of those edges touches, so every tie broken by id on the whole network
    is broken the same way here.  The per-vertex distances along each edge
    (``vertex_cum_m``, which snapping adds to) are taken from the whole network rather than
    summed again, so offsets on the subnetwork are the same floats.  ``names=False`` leaves the
    street names out (not needed to snap or route; smaller to ship).

    Raises
    ------
    ValueError
        For no edges (a network needs at least one) or ids out of range.
    """
    e = np.asarray(edges, dtype=np.int64)
    if len(e) == 0:
        msg = "a subnetwork needs at least one edge"
        raise ValueError(msg)
    if (np.diff(e) <= 0).any() or e[0] < 0 or e[-1] >= net.n_edges:
        msg = "edges must be ascending, distinct ids of the network's edges"
        raise ValueError(msg)
    eu, ev = net.edge_u[e], net.edge_v[e]
    # the nodes touched, ascending, and their local ids from a mark per node of the whole
    # network: linear, where sorting the ends (np.unique) was most of the cut's time
    touched = np.zeros(net.n_nodes, dtype=bool)
    touched[eu] = True
    touched[ev] = True
    nodes = np.flatnonzero(touched)
    local = np.empty(net.n_nodes, dtype=np.int32)
    local[nodes] = np.arange(len(nodes), dtype=np.int32)
    vidx, vcount = _vertex_index(net.coord_offsets, e)
    length = net.edge_length_m[e]
    report = BuildReport(
        source=f"{net.report.source} (partition)",
        nodes=len(nodes),
        edges=len(e),
        length_km=float(length.sum() / 1000),
        dropped_nodes=0,
        dropped_edges=0,
        dropped_km=0.0,
        clipped_edges=net.n_edges - len(e),
    )
    sub = WalkNetwork(
        crs=net.crs,
        node_xy=net.node_xy[nodes],
        node_osmid=net.node_osmid[nodes],
        edge_u=local[eu],
        edge_v=local[ev],
        edge_length_m=length,
        coords=net.coords[vidx],
        coord_offsets=np.concatenate([[0], np.cumsum(vcount)]).astype(np.int64),
        report=report,
        edge_name=net.edge_name[e] if names else np.zeros(0, dtype=object),
    )
    # vertex_cum_m is a cached_property (stored in the instance dict on first use): seeding it
    # with the whole network's values is what a first use would store, minus the re-summing
    sub.__dict__["vertex_cum_m"] = np.asarray(net.vertex_cum_m[vidx])
    return sub
