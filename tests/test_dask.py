"""Snap and route per partition on Dask: the merged state and the summary equal one process's."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import shapely

import app as cli
from bench.synthetic import grid_network, random_points
from coverage.analysis import Routed, analyse, check_inputs, route_study
from coverage.distributed import (
    DaskTarget,
    analyse_on_dask,
    dask_client,
    parse_dask,
    route_on_dask,
)
from coverage.partition import (
    edge_boxes,
    edges_intersecting,
    halo_zone,
    partition_study,
    study_halo_m,
    subnetwork,
    tile_labels,
)
from coverage.summary import summary_dict
from geo.snap import snap_points
from layers.errors import InputError
from layers.plan import read_plan

from .conftest import ROOT, shared_file
from .test_stages import _same


def _prepared(plan, folder: Path):
    return cli.prepare(
        plan, coords_by_layer={}, progress=lambda _: None, synthetic=False, cache_dir=folder
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo district, read and on its network as ``app.py demo`` has it."""
    folder = tmp_path_factory.mktemp("dask_demo")
    args = cli._parser().parse_args(["demo", "--out", str(folder / "out")])
    plan = cli._demo_plan(args, folder / "inputs")
    return replace(_prepared(plan, folder / "cache"), synthetic=True)


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes: tasks and results really travel."""
    with dask_client(DaskTarget("local", n_workers=2)) as c:
        yield c


def _differences(a: Routed, b: Routed) -> list[str]:
    """Which arrays of two routed studies differ (exactly: no tolerance)."""
    out = []
    for f in ("edge", "offset_m", "access_m", "xy", "unsnapped"):
        if not np.array_equal(getattr(a.residents.snap, f), getattr(b.residents.snap, f)):
            out.append(f"snap.{f}")
    for f in ("xy", "street", "community", "hex_cells"):
        x, y = getattr(a.residents, f), getattr(b.residents, f)
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
            out.append(f)
    if list(a.layers) != list(b.layers):
        out.append("layers")
    for k in a.layers:
        la, lb = a.layers[k], b.layers[k]
        for f in ("distance_m", "source", "node_m"):
            if not np.array_equal(getattr(la.near, f), getattr(lb.near, f)):
                out.append(f"{k}.near.{f}")
        for f in ("edge", "offset_m", "access_m"):
            if not np.array_equal(getattr(la.snap, f), getattr(lb.snap, f)):
                out.append(f"{k}.snap.{f}")
        if not np.array_equal(la.weight, lb.weight):
            out.append(f"{k}.weight")
    return out


def _both_paths_used(routed: Routed, horizon_m: float) -> tuple[int, int]:
    """Residents with a distance within H (from a partition) and beyond it (from the client)."""
    d = np.concatenate([lay.near.distance_m for lay in routed.layers.values()])
    return int((d <= horizon_m).sum()), int((np.isfinite(d) & (d > horizon_m)).sum())


# ------------------------------------------------------------------------------- --dask values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("local", DaskTarget("local")),
        ("local:3", DaskTarget("local", n_workers=3)),
        ("tcp://10.0.0.5:8786", DaskTarget("remote", address="tcp://10.0.0.5:8786")),
        ("tcp://scheduler.lan:8786", DaskTarget("remote", address="tcp://scheduler.lan:8786")),
    ],
)
def test_dask_values_parse(value, expected):
    assert parse_dask(value) == expected


@pytest.mark.parametrize(
    "value", ["", "locale", "local:0", "local:x", "tcp://host", "http://h:8786", "tcp://h:70000"]
)
def test_bad_dask_value_is_one_line(value):
    with pytest.raises(InputError) as err:
        parse_dask(value)
    text = str(err.value)
    assert "\n" not in text and text.startswith("--dask: ") and "; fix: " in text


def test_unreachable_scheduler_is_one_line(monkeypatch):
    import coverage.distributed as dist

    monkeypatch.setattr(dist, "CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(InputError) as err, dask_client(parse_dask("tcp://127.0.0.1:9")):
        pass
    text = str(err.value)
    assert "\n" not in text and "tcp://127.0.0.1:9" in text and "dask scheduler" in text


# ------------------------------------------------------------------------------ the partitions


def _nx_with_points(net, groups):
    """networkx graph of ``net`` plus one node per snapped point, tied to its edge's ends."""
    G = net.to_networkx()
    for tag, snap in groups:
        for i in np.flatnonzero(~snap.unsnapped):
            e = int(snap.edge[i])
            u, v = int(net.edge_u[e]), int(net.edge_v[e])
            acc, off = float(snap.access_m[i]), float(snap.offset_m[i])
            G.add_edge((tag, int(i)), u, length=acc + off)
            G.add_edge((tag, int(i)), v, length=acc + float(net.edge_length_m[e]) - off)
    return G


