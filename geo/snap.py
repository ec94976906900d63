"""Snapping points to the nearest point on the nearest walkable edge.

Snapping to edges rather than nodes matters on real streets: OSM nodes on a long arterial can be
hundreds of metres apart, and nearest-node snapping would add or remove minutes at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from geo.network import WalkNetwork

#: Default limit of the straight access leg from a point to the street.
MAX_SNAP_M = 300.0


@dataclass(frozen=True, eq=False)
class Snapped:
    """Where points meet the network.

    Attributes
    ----------
    edge
        Edge index, ``-1`` for unsnapped points.
    offset_m
        Distance along the edge from its ``u`` end to the snapped location.
    access_m
        Straight leg from the point to the snapped location (``inf`` when unsnapped).
    xy
        Snapped location (the original point when unsnapped).
    unsnapped
        True where no walkable edge lies within ``max_snap_m``: such points are reported, never
        dropped or given a made-up distance.
    """

    edge: np.ndarray
    offset_m: np.ndarray
    access_m: np.ndarray
    xy: np.ndarray
    unsnapped: np.ndarray

    def __len__(self) -> int:
        return len(self.edge)

    def subset(self, mask: np.ndarray) -> Snapped:
        """The snapped points selected by a boolean mask or index array."""
        return Snapped(
            self.edge[mask],
            self.offset_m[mask],
            self.access_m[mask],
            self.xy[mask],
            self.unsnapped[mask],
        )


def snap_points(net: WalkNetwork, xy: np.ndarray, *, max_snap_m: float = MAX_SNAP_M) -> Snapped:
    """Snap points (in the network's metric CRS) to the nearest walkable edge.

    Parameters
    ----------
    net
        The walking network.
    xy
        ``(n, 2)`` coordinates in ``net.crs``.
    max_snap_m
        Points farther than this from every edge are flagged ``unsnapped``.

    Raises
    ------
    ValueError
        For NaN or infinite coordinates, naming the first bad row.
    """
    pts_xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    bad = ~np.isfinite(pts_xy).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        # readers reject such rows with the file and row; here it is a caller's mistake
        msg = f"{int(bad.sum())} point(s) have missing or invalid coordinates (first: row {row})"
        raise ValueError(msg)
    if max_snap_m <= 0:
        msg = "`max_snap_m` must be positive"
        raise ValueError(msg)
    n = len(pts_xy)
    edge = np.full(n, -1, dtype=np.int64)
    access = np.full(n, np.inf)
    offset = np.zeros(n)
    snapped_xy = pts_xy.copy()
    if n == 0:
        return Snapped(edge, offset, access, snapped_xy, edge < 0)
    tree, first, piece_edge = net.segment_index
    todo = np.arange(n)
    # growing search boxes: most points find their street within 25 m at a fraction of the cost
    for radius in [r for r in (25.0, 75.0, 200.0) if r < max_snap_m] + [float(max_snap_m)]:
        if len(todo) == 0:
            break
        p = pts_xy[todo]
        boxes = shapely.box(p[:, 0] - radius, p[:, 1] - radius, p[:, 0] + radius, p[:, 1] + radius)
        qi, si = tree.query(boxes)
        if len(qi) == 0:
            continue
        a = net.coords[first[si]]
        ab = net.coords[first[si] + 1] - a
        rel = p[qi] - a
        len2 = (ab * ab).sum(axis=1)
        t = np.clip((rel * ab).sum(axis=1) / np.where(len2 > 0, len2, 1.0), 0.0, 1.0)
        foot = a + ab * t[:, None]
        d = np.hypot(*(foot - p[qi]).T)
        e = piece_edge[si]
        # nearest piece per point; ties go to the lowest edge, so results never depend on order
        order = np.lexsort((e, d, qi))
        keep = np.ones(len(order), dtype=bool)
        keep[1:] = qi[order][1:] != qi[order][:-1]
        best = order[keep]
        ok = d[best] <= radius  # beyond the box radius a nearer piece could sit outside the box
        best = best[ok]
        rows = todo[qi[best]]
        edge[rows] = e[best]
        access[rows] = d[best]
        snapped_xy[rows] = foot[best]
        offset[rows] = np.minimum(
            net.vertex_cum_m[first[si[best]]] + t[best] * np.sqrt(len2[best]),
            net.edge_length_m[e[best]],
        )
        done = np.zeros(len(todo), dtype=bool)
        done[qi[best]] = True
        todo = todo[~done]
    return Snapped(edge, offset, access, snapped_xy, edge < 0)


#: Default reach of :func:`nearest_street_names`: a corner deep inside a block of unnamed
#: footways still gets the street the block fronts, a point in open country gets none.
STREET_NAME_MAX_M = 150.0


def nearest_street_names(
    net: WalkNetwork, xy: np.ndarray, *, max_m: float = STREET_NAME_MAX_M
) -> np.ndarray:
    """The name of the nearest named street to each point, to tell a place by its street.

    A suggested site on an unnamed footway or at a corner is told by the named road next to
    it ("延安路附近"), so only named edges are searched.  Where several named streets are equally
    near (a corner where two meet: both at 0 m), the one with more length in the network wins
    (the main road, not the lane), then the alphabetically first, so the answer never depends
    on the order of the edges.

    Parameters
    ----------
    net
        The walking network (names from OSM ``name:zh``/``name``/``ref``).
    xy
        ``(n, 2)`` coordinates in ``net.crs``.
    max_m
        Farther named streets are not a useful description of where a point is.

    Returns
    -------
    numpy.ndarray
        Object array of ``str``, one per point; ``""`` when no named street lies within
        ``max_m`` or the coordinates are missing.
    """
    if not (np.isfinite(max_m) and max_m > 0):
        msg = f"`max_m` must be a positive number of metres, got {max_m!r}"
        raise ValueError(msg)
    pts_xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    out = np.full(len(pts_xy), "", dtype=object)
    ok = np.flatnonzero(np.isfinite(pts_xy).all(axis=1))
    if len(ok) == 0 or not (net.edge_name != "").any():
        return out
    tree, piece_edge = net.named_segment_index
    qi, si = tree.query_nearest(
        shapely.points(pts_xy[ok]), max_distance=float(max_m), all_matches=True
    )
    if len(qi) == 0:
        return out
    names = net.edge_name[piece_edge[si]].astype(str)
    uniq, inv = np.unique(names, return_inverse=True)
    weight = np.asarray([net.street_length_m[n] for n in uniq.tolist()])
    # per point: the most street length first, then the first name alphabetically (uniq order)
    order = np.lexsort((inv, -weight[inv], qi))
    first = np.ones(len(order), dtype=bool)
    first[1:] = qi[order][1:] != qi[order][:-1]
    best = order[first]
    out[ok[qi[best]]] = uniq[inv[best]].astype(object)
    return out
