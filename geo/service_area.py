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
from geo.outline import ring_outlines, sample_lines
from geo.routing import _graph_with_sources, node_distances
from geo.snap import Snapped

#: Half-width of the band drawn around reached streets (a walker's reach off the street).
BUFFER_M = 50.0
#: Raster resolution of the polygons, as a share of the band.
PIXELS_PER_BUFFER = 4


def cut_pieces(
    net: WalkNetwork, edge: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the parts ``[start, end]`` (metres from ``u``) of the given edges.

    Returns the vertices in order and the piece each belongs to (``0 .. len(edge) - 1``,
    ascending), as ``shapely.linestrings(xy, indices=piece)`` takes them.  Pure numpy and linear
    in the pieces' vertices: the cut points are interpolated on the stored polylines, so no
    shapely geometry per edge is built.
    """
    if len(edge) == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    off = net.coord_offsets
    cum = net.vertex_cum_m
    first, last = off[edge], off[edge + 1] - 1

    def locate(s: np.ndarray, side: str) -> np.ndarray:
        # index of the vertex starting the segment that holds s (within each edge's polyline)
        lo, hi = first.copy(), last.copy()
        # binary search per piece, vectorised: polylines are short, a few rounds suffice
        while True:
            todo = lo < hi
            if not todo.any():
                return lo
            mid = (lo + hi + 1) // 2
            go = (cum[mid] <= s) if side == "right" else (cum[mid] < s)
            lo = np.where(todo & go, mid, lo)
            hi = np.where(todo & ~go, mid - 1, hi)

    def point(s: np.ndarray, i: np.ndarray) -> np.ndarray:
        j = np.minimum(i + 1, last)
        seg = cum[j] - cum[i]
        t = np.where(seg > 0, (s - cum[i]) / np.where(seg > 0, seg, 1.0), 0.0)
        t = np.clip(t, 0.0, 1.0)[:, None]
        return np.asarray(net.coords[i] + (net.coords[j] - net.coords[i]) * t)

    i_s = locate(start, "right")  # last vertex at or before start
    i_e = locate(end, "left")  # last vertex strictly before end
    a = point(start, i_s)
    b = point(end, i_e)
    n_in = np.maximum(i_e - i_s, 0)  # vertices strictly inside (start, end)
    count = n_in + 2
    total = int(count.sum())
    piece = np.repeat(np.arange(len(edge)), count)
    pos = np.arange(total) - np.repeat(np.cumsum(count) - count, count)  # 0 .. count-1
    xy = np.empty((total, 2))
    head = pos == 0
    tail = pos == np.repeat(count - 1, count)
    mid_ = ~(head | tail)
    xy[head] = a
    xy[tail] = b
    xy[mid_] = net.coords[(np.repeat(i_s, count) + pos)[mid_]]
    return xy, piece


def _cut(net: WalkNetwork, edge: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The parts ``[start, end]`` (metres from ``u``) of the given edges, as LineStrings."""
    if len(edge) == 0:
        return np.array([], dtype=object)
    xy, piece = cut_pieces(net, edge, start, end)
    return np.asarray(shapely.linestrings(xy, indices=piece))


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


def reach_pieces(
    net: WalkNetwork,
    node_d: np.ndarray,
    cutoff_m: float,
    *,
    sources: Snapped | None = None,
    source_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Street pieces within ``cutoff_m``, each with the walk along it.

    Like :func:`reached_segments`, but an edge reached from both ends is split where the two
    walks meet, so the distance along every piece is linear: ``d0 + slope * x`` metres at ``x``
    metres from the piece's start (``slope`` is +1 walking away from where it was entered,
    -1 towards it).

    Returns
    -------
    edge, start_m, end_m, d0_m, slope
        One row per piece (``start < end``, metres from the edge's ``u`` end).
    """
    L = net.edge_length_m
    du, dv = node_d[net.edge_u], node_d[net.edge_v]
    ru = np.clip(cutoff_m - du, 0.0, L)
    rv = np.clip(cutoff_m - dv, 0.0, L)
    with np.errstate(invalid="ignore"):
        meet = np.where(
            np.isfinite(du) & np.isfinite(dv),
            np.clip((dv + L - du) / 2, 0.0, L),
            np.where(np.isfinite(du), L, 0.0),
        )
    pu = np.flatnonzero(ru > 0)
    pv = np.flatnonzero(rv > 0)
    u_end = np.minimum(ru[pu], meet[pu])
    v_start = np.maximum(L[pv] - rv[pv], meet[pv])
    edges = [pu, pv]
    starts = [np.zeros(len(pu)), v_start]
    ends = [u_end, L[pv]]
    d0 = [du[pu], dv[pv] + L[pv] - v_start]
    slope = [np.ones(len(pu)), -np.ones(len(pv))]
    if sources is not None and source_ids is not None and len(source_ids):
        acc = sources.access_m[source_ids]
        ok = cutoff_m - acc > 0
        reach = (cutoff_m - acc)[ok]
        se = sources.edge[source_ids][ok]
        so = sources.offset_m[source_ids][ok]
        acc = acc[ok]
        back = np.clip(so - reach, 0.0, L[se])
        edges += [se, se]
        starts += [back, so]
        ends += [so, np.clip(so + reach, 0.0, L[se])]
        d0 += [acc + (so - back), acc]
        slope += [-np.ones(len(se)), np.ones(len(se))]
    e = np.concatenate(edges)
    s = np.concatenate(starts)
    t = np.concatenate(ends)
    keep = t > s
    return (
        e[keep],
        s[keep],
        t[keep],
        np.concatenate(d0)[keep],
        np.concatenate(slope)[keep],
    )


def _rings(
    net: WalkNetwork,
    node_d: np.ndarray,
    cutoffs: list[float],
    buffer_m: float,
    *,
    sources: Snapped,
    source_ids: np.ndarray,
) -> list[shapely.Geometry]:
    """Every cutoff's polygon from one raster of the walk along the reached street pieces."""
    e, s, t, d0, slope = reach_pieces(
        net, node_d, cutoffs[-1], sources=sources, source_ids=source_ids
    )
    pixel_m = buffer_m / PIXELS_PER_BUFFER
    xy, piece = cut_pieces(net, e, s, t)
    pts, which, along = sample_lines(xy, piece, step_m=pixel_m / 2)
    reach = d0[which] + slope[which] * along
    return ring_outlines(pts, reach, cutoffs, buffer_m=buffer_m, pixel_m=pixel_m)


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

    Drawn from the reached street pieces, cut where the walk reaches each cutoff, widened by
    ``buffer_m``: never a hull.  All cutoffs of one search come from one raster (pixels of a
    quarter of the buffer), in time linear in the reached streets and the raster's area
    (:func:`geo.outline.ring_outlines`), where dissolving GEOS buffers cost about 50 us per
    street piece and dominated a city-sized run.

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
                    polys = _rings(
                        net, nd[k], cutoffs, buffer_m, sources=sources, source_ids=np.array([sid])
                    )
                    rows += [(int(sid), c, p) for c, p in zip(cutoffs, polys, strict=True)]
        if dissolved:
            g = _graph_with_sources(net, sources, ids)
            virt = net.n_nodes + np.arange(len(ids))
            nd_min = dijkstra(g, directed=True, indices=virt, limit=cutoffs[-1], min_only=True)
            nd_min = np.asarray(nd_min[: net.n_nodes])
            polys = _rings(net, nd_min, cutoffs, buffer_m, sources=sources, source_ids=ids)
            rows += [(-1, c, p) for c, p in zip(cutoffs, polys, strict=True)]
    return gpd.GeoDataFrame(
        {"source": [r[0] for r in rows], "cutoff_m": [r[1] for r in rows]},
        geometry=[r[2] for r in rows],
        crs=net.crs,
    )
