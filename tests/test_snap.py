"""Snapping to the nearest walkable edge, checked against independent computations.

Two references: GEOS (shapely's distance and ``line_locate_point`` on whole edge LineStrings,
found through an STRtree of edges rather than the snapper's grid of pieces) and a dense numpy
brute force over every straight piece of every edge (no index, no growing radii).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely

import geo.snap as snap_mod
from bench.synthetic import grid_network
from geo.load import load_network
from geo.network import BuildReport, WalkNetwork
from geo.snap import Snapped, snap_points

OSM = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm"


def _network(lines: list[list[tuple[float, float]]]) -> WalkNetwork:
    """A network whose edges are exactly ``lines`` (in this order), nodes at their ends."""
    ends = sorted({p for line in lines for p in (line[0], line[-1])})
    node = {p: k for k, p in enumerate(ends)}
    coords = np.array([p for line in lines for p in line], dtype=float)
    offsets = np.cumsum([0] + [len(line) for line in lines])
    length = np.array([shapely.LineString(line).length for line in lines])
    return WalkNetwork(
        crs=pyproj.CRS.from_epsg(32651),
        node_xy=np.array(ends, dtype=float),
        node_osmid=np.arange(len(ends)),
        edge_u=np.array([node[line[0]] for line in lines]),
        edge_v=np.array([node[line[-1]] for line in lines]),
        edge_length_m=length,
        coords=coords,
        coord_offsets=offsets,
        report=BuildReport("hand", len(ends), len(lines), float(length.sum() / 1e3), 0, 0, 0.0),
    )


def _brute_pieces(net: WalkNetwork, xy: np.ndarray, max_snap_m: float) -> Snapped:
    """Every point against every piece, ties to the lowest edge then the lowest piece."""
    start = np.ones(len(net.coords) - 1, dtype=bool)
    start[net.coord_offsets[1:-1] - 1] = False
    first = np.flatnonzero(start)
    piece_edge = np.repeat(np.arange(net.n_edges), np.diff(net.coord_offsets) - 1)
    a, b = net.coords[first], net.coords[first + 1]
    ab = b - a
    len2 = ab[:, 0] * ab[:, 0] + ab[:, 1] * ab[:, 1]
    edge = np.full(len(xy), -1)
    offset = np.zeros(len(xy))
    access = np.full(len(xy), np.inf)
    out_xy = np.array(xy, dtype=float)
    for i, (px, py) in enumerate(xy):
        t = ((px - a[:, 0]) * ab[:, 0] + (py - a[:, 1]) * ab[:, 1]) / np.where(len2 > 0, len2, 1)
        t = np.clip(t, 0.0, 1.0)
        fx, fy = a[:, 0] + ab[:, 0] * t, a[:, 1] + ab[:, 1] * t
        d = np.hypot(fx - px, fy - py)
        k = np.lexsort((np.arange(len(d)), piece_edge, d))[0]
        if d[k] <= max_snap_m:
            edge[i], access[i], out_xy[i] = piece_edge[k], d[k], (fx[k], fy[k])
            offset[i] = min(
                net.vertex_cum_m[first[k]] + t[k] * np.sqrt(len2[k]), net.edge_length_m[edge[i]]
            )
    return Snapped(edge, offset, access, out_xy, edge < 0)


def _check_against_geos(net: WalkNetwork, xy: np.ndarray, s: Snapped, max_snap_m: float) -> None:
    """Same edge distance as GEOS's nearest edge; offset and access as GEOS measures them."""
    lines = net.edge_geometries()
    pts = shapely.points(xy)
    qi, ei = shapely.STRtree(lines).query_nearest(pts, all_matches=False, return_distance=False)
    geos_d = np.full(len(xy), np.inf)
    geos_d[qi] = shapely.distance(pts[qi], lines[ei])
    within = geos_d <= max_snap_m
    # exactly at the limit either answer is right; no random point lands there
    assert (~s.unsnapped == within).all()
    ok = ~s.unsnapped
    mine = shapely.distance(pts[ok], lines[s.edge[ok]])
    # the chosen edge is a nearest one (an exact tie may pick another edge than GEOS's)
    np.testing.assert_allclose(mine, geos_d[ok], rtol=0, atol=1e-9)
    np.testing.assert_allclose(s.access_m[ok], geos_d[ok], rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        s.offset_m[ok], shapely.line_locate_point(lines[s.edge[ok]], pts[ok]), rtol=0, atol=1e-6
    )
    foot = shapely.points(s.xy[ok])
    np.testing.assert_allclose(shapely.distance(foot, lines[s.edge[ok]]), 0.0, atol=1e-9)
    assert (s.access_m[~ok] == np.inf).all() and (s.xy[~ok] == xy[~ok]).all()


