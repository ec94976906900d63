"""Service-area rings drawn on a raster still end where the walk reaches the cutoff."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely

from geo.network import network_from_graph
from geo.outline import sample_lines
from geo.service_area import cut_pieces, service_areas
from geo.snap import snap_points

UTM = 32651
X0, Y0 = 500_000.0, 3_350_000.0


def _l_street():
    """An L: 2 km east along y = 0, then 2 km north along x = 2000 (bends every 500 m)."""
    G = nx.MultiDiGraph(crs=f"EPSG:{UTM}")
    pts = [(0, 0), (2000, 0), (2000, 2000)]
    for i, (x, y) in enumerate(pts):
        G.add_node(i, x=X0 + x, y=Y0 + y)
    G.add_edge(0, 1, geometry=shapely.LineString([(X0 + x, Y0) for x in range(0, 2001, 500)]))
    G.add_edge(1, 2)
    return network_from_graph(G, crs=UTM)


@pytest.mark.parametrize("buffer_m", [50.0, 20.0])
def test_ring_ends_at_the_cutoff_along_the_street(buffer_m):
    net = _l_street()
    src = snap_points(net, np.array([[X0 + 300.0, Y0]]))
    cut = [300.0, 1000.0, 2500.0]
    sa = service_areas(net, src, cut, buffer_m=buffer_m, per_source=True)
    pixel = buffer_m / 4
    for s in (-1, 0):
        rings = sa[sa.source == s].sort_values("cutoff_m").geometry.to_numpy()
        # from x = 300 the walk reaches x = 0 (dead end) and x = 300 + c east, then turns north
        b = shapely.bounds(rings) - [X0, Y0, X0, Y0]
        assert b[0, 2] == pytest.approx(600 + buffer_m, abs=pixel)
        assert b[1, 2] == pytest.approx(1300 + buffer_m, abs=pixel)
        assert b[2, 3] == pytest.approx(2500 - 1700 + buffer_m, abs=pixel)
        assert b[0, 0] == pytest.approx(-buffer_m, abs=pixel)
        assert b[0, 1] == pytest.approx(-buffer_m, abs=pixel)
        # nested, and drawn from the street, never a hull: the inside of the L stays empty
        assert rings[1].buffer(1e-6).contains(rings[0])
        assert rings[2].buffer(1e-6).contains(rings[1])
        assert not rings[2].contains(shapely.Point(X0 + 1500, Y0 + 500))
        # a band along 300 + 1700 + 800 m of street with two round ends; the raster widens the
        # band by up to half a pixel on each side
        area = 2 * buffer_m * 2800 + np.pi * buffer_m**2
        assert area <= rings[2].area <= area * (1 + pixel / buffer_m)


def test_cut_pieces_follow_bends_exactly():
    net = _l_street()
    e = np.array([0, 0, 1])
    s = np.array([250.0, 0.0, 100.0])
    t = np.array([1750.0, 2000.0, 100.5])
    xy, piece = cut_pieces(net, e, s, t)
    lines = shapely.linestrings(xy, indices=piece)
    np.testing.assert_allclose(shapely.length(lines), t - s, atol=1e-9)
    geoms = net.edge_geometries()[e]
    for a, line, g in zip(s, lines, geoms, strict=True):
        start = shapely.line_interpolate_point(g, a)
        assert shapely.distance(shapely.get_point(line, 0), start) < 1e-9
    # interior bends kept: 250 -> 1750 passes the vertices at 500, 1000, 1500
    assert np.sum(piece == 0) == 5


def test_sample_lines_spacing_and_along():
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 50.0], [7.0, 7.0]])
    piece = np.array([0, 0, 0, 1])
    pts, which, along = sample_lines(xy, piece, step_m=30.0)
    one = pts[which == 0]
    assert len(one) >= 150 / 30
    np.testing.assert_allclose(
        along[which == 0], np.where(one[:, 1] == 0, one[:, 0], 100 + one[:, 1])
    )
    assert pts[which == 1].tolist() == [[7.0, 7.0]]
    gaps = np.diff(np.sort(along[which == 0]))
    assert gaps.max() <= 30.0 + 1e-9
