"""Street names on the walk network (issue 12, 6): suggested sites are told by their street."""

from __future__ import annotations

import logging

import networkx as nx
import numpy as np
import pytest
import shapely

from geo.load import load_network, read_osm_ways
from geo.network import build_network, network_from_graph
from geo.snap import nearest_street_names, snap_points
from geo.walkfilter import street_names

from .conftest import shared_file

UTM = 32651
LON0, LAT0 = 120.20, 30.27
M_LON = 1 / (111_320 * np.cos(np.radians(LAT0)))  # degrees of longitude per metre
M_LAT = 1 / 110_950  # degrees of latitude per metre (about)


def _ll(x_m: float, y_m: float) -> tuple[float, float]:
    return LON0 + x_m * M_LON, LAT0 + y_m * M_LAT


#: node id -> (x, y) in metres east/north of (LON0, LAT0)
NODES = {
    1: (0, 0),
    2: (200, 0),
    3: (400, 0),
    4: (200, 100),
    5: (320, 140),
    6: (400, -150),
    7: (100, 60),
    8: (300, 60),
    9: (0, 600),
    10: (100, 600),
}
#: (way id, nodes, tags); the expected name of each, "" for unnamed
WAYS = [
    (21, [1, 2, 3], {"highway": "secondary", "name:zh": "延安路", "name": "延安路 Yan'an Road"}),
    (22, [2, 4], {"highway": "residential", "name": "学士路"}),
    (23, [4, 5], {"highway": "footway"}),
    (24, [3, 6], {"highway": "primary", "ref": "G320"}),
    (25, [7, 8], {"highway": "motorway", "name": "绕城高速"}),  # not walkable: no name leaks
    (26, [9, 10], {"highway": "residential", "name": "孤岛路"}),  # an island: dropped
    (27, [5, 3], {"highway": "service", "name:zh": "Jiuxi Road", "name": "九溪路"}),
]
EXPECTED = {
    frozenset({1, 2}): "延安路",
    frozenset({2, 3}): "延安路",
    frozenset({2, 4}): "学士路",
    frozenset({4, 5}): "",
    frozenset({3, 6}): "G320",
    frozenset({5, 3}): "九溪路",
}


