"""Street network side of "nothing silently wrong" (issue 11): cache, drive networks, the clip."""

from __future__ import annotations

import itertools
import logging
import zipfile

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from geo.load import load_network, study_extent, walking_halo_m
from geo.network import network_from_graph
from geo.routing import nearest_distances
from geo.snap import snap_points

from .conftest import shared_file
from .test_geo_network import OSM_XML

UTM = 32651
LON0, LAT0 = 120.20, 30.27
DLON = 100 / (111_320 * np.cos(np.radians(LAT0)))  # 100 m east
DLAT = 100 / 110_950  # about 100 m north


@pytest.fixture
def osm_file(tmp_path):
    p = tmp_path / "tiny.osm"
    p.write_text(OSM_XML, encoding="utf-8")
    return p


def _same_network(a, b) -> None:
    np.testing.assert_array_equal(a.edge_u, b.edge_u)
    np.testing.assert_array_equal(a.edge_v, b.edge_v)
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_array_equal(a.coord_offsets, b.coord_offsets)
    assert a.edge_name.tolist() == b.edge_name.tolist()
    assert a.report == b.report


# ------------------------------------------------------------------------------------------
# 1. a damaged cache entry is rebuilt, never a crash and never used


def test_truncated_cache_is_rebuilt_and_rewritten(osm_file, tmp_path, caplog):
    cdir = tmp_path / "cache"
    first = load_network(osm_file, cache_dir=cdir)
    (entry,) = cdir.glob("*.npz")
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])  # a run killed while writing, a full disk
    with caplog.at_level(logging.WARNING, logger="geo.load"):
        again = load_network(osm_file, cache_dir=cdir)
    _same_network(first, again)
    assert any(entry.name in r.getMessage() and "rebuild" in r.getMessage() for r in caplog.records)
    # rewritten: the next run reads it without a word
    assert zipfile.is_zipfile(entry) and entry.stat().st_size == len(data)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="geo.load"):
        _same_network(first, load_network(osm_file, cache_dir=cdir))
    assert not caplog.records


