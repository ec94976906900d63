"""Loading walk networks: the walk filter, OSM/GraphML readers, clipping, cache, bad files."""

from __future__ import annotations

import bz2
import gzip
import time

import networkx as nx
import numpy as np
import pytest
import shapely

from geo.load import load_network
from geo.network import network_from_graph
from geo.walkfilter import is_walkable
from layers.errors import InputError

from .conftest import shared_file


@pytest.mark.parametrize(
    ("tags", "walkable"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "steps"}, True),
        ({"highway": "pedestrian", "area": "yes"}, True),
        ({"highway": "service"}, True),
        ({"highway": "residential", "oneway": "yes"}, True),
        ({"highway": "footway", "footway": "crossing"}, True),
        ({"highway": "cycleway", "foot": "designated"}, True),
        ({"highway": "primary", "foot": "yes", "access": "no"}, True),
        ({"highway": "motorway"}, False),
        ({"highway": "motorway_link"}, False),
        ({"highway": "cycleway"}, False),
        ({"highway": "residential", "foot": "no"}, False),
        ({"highway": "service", "access": "private"}, False),
        ({"highway": "service", "service": "private"}, False),
        ({"highway": "construction"}, False),
        ({"building": "yes"}, False),
        ({"highway": ["motorway", "footway"]}, True),
        ({"highway": "['motorway', 'motorway_link']"}, False),
    ],
)
def test_walk_filter(tags, walkable):
    assert is_walkable(tags) is walkable


OSM_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <node id="1" lat="30.2700" lon="120.2000"/>
  <node id="2" lat="30.2700" lon="120.2050"/>
  <node id="3" lat="30.2700" lon="120.2100"/>
  <node id="4" lat="30.2750" lon="120.2050"/>
  <node id="5" lat="30.2650" lon="120.2050"/>
  <node id="6" lat="30.2650" lon="120.2100"/>
  <node id="7" lat="30.2800" lon="120.2050"/>
  <node id="8" lat="30.2800" lon="120.2100"/>
  <node id="9" lat="30.2600" lon="120.2000"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/><tag k="oneway" v="yes"/></way>
  <way id="11"><nd ref="2"/><nd ref="4"/><tag k="highway" v="footway"/></way>
  <way id="12"><nd ref="2"/><nd ref="5"/><tag k="highway" v="cycleway"/><tag k="foot" v="designated"/><tag k="footway" v="crossing"/></way>
  <way id="13"><nd ref="5"/><nd ref="6"/><tag k="highway" v="motorway"/></way>
  <way id="14"><nd ref="4"/><nd ref="7"/><tag k="highway" v="service"/><tag k="access" v="private"/></way>
  <way id="15"><nd ref="7"/><nd ref="8"/><tag k="highway" v="residential"/><tag k="foot" v="no"/></way>
  <way id="16"><nd ref="1"/><nd ref="9"/><tag k="highway" v="steps"/></way>
  <way id="17"><nd ref="6"/><nd ref="3"/><tag k="highway" v="unclassified"/></way>
</osm>
"""


@pytest.fixture
def osm_file(tmp_path):
    p = tmp_path / "tiny.osm"
    p.write_text(OSM_XML, encoding="utf-8")
    return p


def test_osm_xml_applies_walk_filter(osm_file, tmp_path):
    net = load_network(osm_file, cache_dir=tmp_path / "c")
    ids = set(net.node_osmid.tolist())
    # the foot=designated crossing on a cycleway is kept; node 5 is reached only through it
    assert 5 in ids
    # motorway 5-6, private service 4-7 and foot=no 7-8 are gone: 7 and 8 have no walkable way
    assert 7 not in ids and 8 not in ids
    # 6-3 is walkable and connects through 3: kept; the motorway was the only other way to 6
    assert {1, 2, 3, 4, 5, 6, 9} == ids
    assert net.n_edges == 6
    assert net.crs.to_epsg() == 32651  # local UTM for Hangzhou


def test_bz2_and_gz_read_the_same(osm_file, tmp_path):
    b = tmp_path / "tiny.osm.bz2"
    b.write_bytes(bz2.compress(osm_file.read_bytes()))
    a = load_network(osm_file, use_cache=False)
    c = load_network(b, use_cache=False)
    assert a.n_edges == c.n_edges
    np.testing.assert_allclose(np.sort(a.edge_length_m), np.sort(c.edge_length_m))


def test_largest_component_reported(tmp_path):
    xml = OSM_XML.replace(
        "</osm>",
        """
  <node id="101" lat="30.3000" lon="120.3000"/>
  <node id="102" lat="30.3000" lon="120.3010"/>
  <way id="100"><nd ref="101"/><nd ref="102"/><tag k="highway" v="footway"/></way>