def _osm_xml() -> str:
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="test">']
    for nid, (x, y) in NODES.items():
        lon, lat = _ll(x, y)
        lines.append(f'  <node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for wid, nds, tags in WAYS:
        body = "".join(f'<nd ref="{n}"/>' for n in nds)
        body += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        lines.append(f'  <way id="{wid}">{body}</way>')
    lines.append("</osm>")
    return "\n".join(lines)


@pytest.fixture
def osm_file(tmp_path):
    p = tmp_path / "named.osm"
    p.write_text(_osm_xml(), encoding="utf-8")
    return p


def _names_by_ends(net) -> dict[frozenset[int], str]:
    ends = zip(
        net.node_osmid[net.edge_u].tolist(), net.node_osmid[net.edge_v].tolist(), strict=True
    )
    return {frozenset(e): str(n) for e, n in zip(ends, net.edge_name.tolist(), strict=True)}


def _xy(net, x_m: float, y_m: float) -> np.ndarray:
    lon, lat = _ll(x_m, y_m)
    return net.project_lonlat(np.array([lon]), np.array([lat]))


# ------------------------------------------------------------------------------------------
# which tag names a way


@pytest.mark.parametrize(
    ("tags", "names"),
    [
        ({"name:zh": "延安路", "name": "延安路 Yan'an Road", "ref": "S1"}, ["延安路"]),
        ({"name": "学士路", "ref": "S1"}, ["学士路"]),
        ({"ref": "G320"}, ["G320"]),
        ({"name:zh": "Jiuxi Road", "name": "九溪路"}, ["九溪路"]),  # Chinese beats Latin
        ({"name": "Lingyin Road"}, ["Lingyin Road"]),
        ({"name": " ", "ref": ""}, []),
        ({"name": float("nan")}, []),  # pandas' missing value
        ({"highway": "footway"}, []),
        ({"name": ["平海路", "延安路", "平海路"]}, ["平海路", "延安路"]),  # OSMnx merged ways
        ({"name": "['平海路', '延安路']"}, ["平海路", "延安路"]),  # ... read without OSMnx
    ],
)
def test_street_names_prefer_chinese_name_then_name_then_ref(tags, names):
    assert street_names(tags) == names


# ------------------------------------------------------------------------------------------
# every source keeps names through splitting, filtering, components, the clip and the cache


def test_osm_file_keeps_names_of_walkable_ways_only(osm_file, tmp_path):
    _, ways, _, names = read_osm_ways(osm_file)
    assert len(names) == len(ways)
    assert "绕城高速" not in names  # motorway filtered before naming
    net = load_network(osm_file, cache_dir=tmp_path / "c")
    assert net.edge_name.dtype == object and net.edge_name.shape == (net.n_edges,)
    # 延安路 is cut at the junction with 学士路: both pieces keep the way's name
    assert _names_by_ends(net) == EXPECTED
    assert net.report.dropped_edges == 1  # the named island went with its name


def test_cache_round_trip_keeps_names_and_needs_no_pickle(osm_file, tmp_path, caplog):
    cdir = tmp_path / "c"
    built = load_network(osm_file, cache_dir=cdir)
    (entry,) = cdir.glob("*.npz")
    with np.load(entry, allow_pickle=False) as data:  # raises if names were pickled objects
        assert data["edge_name_table"].dtype.kind == "U"
    with caplog.at_level(logging.INFO, logger="geo.load"):
        cached = load_network(osm_file, cache_dir=cdir)
    assert any("from cache" in r.getMessage() for r in caplog.records)
    assert cached.edge_name.dtype == object
    assert cached.edge_name.tolist() == built.edge_name.tolist()
    assert all(type(n) is str for n in cached.edge_name)


def test_build_network_names_survive_the_clip_and_renumbering():
    node_ll = {n: _ll(*xy) for n, xy in NODES.items()}
    walk = [w for w in WAYS if w[2]["highway"] != "motorway"]
    ways = [nds for _, nds, _ in walk]
    names = [(street_names(t) or [""])[0] for _, _, t in walk]
    lon, lat = _ll(420, -100)
    net = build_network(
        node_ll,
        ways,
        source="t",
        crs=UTM,
        aoi_wgs84=shapely.Point(lon, lat),
        buffer_m=60,
        way_names=names,
    )
    kept = _names_by_ends(net)
    assert net.report.clipped_edges > 0 and frozenset({3, 6}) in kept
    assert kept == {e: EXPECTED[e] for e in kept}
    # without names every edge is unnamed, never missing
    bare = build_network(node_ll, ways, source="t", crs=UTM)
    assert bare.edge_name.tolist() == [""] * bare.n_edges


def _graph() -> nx.MultiDiGraph:
    G = nx.MultiDiGraph(crs="epsg:4326")
    for n, xy in NODES.items():
        lon, lat = _ll(*xy)
        G.add_node(n, x=lon, y=lat)
    return G


@pytest.mark.parametrize("named_first", [True, False])
def test_graph_keeps_the_name_of_either_direction(named_first):
    G = _graph()
    edges = [
        (1, 2, {"highway": "residential", "name": "庆春路"}),
        (2, 1, {"highway": "residential"}),
    ]
    for u, v, d in edges if named_first else edges[::-1]:
        G.add_edge(u, v, **d)
    net = network_from_graph(G, crs=UTM)
    assert net.n_edges == 1 and net.edge_name.tolist() == ["庆春路"]


@pytest.mark.parametrize("order", [["小巷", "延安路"], ["延安路", "小巷"]])
def test_merged_ways_keep_the_name_with_most_length(order):
    G = _graph()
    G.add_edge(1, 2, highway="residential", name=list(order))  # OSMnx merged two ways
    G.add_edge(2, 3, highway="secondary", name="延安路")
    G.add_edge(2, 4, highway="residential", name="小巷")
    net = network_from_graph(G, crs=UTM)
    assert _names_by_ends(net)[frozenset({1, 2})] == "延安路"  # 600 m of 延安路, 300 m of 小巷


def test_graphml_file_keeps_names(tmp_path):
    import osmnx as ox

    G = _graph()
    G.add_edge(1, 2, highway="secondary", name="延安路", osmid=21, length=200.0)
    G.add_edge(2, 3, highway="secondary", name=["延安路", "平海路"], osmid=[21, 28], length=200.0)
    G.add_edge(2, 4, highway="footway", osmid=23, length=100.0)
    G.add_edge(3, 6, highway="primary", ref="G320", osmid=24, length=150.0)
    path = tmp_path / "named.graphml"
    ox.save_graphml(G, path)
    net = load_network(path, cache_dir=tmp_path / "c")
    assert _names_by_ends(net) == {
        frozenset({1, 2}): "延安路",
        frozenset({2, 3}): "延安路",
        frozenset({2, 4}): "",
        frozenset({3, 6}): "G320",
    }
    assert load_network(path, cache_dir=tmp_path / "c").edge_name.tolist() == net.edge_name.tolist()


# ------------------------------------------------------------------------------------------
# nearest_street_names


def test_a_point_on_an_unnamed_footway_is_told_by_the_street_beside_it(osm_file):
    net = load_network(osm_file, use_cache=False)
    p = _xy(net, 240, 110)
    assert net.edge_name[snap_points(net, p).edge[0]] == ""  # it lies on the footway
    assert nearest_street_names(net, p).tolist() == ["学士路"]


def test_nearest_street_names_corner_reach_and_missing_points(osm_file):
    net = load_network(osm_file, use_cache=False)
    pts = np.vstack(
        [
            _xy(net, 200, 0),  # 延安路 meets 学士路: both at 0 m, the longer street wins
            _xy(net, 410, -100),  # beside G320, known only by its number
            _xy(net, 0, 400),  # 400 m from every street
            [[np.nan, np.nan]],
        ]
    )
    assert nearest_street_names(net, pts).tolist() == ["延安路", "G320", "", ""]
    assert nearest_street_names(net, pts[2:3], max_m=500.0).tolist() == ["学士路"]
    out = nearest_street_names(net, np.zeros((0, 2)))
    assert out.dtype == object and out.shape == (0,)
    with pytest.raises(ValueError, match="max_m"):
        nearest_street_names(net, pts, max_m=0)


def test_nearest_street_names_without_any_named_street():
    G = _graph()
    G.add_edge(1, 2, highway="footway")
    net = network_from_graph(G, crs=UTM)
    assert nearest_street_names(net, net.node_xy).tolist() == ["", ""]


def test_nearest_street_names_match_brute_force_on_many_points():
    rng = np.random.default_rng(7)
    side = 12
    G = nx.MultiDiGraph(crs="epsg:4326")
    for i in range(side):
        for j in range(side):
            lon, lat = _ll(i * 80 + rng.uniform(-15, 15), j * 80 + rng.uniform(-15, 15))
            G.add_node(i * side + j, x=lon, y=lat)
    for i in range(side):
        for j in range(side):
            n = i * side + j
            for m, street in ((n + side, f"东{j}路"), (n + 1, f"北{i}街")):
                if m < side * side and (m != n + 1 or j + 1 < side):
                    named = rng.random() < 0.5
                    G.add_edge(n, m, highway="residential", **({"name": street} if named else {}))
    net = network_from_graph(G, crs=UTM)
    lo, hi = net.node_xy.min(axis=0) - 100, net.node_xy.max(axis=0) + 100
    pts = rng.uniform(lo, hi, size=(3000, 2))
    got = nearest_street_names(net, pts, max_m=60.0)
    named = np.flatnonzero(net.edge_name != "")
    d = shapely.distance(shapely.points(pts)[:, None], net.edge_geometries()[named][None, :])
    dmin = d.min(axis=1)
    names = net.edge_name[named]
    # outside a corner two streets are equally near (both at their shared node): either will do
    tied = [
        set(names[row <= m + 1e-6].tolist()) if m <= 60.0 else {""}
        for row, m in zip(d, dmin, strict=True)
    ]
    assert (got != "").mean() > 0.3 and (got == "").any()
    assert [g in t for g, t in zip(got.tolist(), tied, strict=True)] == [True] * len(got)


# ------------------------------------------------------------------------------------------
# the real Hangzhou extract


@pytest.mark.realdata
def test_real_hangzhou_streets_are_named(tmp_path):
    import osmium

    pbf = shared_file("westlake_10km.osm.pbf")
    net = load_network(pbf, cache_dir=tmp_path)
    # WGS84 points (OSM is not GCJ-02): the sidewalk of 延安路 north of 平海路, and beside 南山路
    # by the lake; both lie nearest to an unnamed edge
    lon = np.array([120.1598, 120.1500])
    lat = np.array([30.2600, 30.2340])
    xy = net.project_lonlat(lon, lat)
    assert nearest_street_names(net, xy).tolist() == ["延安路", "南山路"]
    assert (net.edge_name[snap_points(net, xy).edge] == "").all()

    # primary and secondary streets are almost all named, as they are in the file
    major: dict[int, set[int]] = {}
    for way in osmium.FileProcessor(str(pbf), osmium.osm.WAY):
        if way.tags.get("highway") in ("primary", "secondary"):
            for nd in way.nodes:
                major.setdefault(nd.ref, set()).add(way.id)
    ou = net.node_osmid[net.edge_u].tolist()
    ov = net.node_osmid[net.edge_v].tolist()
    on_major = np.array(
        [bool(major.get(a, set()) & major.get(b, set())) for a, b in zip(ou, ov, strict=True)]
    )
    assert on_major.sum() > 1000
    assert (net.edge_name[on_major] != "").mean() > 0.9

    cached = load_network(pbf, cache_dir=tmp_path)
    assert cached.edge_name.tolist() == net.edge_name.tolist()