def _assert_same(a: Snapped, b: Snapped) -> None:
    np.testing.assert_array_equal(a.edge, b.edge)
    np.testing.assert_array_equal(a.unsnapped, b.unsnapped)
    np.testing.assert_array_equal(a.access_m, b.access_m)
    np.testing.assert_array_equal(a.xy, b.xy)
    np.testing.assert_allclose(a.offset_m, b.offset_m, rtol=0, atol=1e-9)


def _test_points(net: WalkNetwork, n: int, seed: int) -> np.ndarray:
    """Random points over the extent and beyond it, points on nodes and on vertices."""
    rng = np.random.default_rng(seed)
    lo, hi = net.node_xy.min(axis=0) - 500, net.node_xy.max(axis=0) + 500
    return np.vstack(
        [
            rng.uniform(lo, hi, (n, 2)),
            net.node_xy[rng.integers(0, net.n_nodes, n // 10)],
            net.coords[rng.integers(0, len(net.coords), n // 10)],
        ]
    )


def test_equidistant_points_go_to_the_lowest_edge() -> None:
    # edge 0 is the upper street, edge 1 the lower one: ties go by index, not by position
    net = _network(
        [
            [(0.0, 10.0), (100.0, 10.0)],
            [(0.0, 0.0), (100.0, 0.0)],
            [(100.0, 0.0), (100.0, 10.0)],
            [(200.0, 0.0), (250.0, 0.0), (250.0, 50.0), (200.0, 0.0)],  # a closed loop
        ]
    )
    xy = np.array(
        [
            [50.0, 5.0],  # 5 m from edges 0 and 1
            [100.0, 0.0],  # on the corner of edges 1 and 2
            [100.0, 10.0],  # on the corner of edges 0 and 2
            [105.0, 5.0],  # 5 m from edge 2 only
            [50.0, 310.0],  # 300 m from edge 0: at the limit, snapped
            [50.0, 310.5],  # beyond the limit
            [200.0, 0.0],  # on the loop's node: both ends of the loop
            [250.0, 0.0],  # on a vertex between two pieces of the loop
        ]
    )
    s = snap_points(net, xy, max_snap_m=300.0)
    assert s.edge.tolist() == [0, 1, 0, 2, 0, -1, 3, 3]
    np.testing.assert_allclose(s.access_m[:5], [5.0, 0.0, 0.0, 5.0, 300.0])
    assert s.unsnapped.tolist() == [False] * 5 + [True] + [False] * 2
    assert s.access_m[5] == np.inf and (s.xy[5] == xy[5]).all()
    # the piece nearest the u end wins a tie within an edge: the loop's node is at offset 0
    np.testing.assert_allclose(s.offset_m[[0, 1, 2, 6, 7]], [50.0, 100.0, 100.0, 0.0, 50.0])
    _assert_same(s, _brute_pieces(net, xy, 300.0))


def test_grid_network_matches_brute_force_and_geos() -> None:
    net = grid_network(2_500, seed=3)
    xy = _test_points(net, 2_000, seed=4)
    s = snap_points(net, xy, max_snap_m=120.0)
    assert s.unsnapped.any() and not s.unsnapped.all()
    _assert_same(s, _brute_pieces(net, xy, 120.0))
    _check_against_geos(net, xy, s, 120.0)


def test_independent_of_order_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    net = grid_network(1_600, seed=6)
    xy = _test_points(net, 1_500, seed=7)
    whole = snap_points(net, xy)
    perm = np.random.default_rng(8).permutation(len(xy))
    shuffled = snap_points(net, xy[perm])
    monkeypatch.setattr(snap_mod, "_CHUNK", 37)
    monkeypatch.setattr(snap_mod, "_CELLS_PER_PASS", 50)  # a few points per pass, 1 when wide
    chunked = snap_points(net, xy)
    _assert_same(whole.subset(perm), shuffled)
    _assert_same(whole, chunked)


def test_empty_and_bad_inputs() -> None:
    net = grid_network(400, seed=1)
    assert len(snap_points(net, np.zeros((0, 2)))) == 0
    with pytest.raises(ValueError, match="row 2"):
        snap_points(net, np.array([[0.0, 0.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="max_snap_m"):
        snap_points(net, np.zeros((1, 2)), max_snap_m=0.0)


@pytest.mark.skipif(not (OSM / "westlake_10km.osm.pbf").exists(), reason="no Hangzhou OSM data")
def test_hangzhou_network_matches_geos_and_brute_force() -> None:
    net = load_network(OSM / "westlake_10km.osm.pbf")
    xy = _test_points(net, 3_000, seed=9)
    s = snap_points(net, xy)
    assert s.unsnapped.any() and not s.unsnapped.all()
    _check_against_geos(net, xy, s, snap_mod.MAX_SNAP_M)
    few = np.random.default_rng(10).choice(len(xy), 300, replace=False)
    _assert_same(s.subset(few), _brute_pieces(net, xy[few], snap_mod.MAX_SNAP_M))