def _rewrite(entry, **changes) -> None:
    with np.load(entry, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v(arrays[k])
    with entry.open("wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize(
    "changes",
    [
        {"edge_u": lambda a: a + 1000},  # an edge end beyond the nodes
        {"edge_v": lambda a: a[:-1]},  # arrays of different lengths
        {"coord_offsets": lambda a: a[:-1]},
        {"coords": lambda a: a[:-3]},
        {"node_osmid": lambda a: a[1:]},
        {"edge_length_m": lambda a: np.full_like(a, np.nan)},
        {"report_numbers": lambda a: a[:5]},  # an entry from another layout
        {"crs_wkt": lambda a: np.array("not a crs")},
        {"edge_u": lambda a: np.array(3)},  # a scalar
        {"coords": None},  # a missing array
        {"edge_name_index": lambda a: a + 1000},  # a name beyond the table
        {"edge_name_index": lambda a: a - 1000},  # ... or before it (would wrap around)
        {"edge_name_index": lambda a: a[1:]},
        {"edge_name_table": lambda a: np.arange(len(a))},  # numbers where names belong
        {"edge_name_table": lambda a: a.astype(object)},  # pickled: unreadable without pickle
        {"edge_name_table": None},  # an entry from before names were kept
    ],
)
def test_inconsistent_cache_entry_is_rebuilt_not_used(osm_file, tmp_path, caplog, changes):
    cdir = tmp_path / "cache"
    first = load_network(osm_file, cache_dir=cdir)
    (entry,) = cdir.glob("*.npz")
    _rewrite(entry, **changes)
    with caplog.at_level(logging.WARNING, logger="geo.load"):
        again = load_network(osm_file, cache_dir=cdir)
    _same_network(first, again)
    assert any(entry.name in r.getMessage() for r in caplog.records)


def test_flipped_bytes_in_a_cache_entry_are_caught(osm_file, tmp_path, caplog):
    cdir = tmp_path / "cache"
    first = load_network(osm_file, cache_dir=cdir)
    (entry,) = cdir.glob("*.npz")
    data = bytearray(entry.read_bytes())
    with zipfile.ZipFile(entry) as zf:
        info = zf.getinfo("coords.npy")
    at = info.header_offset + 200  # inside the coordinates, after the local header
    data[at] ^= 0xFF
    entry.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="geo.load"):
        _same_network(first, load_network(osm_file, cache_dir=cdir))
    assert any(entry.name in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------
# 2. a driving network is named, not accepted without a word


def _drive_graph() -> nx.MultiDiGraph:
    """What OSMnx network_type="drive" gives: car roads only, two-way streets stored twice."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    for i in range(4):
        for j in range(4):
            G.add_node(10 * i + j, x=LON0 + 3 * i * DLON, y=LAT0 + 3 * j * DLAT)
    kinds = ["primary", "secondary", "residential", "residential"]
    osmid = 1
    for i in range(4):
        for j in range(4):
            for a, b in (((i, j), (i + 1, j)), ((i, j), (i, j + 1))):
                if b[0] > 3 or b[1] > 3:
                    continue
                u, v = 10 * a[0] + a[1], 10 * b[0] + b[1]
                hw = kinds[(i + j) % 4]
                oneway = hw == "primary"
                G.add_edge(u, v, osmid=osmid, highway=hw, oneway=oneway, reversed=False, length=300)
                if not oneway:
                    G.add_edge(
                        v, u, osmid=osmid, highway=hw, oneway=False, reversed=True, length=300
                    )
                osmid += 1
    return G


def test_drive_graphml_is_warned_about_and_reported(tmp_path, caplog):
    import osmnx as ox

    path = tmp_path / "drive.graphml"
    ox.save_graphml(_drive_graph(), path)
    cdir = tmp_path / "cache"
    with caplog.at_level(logging.WARNING):
        net = load_network(path, cache_dir=cdir)
    assert net.report.footpath_share == 0.0
    (warning,) = net.report.warnings
    assert "driving network" in warning and "drive.graphml" in warning and "--network" in warning
    assert "WARNING" in net.report.describe() and "\n" not in net.report.describe()
    assert any("driving network" in r.getMessage() for r in caplog.records)
    # a cache hit says it again, and keeps it in the report
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        hit = load_network(path, cache_dir=cdir)
    assert hit.report.warnings == net.report.warnings
    assert any("driving network" in r.getMessage() for r in caplog.records)


def test_drive_graph_is_walked_both_ways_and_stored_once():
    G = _drive_graph()
    net = network_from_graph(G, crs=UTM)
    assert net.n_edges == 24  # every street once, whether stored one way or both
    adj = net.adjacency
    assert (adj != adj.T).nnz == 0
    # one-way primary streets are walked against the traffic too
    src = snap_points(net, net.node_xy[[0]])
    tgt = snap_points(net, net.node_xy)
    d = nearest_distances(net, src, tgt).distance_m
    assert np.isfinite(d).all()


def test_both_directions_with_reversed_geometry_collapse():
    G = nx.MultiDiGraph(crs="epsg:4326")
    G.add_node(1, x=LON0, y=LAT0)
    G.add_node(2, x=LON0 + 5 * DLON, y=LAT0)
    rng = np.random.default_rng(3)
    xs = np.linspace(LON0, LON0 + 5 * DLON, 40)
    ys = LAT0 + rng.uniform(0, DLAT, 40)
    ys[[0, -1]] = LAT0
    line = shapely.LineString(np.column_stack([xs, ys]))
    G.add_edge(1, 2, highway="residential", geometry=line)
    G.add_edge(2, 1, highway="residential", geometry=line.reverse())
    net = network_from_graph(G, crs=UTM)
    assert net.n_edges == 1


def test_walk_networks_and_untagged_graphs_are_not_warned_about(osm_file):
    assert load_network(osm_file, use_cache=False).report.warnings == ()
    G = nx.MultiDiGraph(crs="epsg:4326")
    G.add_node(1, x=LON0, y=LAT0)
    G.add_node(2, x=LON0 + DLON, y=LAT0)
    G.add_edge(1, 2)  # no tags: the share cannot be judged
    net = network_from_graph(G)
    assert net.report.footpath_share is None and net.report.warnings == ()


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["westlake_10km.osm.pbf", "shangcheng_west_walk.graphml.gz"])
def test_real_walk_networks_pass_the_footpath_check(tmp_path, name):
    net = load_network(shared_file(name), cache_dir=tmp_path)
    assert net.report.warnings == ()
    share = net.report.footpath_share
    assert share is not None and share > 0.1  # far from the 2% line on either side


# ------------------------------------------------------------------------------------------
# 3. the clip covers residents, facilities and candidates, and changes no minute


def test_walking_halo_is_the_longest_walk_plus_two_legs():
    assert walking_halo_m([3.6, 4.5], 15, max_snap_m=300) == pytest.approx(4.5 / 60 * 15e3 + 600)
    assert walking_halo_m([4.0], 30, max_snap_m=0) == pytest.approx(2000)
    with pytest.raises(ValueError, match="speeds"):
        walking_halo_m([], 15, max_snap_m=300)
    with pytest.raises(ValueError, match="max_minutes"):
        walking_halo_m([4.0], float("nan"), max_snap_m=300)


def test_study_extent_covers_every_layer_without_one_big_envelope():
    rng = np.random.default_rng(0)
    res = gpd.GeoSeries(
        shapely.points(
            rng.uniform(0, 10 * DLON, 500) + LON0, rng.uniform(0, 10 * DLAT, 500) + LAT0
        ),
        crs=4326,
    )
    far = shapely.Point(LON0 + 80 * DLON, LAT0 + 60 * DLAT)
    cand = gpd.GeoSeries([shapely.MultiPoint([(LON0, LAT0 - 30 * DLAT)])], crs=4326).to_crs(UTM)
    extent = study_extent([res, far, cand, None], halo_m=500)
    assert shapely.covers(extent, shapely.points(shapely.get_coordinates(res.values))).all()
    assert extent.covers(far)
    assert extent.buffer(1e-9).covers(shapely.Point(LON0, LAT0 - 30 * DLAT))  # converted to 4326
    envelope = shapely.union_all([*res.values, far, shapely.Point(LON0, LAT0 - 30 * DLAT)]).envelope
    assert extent.area < 0.2 * envelope.area
    with pytest.raises(ValueError, match="at least one"):
        study_extent([gpd.GeoSeries([], crs=4326)], halo_m=500)


def _two_districts() -> nx.MultiDiGraph:
    """Two street grids 3 km apart, joined only by a road that swings 3 km north.

    Residents and facilities live in both grids; the joining road leaves any halo around them.
    West is larger, so a clip that picks "the largest component" after cutting loses the east.
    """
    G = nx.MultiDiGraph(crs="epsg:4326")

    def grid(key0: int, i0: int, n: int) -> None:
        for i in range(n):
            for j in range(n):
                G.add_node(key0 + 100 * i + j, x=LON0 + (i0 + i) * DLON, y=LAT0 + j * DLAT)
        for i in range(n):
            for j in range(n):
                k = key0 + 100 * i + j
                if i + 1 < n:
                    G.add_edge(k, k + 100, highway="residential")
                if j + 1 < n:
                    G.add_edge(k, k + 1, highway="footway")

    grid(0, 0, 10)  # west: 0.9 x 0.9 km
    grid(10_000, 40, 6)  # east: 4 km further
    # the joining road: north 3 km from the west grid's NE corner, east, then south again
    path = [(9, 9), (9, 40), (40, 40), (40, 5)]
    keys = [909, 90_001, 90_002, 10_005]
    for k, (i, j) in zip(keys[1:3], path[1:3], strict=True):
        G.add_node(k, x=LON0 + i * DLON, y=LAT0 + j * DLAT)
    for a, b in itertools.pairwise(keys):
        G.add_edge(a, b, highway="tertiary")
    return G


def _minutes_within(net, res_ll, fac_ll, *, cutoff_m, max_snap_m):
    res = snap_points(net, net.project_lonlat(*res_ll.T), max_snap_m=max_snap_m)
    fac = snap_points(net, net.project_lonlat(*fac_ll.T), max_snap_m=max_snap_m)
    d = nearest_distances(net, fac, res, cutoff_m=cutoff_m).distance_m
    return d, fac


@pytest.fixture
def districts():
    rng = np.random.default_rng(11)
    west = np.column_stack([rng.uniform(0, 9, 300), rng.uniform(0, 9, 300)])
    east = np.column_stack([rng.uniform(40, 45, 120), rng.uniform(0, 5, 120)])
    res = np.vstack([west, east]) * [DLON, DLAT] + [LON0, LAT0]
    fac = np.array([[2, 3], [7, 8], [43, 2]]) * [DLON, DLAT] + [LON0, LAT0]
    return _two_districts(), res, fac


def test_clip_keeps_streets_cut_off_by_the_clip_and_every_minute(districts):
    G, res, fac = districts
    max_snap_m = 100.0
    halo = walking_halo_m([4.5], 10, max_snap_m=max_snap_m)  # 750 m walk + 200 m
    cutoff = 750.0
    extent = study_extent([shapely.points(res), shapely.points(fac)], halo_m=halo)
    full = network_from_graph(G, crs=UTM)
    clipped = network_from_graph(G, crs=UTM, aoi_wgs84=extent, buffer_m=halo)
    assert clipped.report.clipped_edges > 0  # the joining road is cut
    d_full, f_full = _minutes_within(full, res, fac, cutoff_m=cutoff, max_snap_m=max_snap_m)
    d_clip, f_clip = _minutes_within(clipped, res, fac, cutoff_m=cutoff, max_snap_m=max_snap_m)
    # the east facility, outside the west residents' envelope, stays snapped where it was
    assert not f_clip.unsnapped.any()
    np.testing.assert_allclose(f_clip.access_m, f_full.access_m)
    assert np.isfinite(d_full[300:]).any()  # the east has residents within reach
    np.testing.assert_allclose(d_clip, d_full)


def test_a_larger_area_changes_no_minute_up_to_the_horizon(districts):
    """What --areas does: the same residents, facilities and halo, plus a bigger area."""
    G, res, fac = districts
    max_snap_m = 100.0
    halo = walking_halo_m([4.5], 10, max_snap_m=max_snap_m)
    cutoff = 750.0
    extent = study_extent([shapely.points(res), shapely.points(fac)], halo_m=halo)
    areas = shapely.box(LON0, LAT0, LON0 + 45 * DLON, LAT0 + 45 * DLAT)  # holds the joining road
    small = network_from_graph(G, crs=UTM, aoi_wgs84=extent, buffer_m=halo)
    large = network_from_graph(G, crs=UTM, aoi_wgs84=shapely.union(extent, areas), buffer_m=halo)
    assert large.n_edges > small.n_edges
    d_small, _ = _minutes_within(small, res, fac, cutoff_m=cutoff, max_snap_m=max_snap_m)
    d_large, _ = _minutes_within(large, res, fac, cutoff_m=cutoff, max_snap_m=max_snap_m)
    np.testing.assert_allclose(d_small / 75.0, d_large / 75.0)  # minutes at 4.5 km/h


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clipped_distances_equal_unclipped_on_random_streets(seed):
    """A random street grid, residents in one corner, facilities anywhere."""
    rng = np.random.default_rng(seed)
    n = 40
    G = nx.MultiDiGraph(crs="epsg:4326")
    jitter = rng.uniform(-0.3, 0.3, size=(n, n, 2))
    for i in range(n):
        for j in range(n):
            x = LON0 + (i + jitter[i, j, 0]) * DLON
            G.add_node(i * n + j, x=x, y=LAT0 + (j + jitter[i, j, 1]) * DLAT)
    for i in range(n):
        for j in range(n):
            k = i * n + j
            if i + 1 < n and rng.random() < 0.7:
                G.add_edge(k, k + n, highway="residential")
            if j + 1 < n and rng.random() < 0.7:
                G.add_edge(k, k + 1, highway="footway")
    res = np.column_stack([rng.uniform(0, 6, 200), rng.uniform(0, 6, 200)])
    fac = np.column_stack([rng.uniform(0, 10, 8), rng.uniform(0, 10, 8)])
    res_ll = res * [DLON, DLAT] + [LON0, LAT0]
    fac_ll = fac * [DLON, DLAT] + [LON0, LAT0]
    max_snap_m = 80.0
    halo = walking_halo_m([4.8], 5, max_snap_m=max_snap_m)  # 400 m walk
    extent = study_extent([shapely.points(res_ll), shapely.points(fac_ll)], halo_m=halo)
    full = network_from_graph(G, crs=UTM)
    clipped = network_from_graph(G, crs=UTM, aoi_wgs84=extent, buffer_m=halo)
    assert clipped.n_edges < full.n_edges
    d_full, _ = _minutes_within(full, res_ll, fac_ll, cutoff_m=400.0, max_snap_m=max_snap_m)
    d_clip, _ = _minutes_within(clipped, res_ll, fac_ll, cutoff_m=400.0, max_snap_m=max_snap_m)
    assert np.isfinite(d_full).sum() > 10
    np.testing.assert_allclose(d_clip, d_full)


def test_an_edge_across_the_clip_boundary_keeps_its_full_length():
    G = nx.MultiDiGraph(crs="epsg:4326")
    G.add_node(1, x=LON0, y=LAT0)
    G.add_node(2, x=LON0 + DLON, y=LAT0)
    G.add_node(3, x=LON0 + 40 * DLON, y=LAT0 + 5 * DLAT)  # 4 km away
    bend = shapely.LineString([(LON0 + DLON, LAT0), (LON0 + 20 * DLON, LAT0 + 20 * DLAT),
                               (LON0 + 40 * DLON, LAT0 + 5 * DLAT)])  # fmt: skip
    G.add_edge(1, 2, highway="footway")
    G.add_edge(2, 3, highway="residential", geometry=bend)
    aoi = shapely.Point(LON0, LAT0).buffer(1e-6)
    full = network_from_graph(G, crs=UTM)
    clipped = network_from_graph(G, crs=UTM, aoi_wgs84=aoi, buffer_m=300)
    assert clipped.n_edges == 2
    np.testing.assert_allclose(np.sort(clipped.edge_length_m), np.sort(full.edge_length_m))
    np.testing.assert_array_equal(clipped.coords, full.coords)


def test_cache_key_follows_the_clip(osm_file, tmp_path):
    cdir = tmp_path / "cache"
    near = shapely.box(120.1995, 30.2695, 120.2005, 30.2705)
    a = load_network(osm_file, cache_dir=cdir, aoi_wgs84=near, buffer_m=100)
    b = load_network(osm_file, cache_dir=cdir, aoi_wgs84=near, buffer_m=2000)
    c = load_network(osm_file, cache_dir=cdir, aoi_wgs84=near, buffer_m=100)
    assert len(list(cdir.glob("*.npz"))) == 2
    assert a.n_edges < b.n_edges
    _same_network(a, c)
