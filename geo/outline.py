"""Outlines of many labelled groups of street pieces at once, from one raster.

Buffering and dissolving street pieces in GEOS costs about 50 us per piece, because the buffers
of neighbouring streets overlap and every overlap is noded.  A city has millions of unserved
street pieces, so gap-zone outlines are drawn on a raster instead: the pieces are sampled onto
pixels, every empty pixel within the buffer of some piece takes a label found there (one
disk-shaped maximum filter), and each label's pixels are traced into polygons by marching
squares (contourpy) inside that label's own window.  Time and memory are linear in the street
length and the raster's area, and labels never overlap: every pixel belongs to one zone.
"""

from __future__ import annotations

import logging
from typing import Any

import contourpy
import numpy as np
import shapely
from scipy import ndimage

log = logging.getLogger(__name__)

#: Pixels larger than this are refused: an outline that coarse says nothing.
MAX_PIXEL_M = 500.0
#: Rasters above this many pixels get coarser pixels (memory: about 40 bytes per pixel).
MAX_PIXELS = 60_000_000
#: Service-area rasters larger than this get pixels of up to half the buffer (a city-wide
#: search: the minimum filter and the contours cost time per pixel, reached or not).
RING_PIXELS = 6_000_000


def sample_lines(
    xy: np.ndarray, piece: np.ndarray, *, step_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every ``step_m`` or closer along polylines, with each point's polyline.

    Parameters
    ----------
    xy, piece
        Vertices in order and the polyline each belongs to (consecutive vertices of one
        polyline are its segments; ``piece`` ascending), as ``shapely.linestrings(xy,
        indices=piece)`` takes them.  A polyline of one vertex is a point.
    step_m
        Largest gap between samples.

    Returns
    -------
    points, piece, along_m
        The samples (every vertex among them), the polyline of each and how far along its
        polyline each lies.
    """
    if len(xy) == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0)
    same = piece[1:] == piece[:-1]
    seg_len = np.where(same, np.hypot(*np.diff(xy, axis=0).T), 0.0)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    first = np.flatnonzero(np.concatenate([[True], ~same]))
    v_along = cum - np.repeat(cum[first], np.diff(np.append(first, len(xy))))
    # every segment sampled from its start (t = 0) on; then each polyline's last vertex
    s_idx = np.flatnonzero(same)
    n = np.maximum(np.ceil(seg_len[s_idx] / step_m).astype(np.int64), 1)
    if (n == 1).all():
        pts, rep, t = xy[s_idx], np.arange(len(s_idx)), np.zeros(len(s_idx))
    else:
        rep = np.repeat(np.arange(len(s_idx)), n)
        t = (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n, n)
        a, b = xy[s_idx][rep], xy[s_idx + 1][rep]
        pts = a + (b - a) * t[:, None]
    last = np.append(np.flatnonzero(~same), len(xy) - 1)
    return (
        np.vstack([pts, xy[last]]),
        np.concatenate([piece[s_idx][rep], piece[last]]),
        np.concatenate([v_along[s_idx][rep] + seg_len[s_idx][rep] * t, v_along[last]]),
    )


def _polygon(filled: Any) -> shapely.Geometry:
    """Contourpy's OuterOffset output as one (Multi)Polygon."""
    polys = [
        shapely.Polygon(
            pts[offs[0] : offs[1]], [pts[offs[k] : offs[k + 1]] for k in range(1, len(offs) - 1)]
        )
        for pts, offs in zip(*filled, strict=True)
    ]
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def ring_outlines(
    xy: np.ndarray,
    reach_m: np.ndarray,
    cutoffs_m: list[float],
    *,
    buffer_m: float,
    pixel_m: float,
) -> list[shapely.Geometry]:
    """Nested outlines: the pixels within ``buffer_m`` of a sample reached within each cutoff.

    Every pixel takes the smallest network distance of the samples within ``buffer_m`` of it
    (one minimum filter over a disk), and each cutoff is one filled contour of that field.
    Between two samples of one street the field is linear, so a ring ends where the street
    reaches the cutoff, to within the pixel, whatever the raster.  Rings of one field are
    nested by construction.

    Parameters
    ----------
    xy, reach_m
        Points sampled along the reached streets (at most half a pixel apart) and the network
        distance at each.
    cutoffs_m
        Distances to outline.
    buffer_m, pixel_m
        Band around the reached streets, and raster resolution (a fraction of the buffer;
        widened up to half the buffer when the raster would exceed :data:`RING_PIXELS`).
    """
    if len(xy) == 0:
        return [shapely.Polygon() for _ in cutoffs_m]
    top = max(cutoffs_m)
    unreached = 2.0 * top + buffer_m + 1.0  # finite: marching squares needs numbers
    lo = xy.min(axis=0) - buffer_m - 2 * pixel_m
    hi = xy.max(axis=0) + buffer_m + 2 * pixel_m
    # a city-wide search: pixels up to half the buffer keep the raster near RING_PIXELS
    fit = float(np.sqrt(np.prod(hi - lo) / RING_PIXELS))
    pixel_m = max(pixel_m, min(buffer_m / 2, fit))
    while np.prod(np.ceil((hi - lo) / pixel_m)) > MAX_PIXELS and pixel_m < MAX_PIXEL_M:
        pixel_m *= 1.5
        log.info("service-area raster too large: pixels widened to %.0f m", pixel_m)
    ncol, nrow = (np.ceil((hi - lo) / pixel_m).astype(int) + 1).tolist()
    ij = np.floor((xy - lo) / pixel_m).astype(np.int64)
    field = np.full(nrow * ncol, unreached)
    np.minimum.at(field, ij[:, 1] * ncol + ij[:, 0], np.minimum(reach_m, unreached))
    field = field.reshape(nrow, ncol)
    r = int(np.floor(buffer_m / pixel_m))
    if r > 0:
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        disk = xx**2 + yy**2 <= (buffer_m / pixel_m) ** 2
        field = ndimage.minimum_filter(field, footprint=disk, mode="constant", cval=unreached)
    xs = lo[0] + (np.arange(ncol) + 0.5) * pixel_m
    ys = lo[1] + (np.arange(nrow) + 0.5) * pixel_m
    gx, gy = np.meshgrid(xs, ys)
    gen = _generator(gx, gy, field)
    return [_polygon(gen.filled(-1.0, float(c))) for c in cutoffs_m]


def label_outlines(
    xy: np.ndarray,
    label: np.ndarray,
    n_labels: int,
    *,
    buffer_m: float,
    pixel_m: float,
) -> np.ndarray:
    """One outline per label: the pixels within ``buffer_m`` of its sample points, traced.

    Parameters
    ----------
    xy, label
        Sample points (metric CRS) and their label in ``0 .. n_labels - 1``; points labelled
        below 0 are ignored.  Sample lines with :func:`sample_lines` (at most half a pixel
        apart) so that no pixel a street crosses is missed.
    n_labels
        Number of outlines to return; a label without points gets an empty polygon.
    buffer_m
        How far around the points an outline reaches (where two labels compete for an empty
        pixel, the higher one takes it).
    pixel_m
        Raster resolution.  Outlines follow pixel edges to within half a pixel.

    Returns
    -------
    numpy.ndarray
        Object array of ``n_labels`` Polygons or MultiPolygons (with holes where the streets
        enclose a block wider than twice the buffer).
    """
    out = np.array([shapely.Polygon()] * n_labels, dtype=object)
    keep = label >= 0
    xy, label = xy[keep], label[keep]
    if len(xy) == 0 or n_labels == 0:
        return out
    lo = xy.min(axis=0) - buffer_m - 2 * pixel_m
    hi = xy.max(axis=0) + buffer_m + 2 * pixel_m
    while np.prod(np.ceil((hi - lo) / pixel_m)) > MAX_PIXELS and pixel_m < MAX_PIXEL_M:
        pixel_m *= 1.5
        log.info("outline raster too large: pixels widened to %.0f m", pixel_m)
    ncol, nrow = (np.ceil((hi - lo) / pixel_m).astype(int) + 1).tolist()
    ij = np.floor((xy - lo) / pixel_m).astype(np.int64)
    grid = np.zeros((nrow, ncol), dtype=np.int32)
    grid[ij[:, 1], ij[:, 0]] = label + 1
    # widen every label by the buffer into empty pixels (a disk-shaped maximum filter: where
    # two zones compete for a pixel the higher number takes it; marked pixels keep theirs)
    r = int(np.floor(buffer_m / pixel_m))
    if r > 0:
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        disk = xx**2 + yy**2 <= (buffer_m / pixel_m) ** 2
        wide = ndimage.grey_dilation(grid, footprint=disk, mode="constant", cval=0)
        grid = np.where(grid > 0, grid, wide)
    ring_xy: list[np.ndarray] = []
    ring_poly: list[np.ndarray] = []  # per vertex: which polygon (shell first, then holes)
    poly_label: list[int] = []
    for lab, win in enumerate(ndimage.find_objects(grid, max_label=n_labels)):
        if win is None:
            continue
        r0, c0 = win[0].start - 1, win[1].start - 1  # a zero border closes every ring
        mask = np.zeros((win[0].stop - r0 + 1, win[1].stop - c0 + 1))
        mask[1:-1, 1:-1] = grid[win] == lab + 1
        xs = lo[0] + (np.arange(mask.shape[1]) + c0 + 0.5) * pixel_m
        ys = lo[1] + (np.arange(mask.shape[0]) + r0 + 0.5) * pixel_m
        gx, gy = np.meshgrid(xs, ys)
        gen = _generator(gx, gy, mask)
        for pts, offs in zip(*gen.filled(0.5, 1.5), strict=True):
            ring_xy.append(pts)
            ring_poly.append(np.repeat(np.arange(len(offs) - 1), np.diff(offs)) + len(poly_label))
            poly_label.append(lab)
            poly_label.extend([-1] * (len(offs) - 2))  # holes: placeholders in the numbering
    if not ring_xy:
        return out
    xy_all = np.vstack(ring_xy)
    ring_of = np.concatenate(ring_poly)  # ring number per vertex
    rings = shapely.linearrings(xy_all, indices=ring_of)
    owner = np.asarray(poly_label)
    shell = owner >= 0
    # polygon number of every ring: the shell's running count, holes follow their shell
    poly_of_ring = np.cumsum(shell) - 1
    polys = np.asarray(shapely.polygons(rings, indices=poly_of_ring))
    lab_of_poly = owner[shell]
    present, dense = np.unique(lab_of_poly, return_inverse=True)  # labels ascending
    multi = np.asarray(shapely.multipolygons(polys, indices=dense))
    one = np.bincount(dense) == 1
    first = np.searchsorted(lab_of_poly, present)
    out[present[one]] = polys[first[one]]
    out[present[~one]] = multi[~one]
    return out


def _generator(gx: np.ndarray, gy: np.ndarray, z: np.ndarray) -> Any:
    """The serial contour generator of contourpy, built directly.

    ``contour_generator`` checks and masks its arguments in Python, which costs more than the
    tracing itself for thousands of small zone windows.
    """
    return contourpy.SerialContourGenerator(
        gx,
        gy,
        z,
        None,  # type: ignore[arg-type]  # no mask: what contour_generator passes too
        corner_mask=True,
        line_type=contourpy.LineType.Separate,
        fill_type=contourpy.FillType.OuterOffset,
        quad_as_tri=False,
        z_interp=contourpy.ZInterp.Linear,
        x_chunk_size=0,
        y_chunk_size=0,
    )
