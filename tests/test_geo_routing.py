"""Routing is checked against an independent networkx computation on random graphs.

The oracle splits every edge at the snapped points lying on it, hangs each point on its snapped
location by its access leg, and runs networkx Dijkstra: nothing of geo.routing is reused.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.network import network_from_graph
from geo.routing import nearest_distances, reachable_pairs
from geo.service_area import service_areas
from geo.snap import snap_points

UTM = 32651
X0, Y0 = 500_000.0, 3_350_000.0  # a spot in UTM 51N near Hangzhou


def random_network(seed: int, n: int = 30, *, connected: bool = True, loops: bool = True):
    """A random planar-ish street graph with bends, a zero-length edge and optionally a loop."""
    rng = np.random.default_rng(seed)
    G = nx.MultiDiGraph(crs=f"EPSG:{UTM}")
    pts = rng.uniform(0, 1000, size=(n, 2))
    for i, (x, y) in enumerate(pts):
        G.add_node(i, x=X0 + x, y=Y0 + y)
    order = rng.permutation(n)
    half = n // 2
    for k in range(1, n):  # a random tree keeps it connected...
        a = order[k]
        pool = order[:k] if connected or k < half else order[half:k]
        if not connected and k == half:
            continue  # ...or two separate trees
        b = pool[rng.integers(len(pool))]
        _add_edge(G, int(a), int(b), rng)
    for _ in range(n // 2):  # plus extra streets making cycles
        a, b = rng.integers(0, n, 2)
        if (
            a != b
            and (True)
            and (
                connected
                or (np.flatnonzero(order == a)[0] < half) == (np.flatnonzero(order == b)[0] < half)
            )
        ):
            _add_edge(G, int(a), int(b), rng)
    # zero-length edge: a node at the same place as node order[0]
    z = n
    G.add_node(z, x=G.nodes[int(order[0])]["x"], y=G.nodes[int(order[0])]["y"])
    G.add_edge(
        int(order[0]), z, geometry=shapely.LineString([(G.nodes[z]["x"], G.nodes[z]["y"])] * 2)
    )
    if loops:
        u = int(order[1])
        ux, uy = G.nodes[u]["x"], G.nodes[u]["y"]
        G.add_edge(
            u,
            u,
            geometry=shapely.LineString([(ux, uy), (ux + 80, uy), (ux + 80, uy + 60), (ux, uy)]),
        )
    return G


def _add_edge(G, a: int, b: int, rng) -> None:
    ax, ay = G.nodes[a]["x"], G.nodes[a]["y"]
    bx, by = G.nodes[b]["x"], G.nodes[b]["y"]
    mx, my = (ax + bx) / 2 + rng.normal(0, 40), (ay + by) / 2 + rng.normal(0, 40)
    G.add_edge(a, b, geometry=shapely.LineString([(ax, ay), (mx, my), (bx, by)]))


def oracle(net, snapped_src, snapped_tgt, cutoff):
    """Nearest-source distances by networkx on a graph split at every snapped point."""
    H = split_graph(net, snapped_src, snapped_tgt)
    srcs = [("s", i) for i in range(len(snapped_src)) if snapped_src.edge[i] >= 0]
    if not srcs:
        return np.full(len(snapped_tgt), np.inf)
    d = nx.multi_source_dijkstra_path_length(H, srcs, weight="weight")
    out = np.array([d.get(("t", i), np.inf) for i in range(len(snapped_tgt))])
    out[out > cutoff] = np.inf
    return out


def split_graph(net, snapped_src, snapped_tgt) -> nx.Graph:
    """The network as a networkx graph split at every snapped point (an independent oracle).

    Sources are nodes ``("s", i)``, targets ``("t", i)``, each tied to its point on the edge by
    its access leg.
    """
    H = nx.Graph()
    for u, v in zip(net.edge_u, net.edge_v, strict=True):
        H.add_node(("n", int(u)))
        H.add_node(("n", int(v)))
    on_edge = defaultdict(list)
    for tag, sn in (("s", snapped_src), ("t", snapped_tgt)):
        for i in range(len(sn)):
            if sn.edge[i] >= 0:
                on_edge[int(sn.edge[i])].append((float(sn.offset_m[i]), (tag, i)))
                H.add_edge((tag, i), ("p", tag, i), weight=float(sn.access_m[i]))
    for e, (u, v, L) in enumerate(zip(net.edge_u, net.edge_v, net.edge_length_m, strict=True)):
        chain = [(0.0, ("n", int(u)))]
        chain += sorted((off, ("p", *key)) for off, key in on_edge.get(e, []))
        chain.append((float(L), ("n", int(v))))
        for (o1, a), (o2, b) in itertools.pairwise(chain):
            w = o2 - o1
            if H.has_edge(a, b):
                w = min(w, H[a][b]["weight"])
            if a != b:
                H.add_edge(a, b, weight=w)
    return H


def _points(seed: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    return np.column_stack([X0 + rng.uniform(-50, 1050, k), Y0 + rng.uniform(-50, 1050, k)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_src=st.integers(1, 6),
    n_tgt=st.integers(1, 25),
    cutoff=st.sampled_from([150.0, 400.0, 900.0, math.inf]),
    connected=st.booleans(),
)
def test_nearest_distances_equal_networkx(seed, n_src, n_tgt, cutoff, connected):
    G = random_network(seed, connected=connected)
    net = network_from_graph(G, crs=UTM, largest_component=False)
    src = snap_points(net, _points(seed, n_src), max_snap_m=120)
    tgt = snap_points(net, _points(seed + 7, n_tgt), max_snap_m=120)
    got = nearest_distances(net, src, tgt, cutoff_m=cutoff)
    want = oracle(net, src, tgt, cutoff)
    np.testing.assert_allclose(got.distance_m, want, rtol=0, atol=1e-6)
    # the reported source really is at that distance
    for i in np.flatnonzero(np.isfinite(got.distance_m)):
        s = got.source[i]
        single = nearest_distances(
            net, src.subset(np.array([s])), tgt.subset(np.array([i])), cutoff_m=cutoff
        )
        assert single.distance_m[0] == pytest.approx(got.distance_m[i], abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cutoff=st.sampled_from([200.0, 500.0, 1200.0]))
def test_reachable_pairs_match_single_source(seed, cutoff):
    G = random_network(seed)
    net = network_from_graph(G, crs=UTM)
    src = snap_points(net, _points(seed, 5), max_snap_m=150)
    tgt = snap_points(net, _points(seed + 3, 20), max_snap_m=150)
    pairs = reachable_pairs(net, src, tgt, cutoff_m=cutoff)
    got = {(int(s), int(t)): d for s, t, d in pairs.itertuples(index=False)}
    for s in range(len(src)):
        want = oracle(net, src.subset(np.array([s])), tgt, cutoff)
        for t in range(len(tgt)):
            if np.isfinite(want[t]):
                assert got[(s, t)] == pytest.approx(want[t], abs=1e-6)
            else:
                assert (s, t) not in got
    # the nearest of the pairs is what nearest_distances reports
    near = nearest_distances(net, src, tgt, cutoff_m=cutoff)
    best = pairs.groupby("target")["distance_m"].min()
    for t in range(len(tgt)):
        assert best.get(t, np.inf) == pytest.approx(near.distance_m[t], abs=1e-6)


def test_same_edge_and_partial_edges_by_hand():
    # one straight 1000 m street from node 0 to node 1
    G = nx.MultiDiGraph(crs=f"EPSG:{UTM}")
    G.add_node(0, x=X0, y=Y0)
    G.add_node(1, x=X0 + 1000, y=Y0)
    G.add_edge(0, 1)
    net = network_from_graph(G, crs=UTM)
    src = snap_points(net, np.array([[X0 + 300, Y0 + 10]]))
    tgt = snap_points(
        net, np.array([[X0 + 700, Y0 - 20], [X0 + 300, Y0 + 10], [X0 + 2000, Y0]]), max_snap_m=300
    )
    near = nearest_distances(net, src, tgt)
    # 10 m access + 400 m along the street + 20 m access
    assert near.distance_m[0] == pytest.approx(430.0)
    # a duplicate point on the facility: both access legs
    assert near.distance_m[1] == pytest.approx(20.0)
    # 1000 m off the street end: unsnapped, never a made-up distance
    assert tgt.unsnapped[2] and np.isinf(near.distance_m[2]) and near.source[2] == -1
    assert np.isinf(nearest_distances(net, src, tgt, cutoff_m=429.0).distance_m[0])


def test_unreached_part_without_cutoff_is_inf():
    # found by hypothesis in CI: a target on a separate part, searched with no cutoff
    G = random_network(0, connected=False)
    net = network_from_graph(G, crs=UTM, largest_component=False)
    src = snap_points(net, _points(0, 1), max_snap_m=120)
    tgt = snap_points(net, _points(7, 1), max_snap_m=120)
    near = nearest_distances(net, src, tgt)
    assert np.isinf(near.distance_m[0]) and near.source[0] == -1
    np.testing.assert_array_equal(near.distance_m, oracle(net, src, tgt, math.inf))


def test_unsnapped_sources_and_empty_inputs():
    G = random_network(3)
    net = network_from_graph(G, crs=UTM)
    far = snap_points(net, np.array([[X0 + 99_000, Y0]]))
    tgt = snap_points(net, _points(1, 4))
    assert far.unsnapped.all()
    assert np.isinf(nearest_distances(net, far, tgt).distance_m).all()
    empty = snap_points(net, np.zeros((0, 2)))
    assert len(nearest_distances(net, empty, tgt).distance_m) == 4
    assert reachable_pairs(net, empty, tgt, cutoff_m=500).empty


def test_snap_is_nearest_point_on_nearest_edge():
    G = random_network(11)
    net = network_from_graph(G, crs=UTM)
    pts = _points(11, 200)
    sn = snap_points(net, pts, max_snap_m=1e9)
    lines = net.edge_geometries()
    brute = np.array([shapely.distance(lines, shapely.Point(p)).min() for p in pts])
    np.testing.assert_allclose(sn.access_m, brute, atol=1e-6)
    # the snapped location is on its edge at the reported offset
    on = shapely.line_interpolate_point(lines[sn.edge], sn.offset_m)
    np.testing.assert_allclose(shapely.get_coordinates(on), sn.xy, atol=1e-6)


def test_snap_rejects_nan_by_row():
    """NaN reaching the router is a caller's mistake (readers reject it with file and row)."""
    from layers.errors import InputError

    net = network_from_graph(random_network(2), crs=UTM)
    with pytest.raises(ValueError, match="row 2") as err:
        snap_points(net, np.array([[X0, Y0], [np.nan, Y0]]))
    assert not isinstance(err.value, InputError)


