"""Snapping points to the nearest point on the nearest walkable edge.

Snapping to edges rather than nodes matters on real streets: OSM nodes on a long arterial can be
hundreds of metres apart, and nearest-node snapping would add or remove minutes at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from geo.network import WalkNetwork
from layers.errors import InputError

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
            self.edge[mask], self.offset_m[mask], self.access_m[mask], self.xy[mask],
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
    InputError
        For NaN or infinite coordinates, naming the first bad row.
    """
    pts_xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    bad = ~np.isfinite(pts_xy).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        raise InputError(
            f"{int(bad.sum())} point(s) have missing or invalid coordinates",
            row=row,
            fix="fill in or remove the coordinates of those rows",
        )
    if max_snap_m <= 0:
        msg = "`max_snap_m` must be positive"
        raise ValueError(msg)
    n = len(pts_xy)
    edge = np.full(n, -1, dtype=np.int64)
    access = np.full(n, np.inf)
    offset = np.zeros(n)
    snapped_xy = pts_xy.copy()
    if n:
        points = shapely.points(pts_xy)
        (pi, ei), dist = net.edge_tree.query_nearest(
            points, max_distance=max_snap_m, return_distance=True, all_matches=False
        )
        # ties: keep the lowest edge index per point, so results never depend on tree order
        order = np.lexsort((ei, pi))
        pi, ei, dist = pi[order], ei[order], dist[order]
        first = np.ones(len(pi), dtype=bool)
        first[1:] = pi[1:] != pi[:-1]
        pi, ei, dist = pi[first], ei[first], dist[first]
        geoms = net.edge_geometries()[ei] if len(ei) else np.array([])
        if len(ei):
            along = shapely.line_locate_point(geoms, points[pi])
            offset[pi] = np.clip(along, 0.0, net.edge_length_m[ei])
            snapped_xy[pi] = shapely.get_coordinates(shapely.line_interpolate_point(geoms, along))
        edge[pi] = ei
        access[pi] = dist
    return Snapped(edge, offset, access, snapped_xy, edge < 0)