def test_partitions_hold_each_resident_once_and_every_reachable_facility():
    """Brute force and networkx: every resident in one core; the halo holds what it must."""
    net = grid_network(2500, seed=3)
    xy = random_points(net, 240, seed=4)
    fac_xy = random_points(net, 25, seed=5)
    # two "街道" (left and right thirds) and residents outside both, which go to tiles
    x0, x1 = np.quantile(xy[:, 0], [1 / 3, 2 / 3])
    street = np.where(xy[:, 0] < x0, "west", np.where(xy[:, 0] > x1, "east", "")).astype(object)
    horizon_m, snap_m = 400.0, 60.0
    halo_m = horizon_m + 2 * snap_m
    parts = partition_study(net, xy, street, halo_m=halo_m, n_tiles=4)

    names = [p.name for p in parts]
    assert "west" in names and "east" in names and len(parts) >= 4
    every = np.sort(np.concatenate([p.residents for p in parts]))
    assert np.array_equal(every, np.arange(len(xy)))  # each resident exactly once
    for p in parts:
        if p.name in ("west", "east"):
            assert (street[p.residents] == p.name).all()
        else:
            assert (street[p.residents] == "").all()
        assert len(p.edges) < net.n_edges  # a halo, not the whole network

    # brute force: every edge within the halo of some core resident is in the partition
    geoms = net.edge_geometries()
    for p in parts:
        d = shapely.distance(geoms[:, None], shapely.points(xy[p.residents])[None, :])
        needed = np.flatnonzero((d <= halo_m).any(axis=1))
        assert np.isin(needed, p.edges).all(), p.name

    # networkx: every facility within H of a core resident snaps to an edge of the partition
    res = snap_points(net, xy, max_snap_m=snap_m)
    fac = snap_points(net, fac_xy, max_snap_m=snap_m)
    G = _nx_with_points(net, [("r", res), ("f", fac)])
    part_of = np.empty(len(xy), dtype=np.int64)
    for k, p in enumerate(parts):
        part_of[p.residents] = k
    checked = 0
    for f in np.flatnonzero(~fac.unsnapped):
        reach = nx.single_source_dijkstra_path_length(G, ("f", int(f)), horizon_m, "length")
        for node in reach:
            if isinstance(node, tuple) and node[0] == "r":
                assert fac.edge[f] in parts[part_of[node[1]]].edges
                checked += 1
    assert checked > 50


def test_subnetwork_keeps_ids_and_snaps_the_same():
    """Points on nodes (every incident edge equally near) and anywhere: same edge, same floats."""
    net = grid_network(2500, seed=3)
    core = random_points(net, 60, seed=6)
    core = core[np.hypot(*(core - core.mean(axis=0)).T) < 400]
    parts = partition_study(net, core, None, halo_m=500.0, n_tiles=1)
    assert len(parts) == 1
    edges = parts[0].edges
    sub = subnetwork(net, edges)
    assert sub.n_edges == len(edges) < net.n_edges
    assert np.array_equal(sub.edge_length_m, net.edge_length_m[edges])
    assert np.array_equal(sub.node_osmid[sub.edge_u], net.node_osmid[net.edge_u[edges]])
    ends = np.unique(np.concatenate([net.edge_u[edges], net.edge_v[edges]]))
    assert np.array_equal(sub.node_xy, net.node_xy[ends])  # every node touched, ascending
    assert np.array_equal(ends[sub.edge_v], net.edge_v[edges])
    near_nodes = np.flatnonzero(np.hypot(*(net.node_xy - core.mean(axis=0)).T) < 300)
    pts = np.vstack([core, net.node_xy[near_nodes]])
    whole = snap_points(net, pts, max_snap_m=100.0)
    part = snap_points(sub, pts, max_snap_m=100.0)
    assert np.array_equal(edges[part.edge], whole.edge)
    for f in ("offset_m", "access_m", "xy", "unsnapped"):
        assert np.array_equal(getattr(part, f), getattr(whole, f)), f
    with pytest.raises(ValueError, match="ascending"):
        subnetwork(net, edges[::-1])


