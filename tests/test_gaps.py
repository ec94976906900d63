"""Gap zones at city scale: bounded in size, exact sums of the residents, linear to build."""

from __future__ import annotations

from dataclasses import replace

import networkx as nx
import numpy as np
import pytest
import shapely

from bench.synthetic import grid_network, random_points
from coverage.gaps import candidates_in_gaps, find_gaps, zone_majority
from geo.network import WalkNetwork, network_from_graph
from geo.routing import nearest_distances
from geo.snap import snap_points

UTM = 32651
X0, Y0 = 500_000.0, 3_350_000.0


def _zones(net: WalkNetwork, n_res: int, fac_xy: np.ndarray, goal_m: float, seed: int = 3):
    rng = np.random.default_rng(seed)
    pts = random_points(net, n_res, seed=seed)
    res = snap_points(net, pts)
    fac = snap_points(net, fac_xy)
    near = nearest_distances(net, fac, res, cutoff_m=3 * goal_m)
    uncovered = ~(near.distance_m <= goal_m)
    weight = rng.integers(0, 50, n_res).astype(float)  # some residents have no target people
    zones = find_gaps(net, res, pts, uncovered, weight, near, goal_m)
    return zones, res, uncovered, weight, near


@pytest.fixture(scope="module")
def grid_case():
    net = grid_network(6_400, seed=5)  # about 4.8 x 4.8 km
    rng = np.random.default_rng(1)
    fac = net.node_xy[rng.integers(0, net.n_nodes, 3)]
    return net, *_zones(net, 8_000, fac, 600.0)


def test_every_uncovered_resident_in_exactly_one_zone(grid_case):
    _net, zones, res, uncovered, weight, _ = grid_case
    expect = uncovered & ~res.unsnapped & (weight > 0)
    assert ((zones.label > 0) == expect).all()
    members = np.concatenate(zones.members)
    assert len(members) == len(np.unique(members)) == expect.sum()
    for z, m in enumerate(zones.members):
        assert (zones.label[m] == z + 1).all()


def test_zone_numbers_are_exact_sums_of_residents(grid_case):
    _net, zones, res, uncovered, weight, near = grid_case
    expect = uncovered & ~res.unsnapped & (weight > 0)
    assert zones.uncovered_population.sum() == pytest.approx(weight[expect].sum(), rel=0, abs=1e-9)
    for z, m in enumerate(zones.members):
        assert zones.uncovered_population[z] == weight[m].sum()
        assert zones.residents[z] == len(m)
        d = near.distance_m[m]
        if np.isfinite(d).any():
            assert zones.nearest_m[z] == d.min()
            assert zones.nearest_facility[z] == near.source[m[np.argmin(d)]]
    # ranked worst first
    assert (np.diff(zones.uncovered_population) <= 0).all()


def test_no_zone_wider_than_twice_the_goal(grid_case):
    _net, zones, *_ = grid_case
    goal_m = 600.0
    assert len(zones.geometry) > 10  # the grid is mostly unserved: many bounded zones
    b = shapely.bounds(zones.geometry)
    assert (b[:, 2] - b[:, 0] <= 2 * goal_m + 1e-6).all()
    assert (b[:, 3] - b[:, 1] <= 2 * goal_m + 1e-6).all()
    # the residents' streets too: every zone's snapped residents fit in a 2 x goal square
    for m in zones.members:
        xy = grid_case[2].xy[m]
        assert (np.ptp(xy, axis=0) <= 2 * goal_m).all()
    assert (zones.area_km2 > 0).all()
    # outlines never overlap (a pixel between two zones belongs to one)
    total = shapely.union_all(zones.geometry).area
    assert total == pytest.approx(shapely.area(zones.geometry).sum(), rel=1e-6)


def test_outlines_cover_their_residents_streets(grid_case):
    _net, zones, res, *_ = grid_case
    for z, m in enumerate(zones.members[:20]):
        inside = shapely.contains_xy(zones.geometry[z], res.xy[m, 0], res.xy[m, 1])
        assert inside.mean() > 0.9


def test_zones_split_a_large_unserved_area_and_keep_connectivity():
    """Two unserved halves joined only through a served street stay apart; a big unserved
    piece is cut into pieces no larger than one site could serve."""
    net = grid_network(10_000, seed=2)  # 6 x 6 km, no facility within reach at all
    far_fac = net.node_xy[:1] - 50_000  # unsnappable: nothing is served
    zones, _res, uncovered, _weight, _ = _zones(net, 5_000, far_fac, 900.0)
    assert uncovered.all()
    # 36 km2 of unserved streets cannot be one zone: at least (6000 / 1800)^2 pieces
    assert len(zones.members) >= 9
    b = shapely.bounds(zones.geometry)
    assert (b[:, 2:] - b[:, :2]).max() <= 1800 + 1e-6


