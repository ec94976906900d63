"""Service areas (isochrones) from the reached street segments, cut exactly at the cutoff.

A buffered set of reached streets shows what a walker can actually reach: it follows the river
banks, compound walls and bridges that a convex hull or a circle would cross.  The polygons are
for people to look at; coverage numbers always come from travel times.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import shapely
from scipy.sparse.csgraph import dijkstra

from geo.network import WalkNetwork
from geo.routing import _graph_with_sources, node_distances
from geo.snap import Snapped

#: Half-width of the band drawn around reached streets (a walker's reach off the street).
BUFFER_M = 50.0


def _cut(net: WalkNetwork, edge: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The parts ``[start, end]`` (metres from ``u``) of the given edges, as LineStrings."""
    if len(edge) == 0:
        return np.array([], dtype=object)
    off = net.coord_offsets
    count = off[edge + 1] - off[edge]
    seg = np.repeat(np.arange(len(edge)), count)
    vidx = np.repeat(off[edge], count) + (
        np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    )
    cum = net.vertex_cum_m[vidx]
    inner = (cum > start[seg]) & (cum < end[seg])
    geoms = net.edge_geometries()[edge]
    a = shapely.get_coordinates(shapely.line_interpolate_point(geoms, start))
    b = shapely.get_coordinates(shapely.line_interpolate_point(geoms, end))
    # order per segment: start point, inner vertices, end point
    ids = np.concatenate([np.arange(len(edge)), seg[inner], np.arange(len(edge))])
    rank = np.concatenate([np.zeros(len(edge)), 1 + cum[inner] / 1e7, np.full(len(edge), 2.0)])
    xy = np.vstack([a, net.coords[vidx[inner]], b])
    order = np.lexsort((rank, ids))
    return np.asarray(shapely.linestrings(xy[order], indices=ids[order]))


def reached_segments(
    net: WalkNetwork,
    node_d: np.ndarray,
    cutoff_m: float,
    *,
    sources: Snapped | None = None,
    source_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Street pieces within ``cutoff_m`` given node distances (from one or several sources).

    Each edge is reached from its ``u`` end up to ``cutoff - d[u]`` and from its ``v`` end up to
    ``cutoff - d[v]``; the sources' own edges are also reached directly along the edge, which
    matters when the cutoff is shorter than the way to either end.
    """
    L = net.edge_length_m
    ru = np.clip(cutoff_m - node_d[net.edge_u], 0.0, L)
    rv = np.clip(cutoff_m - node_d[net.edge_v], 0.0, L)
    full = ru + rv >= L
    e_full = np.flatnonzero(full & (L > 0))
    pu = np.flatnonzero(~full & (ru > 0))
    pv = np.flatnonzero(~full & (rv > 0))
    edges = [e_full, pu, pv]
    starts = [np.zeros(len(e_full)), np.zeros(len(pu)), L[pv] - rv[pv]]
    ends = [L[e_full], ru[pu], L[pv]]
    if sources is not None and source_ids is not None and len(source_ids):
        reach = cutoff_m - sources.access_m[source_ids]
        ok = reach > 0
        se = sources.edge[source_ids][ok]
        so = sources.offset_m[source_ids][ok]
        edges.append(se)
        starts.append(np.clip(so - reach[ok], 0.0, L[se]))
        ends.append(np.clip(so + reach[ok], 0.0, L[se]))
    e = np.concatenate(edges)
    s = np.concatenate(starts)
    t = np.concatenate(ends)
    keep = t > s
    return _cut(net, e[keep], s[keep], t[keep])


def _polygon(lines: np.ndarray, buffer_m: float) -> shapely.Geometry:
    if len(lines) == 0:
        return shapely.Polygon()
    # buffering pieces and merging them is ~8x faster in GEOS than buffering one multi-line
    return shapely.union_all(shapely.buffer(lines, buffer_m, quad_segs=3))


def service_areas(
    net: WalkNetwork,
    sources: Snapped,
    cutoffs_m: Sequence[float],
    *,
    buffer_m: float = BUFFER_M,
    per_source: bool = True,
    dissolved: bool = True,
) -> gpd.GeoDataFrame:
    """Service-area polygons per source and cutoff, and their dissolved union per cutoff.

    Parameters
    ----------
    net
        The walking network.
    sources
        Snapped facilities; unsnapped ones get no polygon.
    cutoffs_m
        Network distances (metres) to draw, e.g. minutes x metres per minute.
    buffer_m
        Width of the band around reached streets.
    per_source, dissolved
        Which polygons to build: one per source and cutoff, and/or one union per cutoff.  The
        union comes from a multi-source search, not from unioning polygons, so it is cheap.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``source`` (index into ``sources``, ``-1`` for the union), ``cutoff_m`` and
        ``geometry`` in ``net.crs``.
    """
    cutoffs = sorted(float(c) for c in cutoffs_m)
    ids = np.flatnonzero(~sources.unsnapped)
    rows: list[tuple[int, float, shapely.Geometry]] = []
    if len(ids) and cutoffs:
        if per_source:
            step = max(1, 20_000_000 // net.n_nodes)
            for start in range(0, len(ids), step):
                batch = ids[start : start + step]
                nd = node_distances(net, sources, cutoff_m=cutoffs[-1], batch=batch)
                for k, sid in enumerate(batch):
                    for c in cutoffs:
                        lines = reached_segments(
                            net, nd[k], c, sources=sources, source_ids=np.array([sid])
                        )
                        rows.append((int(sid), c, _polygon(lines, buffer_m)))
        if dissolved:
            g = _graph_with_sources(net, sources, ids)
            virt = net.n_nodes + np.arange(len(ids))
            nd_min = dijkstra(g, directed=True, indices=virt, limit=cutoffs[-1], min_only=True)
            nd_min = np.asarray(nd_min[: net.n_nodes])
            for c in cutoffs:
                lines = reached_segments(net, nd_min, c, sources=sources, source_ids=ids)
                rows.append((-1, c, _polygon(lines, buffer_m)))
    return gpd.GeoDataFrame(
        {"source": [r[0] for r in rows], "cutoff_m": [r[1] for r in rows]},
        geometry=[r[2] for r in rows],
        crs=net.crs,
    )