def _zigzag(net):
    """``net`` with 3 vertices inside every edge, off the straight line: polylines, not segments."""
    a, b = net.coords[net.coord_offsets[:-1]], net.coords[net.coord_offsets[1:] - 1]
    normal = np.stack([a[:, 1] - b[:, 1], b[:, 0] - a[:, 0]], axis=1) * 0.15
    inner = [a + (b - a) * t + normal * sign for t, sign in ((0.25, 1), (0.5, -1), (0.75, 1))]
    coords = np.stack([a, *inner, b], axis=1).reshape(-1, 2)
    length = np.hypot(*np.diff(coords.reshape(-1, 5, 2), axis=1).transpose(2, 0, 1)).sum(axis=1)
    offsets = np.arange(net.n_edges + 1, dtype=np.int64) * 5
    return replace(net, coords=coords, coord_offsets=offsets, edge_length_m=length)


@pytest.mark.parametrize("polylines", [False, True])
def test_edges_in_a_zone_are_the_strtree_and_brute_force_sets(polylines):
    """Boxes, vertices inside and a GEOS test for the rest: the STRtree's set, edge for edge.

    Zones: buffered hulls as the partitions use, a single point's disc, and boxes whose sides
    run along the grid's streets (edges only touching the rim, vertices on it).
    """
    base = grid_network(2500, seed=3)
    net = _zigzag(base) if polylines else base
    geoms = net.edge_geometries()
    tree = shapely.STRtree(geoms)
    boxes = edge_boxes(net)
    rng = np.random.default_rng(7)
    xy = random_points(net, 400, seed=8)
    nodes = net.node_xy
    zones = [halo_zone(xy[:1], halo_m=0.0), halo_zone(xy[:1], halo_m=150.0)]
    for _ in range(12):
        core = xy[rng.choice(len(xy), size=int(rng.integers(1, 40)), replace=False)]
        zones.append(halo_zone(core, halo_m=float(rng.choice([0.0, 35.0, 240.0, 900.0]))))
    for _ in range(8):
        (x0, y0), (x1, y1) = np.sort(nodes[rng.choice(len(nodes), size=2)], axis=0)
        zones.append(shapely.box(x0, y0, x1, y1))
    zones.append(shapely.box(*(nodes.max(axis=0) + 1.0), *(nodes.max(axis=0) + 50.0)))
    sizes = []
    for zone in zones:
        got = edges_intersecting(net, zone, boxes=boxes)
        assert np.array_equal(got, np.sort(tree.query(zone, predicate="intersects")))
        assert np.array_equal(got, np.flatnonzero(shapely.intersects(zone, geoms)))
        assert np.array_equal(got, edges_intersecting(net, zone))  # boxes built on the spot
        sizes.append(len(got))
    assert min(sizes) == 0 and max(sizes) > 200  # empty, small and large zones were all tried
    # edges that touch a box's side only (no vertex strictly inside) are among the boxes' hits
    touching = [
        z
        for z in zones
        if (
            shapely.intersects(z, geoms) & ~shapely.intersects(shapely.buffer(z, -1e-3), geoms)
        ).any()
    ]
    assert touching


def test_partitions_group_streets_then_tiles_by_first_resident():
    """Tile names as tile_labels gives them; a 街道 called like a tile stays its own partition."""
    net = grid_network(900, seed=2)
    xy = random_points(net, 300, seed=9)
    street = np.where(xy[:, 0] < np.median(xy[:, 0]), "tile 0,0", "").astype(object)
    parts = partition_study(net, xy, street, halo_m=100.0, n_tiles=4)
    outside = np.flatnonzero(street == "")
    tiles = tile_labels(xy[outside], n_tiles=4)
    expected = {"tile 0,0 (street)": np.flatnonzero(street != "")}
    for t in np.unique(tiles):
        expected[str(t)] = outside[tiles == t]
    firsts = sorted(expected, key=lambda k: expected[k][0])
    got = [p.name for p in parts]
    assert got == [k.removesuffix(" (street)") for k in firsts]
    for p, k in zip(parts, firsts, strict=True):
        assert np.array_equal(p.residents, expected[k]), k