</osm>""",
    )
    p = tmp_path / "islands.osm"
    p.write_text(xml)
    net = load_network(p, use_cache=False)
    assert net.report.dropped_nodes == 2
    assert net.report.dropped_km == pytest.approx(0.096, abs=0.002)
    assert 101 not in set(net.node_osmid.tolist())


def test_clip_to_area_of_interest(osm_file):
    aoi = shapely.box(120.1995, 30.2695, 120.2005, 30.2705)  # around node 1 only
    near = load_network(osm_file, aoi_wgs84=aoi, buffer_m=100, use_cache=False)
    assert near.report.clipped_edges > 0
    assert near.n_edges < load_network(osm_file, use_cache=False).n_edges
    far = shapely.box(121.0, 31.0, 121.001, 31.001)
    with pytest.raises(InputError, match="does not overlap"):
        load_network(osm_file, aoi_wgs84=far, use_cache=False)


def test_user_crs_cgcs2000_gauss_kruger(osm_file):
    net = load_network(osm_file, crs=4549, use_cache=False)
    assert net.crs.to_epsg() == 4549
    ref = load_network(osm_file, use_cache=False)
    assert net.report.length_km == pytest.approx(ref.report.length_km, rel=2e-3)
    with pytest.raises(InputError, match="not projected"):
        load_network(osm_file, crs=4326, use_cache=False)


def test_cache_hit_and_invalidation(osm_file, tmp_path):
    cdir = tmp_path / "cache"
    a = load_network(osm_file, cache_dir=cdir)
    assert len(list(cdir.glob("*.npz"))) == 1
    b = load_network(osm_file, cache_dir=cdir)
    np.testing.assert_array_equal(a.edge_u, b.edge_u)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.crs == b.crs and a.report == b.report
    osm_file.write_text(OSM_XML.replace('lon="120.2100"', 'lon="120.2110"'))
    c = load_network(osm_file, cache_dir=cdir)
    assert len(list(cdir.glob("*.npz"))) == 2
    assert not np.allclose(np.sort(a.edge_length_m), np.sort(c.edge_length_m))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.osm.pbf", None, "not found"),
        ("empty.osm.pbf", b"", "empty"),
        ("truncated.osm.pbf", "TRUNC", "not a readable OSM file"),
        ("notosm.osm", b"<html><body>404</body></html>", "not a readable OSM file"),
        ("streets.txt", b"hello", "unknown network file type"),
        ("nowalk.osm", OSM_XML.replace('"highway"', '"building"').encode(), "no walkable"),
        ("bad.graphml", b"<graphml><broken", "GraphML"),
    ],
)
def test_bad_network_files_give_one_line(tmp_path, name, content, message):
    p = tmp_path / name
    if content == "TRUNC":
        real = shared_file("westlake_10km.osm.pbf")
        p.write_bytes(real.read_bytes()[:200_000])
    elif content is not None:
        p.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        load_network(p, use_cache=False)
    text = str(err.value)
    assert "\n" not in text and name in text


def test_graph_conversion_collapses_both_directions():
    G = nx.MultiDiGraph(crs="epsg:4326")
    G.add_node(1, x=120.20, y=30.27)
    G.add_node(2, x=120.21, y=30.27)
    G.add_edge(1, 2, highway="residential")
    G.add_edge(2, 1, highway="residential")
    G.add_edge(1, 2, highway="motorway")
    net = network_from_graph(G)
    assert net.n_edges == 1
    assert net.edge_length_m[0] == pytest.approx(962, rel=0.01)


@pytest.mark.realdata
def test_real_hangzhou_pbf_loads_as_one_walk_network(tmp_path):
    pbf = shared_file("westlake_10km.osm.pbf")
    net = load_network(pbf, cache_dir=tmp_path)
    # SOURCES.md: OSMnx's walk recipe gives ~22.7k nodes on this extract; we keep way ends too
    assert 20_000 < net.n_nodes < 40_000
    assert 25_000 < net.n_edges < 60_000
    assert 2_000 < net.report.length_km < 5_000
    from scipy.sparse.csgraph import connected_components

    assert connected_components(net.adjacency, directed=False)[0] == 1
    lon, lat = net.to_wgs84.transform(net.node_xy[:, 0], net.node_xy[:, 1])
    assert 119.9 < np.median(lon) < 120.5 and 30.0 < np.median(lat) < 30.5
    t = time.perf_counter()
    again = load_network(pbf, cache_dir=tmp_path)
    assert again.n_edges == net.n_edges
    elapsed = time.perf_counter() - t
    assert elapsed < 5  # not a benchmark: a cache that rebuilds takes seconds, a hit takes ms


@pytest.mark.realdata
def test_real_graphml_matches_its_documented_size(tmp_path):
    gml = shared_file("shangcheng_west_walk.graphml.gz")
    net = load_network(gml, cache_dir=tmp_path)
    # SOURCES.md: 7,628 nodes, 22,008 directed edges, 2,048 km counting both directions
    assert net.n_nodes == 7628
    assert net.report.length_km == pytest.approx(1024, rel=0.01)


def test_gzip_graphml_roundtrip(tmp_path):
    import osmnx as ox

    G = nx.MultiDiGraph(crs="epsg:4326")
    G.add_node(1, x=120.20, y=30.27)
    G.add_node(2, x=120.21, y=30.27)
    G.add_node(3, x=120.21, y=30.28)
    G.add_edge(1, 2, highway="footway", length=962.0, osmid=1)
    G.add_edge(2, 3, highway="steps", length=1110.0, osmid=2)
    plain = tmp_path / "g.graphml"
    ox.save_graphml(G, plain)
    gz = tmp_path / "g.graphml.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert load_network(gz, use_cache=False).n_edges == 2


def test_place_download_goes_through_the_same_filter(monkeypatch):
    """Online loading (no internet here): OSMnx is replaced by a graph it could have returned."""
    import osmnx as ox

    from geo.load import network_from_place

    def fake_graph_from_place(query, network_type, retain_all):
        assert query == "上城区, 杭州市, 中国" and network_type == "all"
        G = nx.MultiDiGraph(crs="epsg:4326")
        G.add_node(1, x=120.20, y=30.27)
        G.add_node(2, x=120.21, y=30.27)
        G.add_node(3, x=120.22, y=30.27)
        G.add_edge(1, 2, highway="footway")
        G.add_edge(2, 3, highway="motorway")
        return G

    monkeypatch.setattr(ox, "graph_from_place", fake_graph_from_place)
    net = network_from_place("上城区, 杭州市, 中国")
    assert net.n_edges == 1 and net.n_nodes == 2

    def offline(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(ox, "graph_from_place", offline)
    with pytest.raises(InputError, match="could not download"):
        network_from_place("上城区")
