"""Snapping points to the nearest point on the nearest walkable edge.

Snapping to edges rather than nodes matters on real streets: OSM nodes on a long arterial can be
hundreds of metres apart, and nearest-node snapping would add or remove minutes at random.
"""

from __future__ import annotations

import weakref
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

    The nearest straight piece of any edge wins; where several are exactly equally near (a
    point on the bisector of two streets, a corner), the lowest edge index wins, then the
    piece nearest the edge's ``u`` end, so the answer never depends on the order of the
    points or of a search.  Points are searched in chunks through a uniform grid of the pieces
    (:class:`_PieceGrid`), within growing radii: time and memory are linear in the points and
    in the pieces, and no shapely object is built.

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
    if n == 0 or net.n_edges == 0:
        return Snapped(edge, offset, access, snapped_xy, edge < 0)
    grid = _piece_grid(net)
    cum_m = net.vertex_cum_m
    radii = [r for r in (25.0, 75.0, 200.0) if r < max_snap_m] + [float(max_snap_m)]
    # cell by cell: neighbouring points share their pieces, so the gathers stay in cache
    by_cell = np.argsort(grid.cell_of(pts_xy), kind="stable")
    for lo in range(0, n, _CHUNK):
        todo = by_cell[lo : lo + _CHUNK]
        # growing search boxes: most points find their street within 25 m at a fraction of
        # the cost of the full radius
        for radius in radii:
            # a wide box holds many cells: fewer points at a time keep the candidates bounded
            span = int(2 * radius // grid.cell_m) + 2
            step = max(1, _CELLS_PER_PASS // (span * span))
            left = []
            for at in range(0, len(todo), step):
                part = todo[at : at + step]
                px, py = pts_xy[part, 0], pts_xy[part, 1]
                got, piece, d = grid.nearest(px, py, radius)
                rows = part[got]
                t, fx, fy, _ = grid.foot(px[got], py[got], piece)
                e = grid.edge[piece]
                edge[rows] = e
                access[rows] = d
                snapped_xy[rows, 0] = fx
                snapped_xy[rows, 1] = fy
                offset[rows] = np.minimum(
                    cum_m[grid.first[piece]] + t * np.sqrt(grid.len2[piece]),
                    net.edge_length_m[e],
                )
                keep = np.ones(len(part), dtype=bool)
                keep[got] = False
                left.append(part[keep])
            todo = np.concatenate(left) if left else todo[:0]
            if len(todo) == 0:
                break
    return Snapped(edge, offset, access, snapped_xy, edge < 0)


#: Points per search chunk: bounds the candidate arrays (about 15 pieces per point, a few
#: hundred bytes each) to well under 100 MB whatever the number of points.
_CHUNK = 1 << 16
#: Grid cells looked at per pass (points x cells in their search box): with about 3 pieces
#: per cell and some 150 bytes per candidate, a pass stays near 100 MB even when every point
#: needs the widest box (a 300 m box spans up to 196 cells of 50 m).
_CELLS_PER_PASS = 1 << 18
#: Side of the grid cells the pieces are binned in, unless the extent is sparse (then larger,
#: to keep the cell table near the number of pieces).
_CELL_M = 50.0


def _ragged(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner and rank within its owner of every item, for owners with ``counts`` items each."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - starts[owner]


class _PieceGrid:
    """Every straight piece of every edge, binned by bounding box into a uniform grid.

    A piece is listed in every cell its bounding box touches, so the pieces listed in the
    cells a query box touches include every piece whose bounding box meets the box (what an
    R-tree query returns), plus a few more; the nearest is then found exactly.  About 60 bytes
    per piece, against several hundred for shapely pieces in an STRtree.  The distance and the
    foot are computed with the same floating-point operations, in the same order, for every
    candidate, so equal distances are exactly equal.
    """

    def __init__(self, net: WalkNetwork) -> None:
        coords = net.coords
        start = np.ones(len(coords) - 1, dtype=bool)
        start[net.coord_offsets[1:-1] - 1] = False  # no piece joins two edges
        self.first = np.flatnonzero(start)
        self.edge = np.repeat(np.arange(net.n_edges), np.diff(net.coord_offsets) - 1)
        ax, ay = coords[self.first, 0], coords[self.first, 1]
        bx, by = coords[self.first + 1, 0], coords[self.first + 1, 1]
        self.ax, self.ay = ax, ay
        self.abx, self.aby = bx - ax, by - ay
        self.len2 = self.abx * self.abx + self.aby * self.aby
        x0, y0 = np.minimum(ax, bx), np.minimum(ay, by)
        x1, y1 = np.maximum(ax, bx), np.maximum(ay, by)
        self.x0, self.y0 = float(x0.min()), float(y0.min())
        w, h = float(x1.max()) - self.x0, float(y1.max()) - self.y0
        # cells of at least 2 x the first search radius: a first search looks at 2 x 2 cells;
        # larger on a sparse extent, so the cell table stays near the number of pieces
        self.cell_m = max(_CELL_M, float(np.sqrt(w * h / max(4 * len(ax), 1 << 20))))
        self.nx, self.ny = int(w // self.cell_m) + 1, int(h // self.cell_m) + 1
        i0, j0 = self._i(x0, self.x0, self.nx), self._i(y0, self.y0, self.ny)
        i1, j1 = self._i(x1, self.x0, self.nx), self._i(y1, self.y0, self.ny)
        wi = i1 - i0 + 1
        owner, k = _ragged(wi * (j1 - j0 + 1))
        key = (i0[owner] + k % wi[owner]) * self.ny + j0[owner] + k // wi[owner]
        order = np.argsort(key, kind="stable")  # within a cell: pieces in index order
        self.members = owner[order]
        self.indptr = np.searchsorted(key[order], np.arange(self.nx * self.ny + 1))

    def _i(self, v: np.ndarray, v0: float, n: int) -> np.ndarray:
        return np.clip(np.floor((v - v0) / self.cell_m), 0, n - 1).astype(np.int64)

    def cell_of(self, xy: np.ndarray) -> np.ndarray:
        """Cell number of each point (clipped to the grid), to visit points cell by cell."""
        return self._i(xy[:, 0], self.x0, self.nx) * self.ny + self._i(xy[:, 1], self.y0, self.ny)

    def foot(
        self, px: np.ndarray, py: np.ndarray, piece: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Foot of each point on its piece: ``t`` (0..1 from the piece's start), x, y, distance."""
        ax, ay = self.ax[piece], self.ay[piece]
        abx, aby = self.abx[piece], self.aby[piece]
        len2 = self.len2[piece]
        t = (px - ax) * abx + (py - ay) * aby
        t /= np.where(len2 > 0, len2, 1.0)
        np.clip(t, 0.0, 1.0, out=t)
        fx = ax + abx * t
        fy = ay + aby * t
        return t, fx, fy, np.hypot(fx - px, fy - py)

    def nearest(
        self, px: np.ndarray, py: np.ndarray, radius: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The nearest piece of the points with one within ``radius``.

        Returns the indices of the points that have one, their piece and its distance.
        Ties: the lowest edge, then the lowest piece (nearest the edge's ``u`` end).
        """
        i0, i1 = self._i(px - radius, self.x0, self.nx), self._i(px + radius, self.x0, self.nx)
        j0, j1 = self._i(py - radius, self.y0, self.ny), self._i(py + radius, self.y0, self.ny)
        wi = i1 - i0 + 1
        pt, k = _ragged(wi * (j1 - j0 + 1))
        cell = (i0[pt] + k % wi[pt]) * self.ny + j0[pt] + k // wi[pt]
        lo = self.indptr[cell]
        which, rank = _ragged(self.indptr[cell + 1] - lo)
        piece = self.members[lo[which] + rank]
        pt = pt[which]  # point of every candidate, in order of the points
        none = np.zeros(0, dtype=np.int64)
        if len(pt) == 0:
            return none, none, np.zeros(0)
        d = self.foot(px[pt], py[pt], piece)[3]
        starts = np.flatnonzero(np.r_[True, pt[1:] != pt[:-1]])
        got = pt[starts]
        best = np.full(len(px), np.inf)
        best[got] = np.minimum.reduceat(d, starts)
        at = np.flatnonzero(d == best[pt])  # the nearest candidates: one per point, but ties
        tie_pt, tie_piece = pt[at], piece[at]
        order = np.lexsort((tie_piece, self.edge[tie_piece], tie_pt))
        first = np.r_[True, tie_pt[order][1:] != tie_pt[order][:-1]]
        win = order[first]
        got, win_piece = tie_pt[win], tie_piece[win]
        # beyond the box radius a nearer piece could lie outside the cells searched
        ok = best[got] <= radius
        return got[ok], win_piece[ok], best[got[ok]]


#: One piece grid per network, built on first use and dropped with the network.
_GRIDS: weakref.WeakKeyDictionary[WalkNetwork, _PieceGrid] = weakref.WeakKeyDictionary()


def _piece_grid(net: WalkNetwork) -> _PieceGrid:
    grid = _GRIDS.get(net)
    if grid is None:
        grid = _GRIDS[net] = _PieceGrid(net)
    return grid


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