# ------------------------------------------------------------------------------ demo and Dask


def test_demo_routed_equal_on_four_streets(demo, client):
    """The demo's 4 街道 as partitions: every array equals route_study's, bit for bit."""
    kinds = check_inputs(demo.inputs, demo.options)
    lines: list[str] = []
    sizes: list[tuple[str, int]] = []
    got = route_on_dask(
        demo.net,
        demo.inputs,
        kinds,
        demo.options,
        client=client,
        progress=lines.append,
        on_partition=lambda p, r: sizes.append((p.name, len(r.snap))),
    )
    ref = route_study(demo.net, demo.inputs, kinds, demo.options)
    assert _differences(ref, got) == []
    assert sorted(n for n, _ in sizes) == sorted(demo.inputs.streets["area"])
    assert [ln for ln in lines if ln.startswith("partitions done")] == [
        f"partitions done {k}/4" for k in range(1, 5)
    ]
    horizon_m, _ = study_halo_m(
        [demo.inputs.specs[k] for k in kinds], max_snap_m=demo.options.max_snap_m
    )
    within, beyond = _both_paths_used(got, horizon_m)
    assert within > 0 and beyond > 0  # both the partitions' and the client's distances count


def test_tiles_without_areas_equal(demo, client):
    """No 街道: the residents are cut into tiles, and the merge is still exact."""
    inputs = replace(demo.inputs, streets=None, communities=None)
    opts = replace(demo.options, targets=())
    kinds = check_inputs(inputs, opts)
    names: list[str] = []
    got = route_on_dask(
        demo.net,
        inputs,
        kinds,
        opts,
        client=client,
        n_tiles=4,
        on_partition=lambda p, r: names.append(p.name),
    )
    assert len(names) >= 3 and all(n.startswith("tile ") for n in names)
    assert _differences(route_study(demo.net, inputs, kinds, opts), got) == []


def test_demo_summary_equal_on_dask(demo):
    """``--dask local:2`` through analyse_on_dask: the summary numbers of the one-process run."""
    common = {
        "title": demo.plan.title,
        "options": demo.options,
        "synthetic": True,
        "sources": demo.sources,
    }
    lines: list[str] = []
    on_dask = analyse_on_dask(
        demo.net, demo.inputs, dask="local:2", progress=lines.append, **common
    )
    single = analyse(demo.net, demo.inputs, **common)
    old, new = summary_dict(single), summary_dict(on_dask)
    assert _same(old, new) == [] and _same(new, old) == []
    assert "partitions done 4/4" in lines


# ------------------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_westlake_routed_equal(tmp_path, client):
    """The 9 街道 of Shangcheng on the real OSM streets: the merge equals route_study."""
    pbf = shared_file("westlake_10km.osm.pbf")
    admin = shared_file("hangzhou_admin_osm.geojson")
    inputs = tmp_path / "inputs"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "app.py"),
            "prepare-osm",
            str(pbf),
            "--areas",
            str(admin),
            "--area-where",
            "in_new_shangcheng_2021=true",
            "--out",
            str(inputs),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    study = _prepared(read_plan(inputs / "plan.toml"), tmp_path / "cache")
    kinds = check_inputs(study.inputs, study.options)
    names: list[str] = []
    got = route_on_dask(
        study.net,
        study.inputs,
        kinds,
        study.options,
        client=client,
        on_partition=lambda p, r: names.append(p.name),
    )
    assert len(names) == 9
    assert _differences(route_study(study.net, study.inputs, kinds, study.options), got) == []
    horizon_m, _ = study_halo_m(
        [study.inputs.specs[k] for k in kinds], max_snap_m=study.options.max_snap_m
    )
    within, beyond = _both_paths_used(got, horizon_m)
    assert within > 0 and beyond > 0