def test_zone_never_jumps_a_served_street():
    """Two dead-end streets that meet only at a served crossroads are two zones."""
    G = nx.MultiDiGraph(crs=f"EPSG:{UTM}")
    for i, (x, y) in enumerate([(0, 0), (-300, 0), (-600, 0), (300, 0), (600, 0), (0, 300)]):
        G.add_node(i, x=X0 + x, y=Y0 + y)
    for a, b in [(0, 1), (1, 2), (0, 3), (3, 4), (0, 5)]:
        G.add_edge(a, b)
    net = network_from_graph(G, crs=UTM)
    pts = np.array([[X0 - 590, Y0 + 5], [X0 - 580, Y0 - 5], [X0 + 590, Y0 + 5]])
    res = snap_points(net, pts)
    fac = snap_points(net, np.array([[X0, Y0 + 290]]))
    near = nearest_distances(net, fac, res, cutoff_m=5000)
    zones = find_gaps(
        net, res, pts, ~(near.distance_m <= 400), np.array([1.0, 2.0, 5.0]), near, 400.0
    )
    assert zones.uncovered_population.tolist() == [5.0, 3.0]
    assert zones.label.tolist() == [2, 2, 1]


def test_zone_majority_picks_the_most_common_named_area(grid_case):
    _, zones, res, *_ = grid_case
    n = len(res.edge)
    values = np.where(np.arange(n) % 3 == 0, "A", np.where(np.arange(n) % 3 == 1, "B", ""))
    got = zone_majority(zones, values.astype(object))
    for z, m in enumerate(zones.members):
        vals = [v for v in values[m] if v]
        if not vals:
            assert got[z] == ""
            continue
        a, b = vals.count("A"), vals.count("B")
        assert got[z] == ("A" if a > b else "B" if b > a else vals[0])  # a tie: met first


def test_candidates_lie_in_zones(grid_case):
    net, zones, *_ = grid_case
    xy = candidates_in_gaps(net, zones, spacing_m=200.0)
    assert len(xy) > 0
    area = shapely.union_all(zones.geometry)
    assert shapely.contains_xy(area, xy[:, 0], xy[:, 1]).all()
    cells = np.floor(xy / 200.0).astype(int)
    assert len(np.unique(cells, axis=0)) == len(xy)


def _candidates_brute(net, zones, spacing_m: float, max_sites: int) -> np.ndarray:
    """Every node against every outline (GEOS ``within``), thinned by a plain loop."""
    pts = shapely.points(net.node_xy)
    inside = np.zeros(net.n_nodes, dtype=bool)
    for g in zones.geometry:
        inside |= shapely.within(pts, g)
    seen: set[tuple[int, int]] = set()
    out = []
    for k in np.flatnonzero(inside):
        cell = tuple(np.floor(net.node_xy[k] / spacing_m).astype(int).tolist())
        if cell not in seen:
            seen.add(cell)
            out.append(net.node_xy[k])
    return np.array(out).reshape(-1, 2)[:max_sites]


@pytest.mark.parametrize(
    ("spacing_m", "max_sites", "chunk"), [(200.0, 2000, None), (150.0, 25, 97)]
)
def test_candidates_equal_a_brute_force(grid_case, monkeypatch, spacing_m, max_sites, chunk):
    import coverage.gaps as gaps_mod

    net, zones, *_ = grid_case
    if chunk is not None:  # small chunks: the early stop after max_sites cells is exercised
        monkeypatch.setattr(gaps_mod, "_NODE_CHUNK", chunk)
    got = candidates_in_gaps(net, zones, spacing_m=spacing_m, max_sites=max_sites)
    want = _candidates_brute(net, zones, spacing_m, max_sites)
    assert len(want) > 0
    np.testing.assert_array_equal(got, want)


def test_candidates_ignore_empty_outlines(grid_case):
    net, zones, *_ = grid_case
    geoms = np.array([shapely.Polygon() for _ in zones.geometry], dtype=object)
    empty = replace(zones, geometry=geoms)
    assert candidates_in_gaps(net, empty).shape == (0, 2)
    one = replace(zones, geometry=np.concatenate([geoms[:-1], zones.geometry[:1]]))
    np.testing.assert_array_equal(
        candidates_in_gaps(net, one, max_sites=50),
        _candidates_brute(net, replace(zones, geometry=zones.geometry[:1]), 200.0, 50),
    )