def test_service_area_contains_reached_and_excludes_far():
    G = random_network(5)
    net = network_from_graph(G, crs=UTM)
    src = snap_points(net, _points(5, 2))
    sa = service_areas(net, src, [300.0, 600.0], buffer_m=5.0)
    assert set(sa["source"]) == {-1, 0, 1}
    # nested rings: the 600 m area contains the 300 m area
    for s in (-1, 0, 1):
        small = sa[(sa.source == s) & (sa.cutoff_m == 300)].geometry.iloc[0]
        big = sa[(sa.source == s) & (sa.cutoff_m == 600)].geometry.iloc[0]
        assert big.buffer(1e-6).contains(small)
    # points on the network are inside the dissolved area exactly when within the cutoff
    tgt_pts = _points(77, 300)
    tgt = snap_points(net, tgt_pts, max_snap_m=1e9)
    on_street = tgt.xy
    zero_leg = snap_points(net, on_street, max_snap_m=1e9)
    d = nearest_distances(net, src, zero_leg).distance_m
    union = sa[(sa.source == -1) & (sa.cutoff_m == 600)].geometry.iloc[0]
    inside = shapely.contains_xy(union.buffer(1e-3), on_street[:, 0], on_street[:, 1])
    assert inside[d <= 590].all()  # reached: inside (10 m slack for the 5 m band)
    # clearly unreached street points lie outside, unless another reached street passes by
    far = d > 700
    lines = net.edge_geometries()
    assert not inside[far & (shapely.distance(shapely.points(on_street), union) > 0)].any()
    assert len(lines) > 0
