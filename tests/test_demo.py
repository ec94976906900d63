"""The synthetic demo district: deterministic, believable, routable, and labelled synthetic."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import osmium
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from data.demo import (
    FACILITY_KINDS,
    FILE_NAMES,
    DemoDistrict,
    DemoFiles,
    generate_demo,
    write_demo,
)
from geo.walkfilter import is_walkable
from layers.atomic import MARKER
from layers.crs import gcj02_to_wgs84
from layers.errors import InputError

TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32651", always_xy=True)


def utm(lon, lat) -> np.ndarray:
    x, y = TO_UTM.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.column_stack([x, y])


def to_metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.to_crs("EPSG:32651")


@pytest.fixture(scope="module")
def district() -> DemoDistrict:
    return generate_demo(seed=2026)


@pytest.fixture(scope="module")
def written(tmp_path_factory, district) -> tuple[DemoFiles, DemoFiles]:
    base = tmp_path_factory.mktemp("demo")
    first = write_demo(district, base / "first")
    second = write_demo(generate_demo(seed=2026), base / "second")
    return first, second


class OsmFile:
    """What pyosmium reads back from streets.osm."""

    def __init__(self, path: Path) -> None:
        self.nodes: dict[int, tuple[float, float]] = {}
        self.node_tags: dict[int, dict[str, str]] = {}
        self.ways: list[tuple[int, list[int], dict[str, str]]] = []
        for obj in osmium.FileProcessor(str(path)):
            tags = {t.k: t.v for t in obj.tags}
            if isinstance(obj, osmium.osm.Node):
                self.nodes[obj.id] = (obj.location.lon, obj.location.lat)
                if tags:
                    self.node_tags[obj.id] = tags
            elif isinstance(obj, osmium.osm.Way):
                self.ways.append((obj.id, [n.ref for n in obj.nodes], tags))
        ids = np.fromiter(self.nodes, dtype=np.int64)
        lonlat = np.asarray([self.nodes[i] for i in ids])
        xy = utm(lonlat[:, 0], lonlat[:, 1])
        self.xy = {int(i): (float(x), float(y)) for i, (x, y) in zip(ids, xy, strict=True)}

    def highway_ways(self):
        return [w for w in self.ways if "highway" in w[2]]

    def graph(self, *, keep=lambda tags: is_walkable(tags)) -> nx.Graph:
        G = nx.Graph()
        for _, refs, tags in self.highway_ways():
            if not keep(tags):
                continue
            for u, v in itertools.pairwise(refs):
                (x0, y0), (x1, y1) = self.xy[u], self.xy[v]
                G.add_edge(u, v, length=float(np.hypot(x1 - x0, y1 - y0)))
        return G

    def line(self, refs: list[int]) -> shapely.LineString:
        return shapely.LineString([self.xy[r] for r in refs])

    def polygon(self, **match: str) -> shapely.Polygon:
        for _, refs, tags in self.ways:
            if all(tags.get(k) == v for k, v in match.items()):
                return shapely.Polygon([self.xy[r] for r in refs])
        raise AssertionError(f"no way tagged {match}")


@pytest.fixture(scope="module")
def osm(written) -> OsmFile:
    return OsmFile(written[0].streets_osm)


# ------------------------------------------------------------------------------------------
# determinism


def test_same_seed_gives_same_bytes_in_every_file(written):
    first, second = written
    for name in FILE_NAMES.values():
        a, b = (first.folder / name).read_bytes(), (second.folder / name).read_bytes()
        assert a == b, f"{name} differs between two runs with the same seed"


@pytest.mark.parametrize(
    ("file_key", "layer"),
    [
        ("areas", "streets_areas"),
        ("areas", "communities"),
        ("residents", "residents"),
    ],
)
def test_same_seed_gives_same_geopackage_content(written, file_key, layer):
    first, second = written
    a = pyogrio.read_dataframe(first.folder / FILE_NAMES[file_key], layer=layer)
    b = pyogrio.read_dataframe(second.folder / FILE_NAMES[file_key], layer=layer)
    assert list(a.columns) == list(b.columns)
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert all(shapely.to_wkb(a.geometry.array) == shapely.to_wkb(b.geometry.array))


def test_different_seed_gives_a_different_district(tmp_path, written, district):
    other = generate_demo(seed=7)
    files = write_demo(other, tmp_path / "seed7")
    assert files.streets_osm.read_bytes() != written[0].streets_osm.read_bytes()
    assert files.facilities["canteen"].read_bytes() != written[0].facilities["canteen"].read_bytes()
    assert not other.residents.geometry.equals(district.residents.geometry)
    assert other.seed == 7 and district.seed == 2026


# ------------------------------------------------------------------------------------------
# content


def test_counts_and_schema(district):
    assert len(district.residents) >= 100
    assert list(district.residents.columns[:5]) == [
        "resident_id",
        "name",
        "population",
        "elderly",
        "youth",
    ]
    assert district.residents["resident_id"].is_unique
    assert len(district.areas_street) == 4
    assert district.areas_street["name"].is_unique
    comm = district.areas_community
    assert set(comm["parent"]) == set(district.areas_street["name"])
    assert comm.groupby("parent").size().min() >= 2
    assert comm["name"].is_unique
    assert set(district.facilities) == set(FACILITY_KINDS)
    expected = {
        "canteen": (10, 15),
        "neighborhood_center": (5, 8),
        "elderly_station": (8, 12),
        "youth_hostel": (3, 4),
    }
    for kind, (lo, hi) in expected.items():
        gdf = district.facilities[kind]
        assert lo <= len(gdf) <= hi, kind
        assert list(gdf.columns[:4]) == ["facility_id", "kind", "name", "capacity"]
        assert (gdf["kind"] == kind).all() and gdf["facility_id"].is_unique
        assert (gdf["capacity"] > 0).all()
    assert 40 <= len(district.candidates) <= 80
    assert district.candidates["site_id"].is_unique
    assert (district.candidates["capacity"] > 0).all()
    for gdf in [
        district.streets,
        district.residents,
        district.candidates,
        district.areas_street,
        *district.facilities.values(),
    ]:
        assert gdf.crs.to_epsg() == 4326


def test_district_is_about_four_km_square_east_of_hangzhou_centre(district):
    outline = to_metric(district.areas_street).union_all()
    minx, miny, maxx, maxy = outline.bounds
    assert 3800 < maxx - minx < 4200 and 3800 < maxy - miny < 4200
    c = district.areas_street.union_all().centroid
    assert abs(c.x - 120.205) < 0.005 and abs(c.y - 30.275) < 0.005


def test_residents_lie_inside_the_district_with_consistent_counts(district):
    r = district.residents
    outline = district.areas_street.union_all().buffer(1e-7)
    assert r.geometry.within(outline).all()
    assert r.geometry.is_valid.all() and (r.geometry.geom_type == "Polygon").all()
    for col in ("population", "elderly", "youth"):
        assert r[col].dtype.kind == "i"
    assert r["population"].between(500, 6000).all()
    assert (r["elderly"] <= r["population"]).all() and (r["youth"] <= r["population"]).all()
    assert ((r["elderly"] + r["youth"]) <= r["population"]).all()
    for col in ("elderly", "youth"):
        share = r[col] / r["population"]
        assert share.between(0.145, 0.355).all(), col


def test_old_quarter_is_older_than_the_new_south_east(district):
    r = district.residents.copy()
    r["pt"] = r.geometry.representative_point()
    areas = district.areas_street
    shares = {}
    for name, geom in zip(areas["name"], areas.geometry, strict=True):
        inside = r[r["pt"].within(geom)]
        shares[name] = inside["elderly"].sum() / inside["population"].sum()
    nw, *_, se = list(areas["name"])
    assert shares[nw] > shares[se] + 0.05


def test_communities_tile_their_street(district):
    comm = to_metric(district.areas_community)
    streets = to_metric(district.areas_street).set_index("name")
    for parent, group in comm.groupby("parent"):
        street = streets.loc[parent, "geometry"]
        assert abs(group.union_all().area - street.area) / street.area < 1e-3
        assert group.geometry.buffer(0.5).within(street.buffer(1.0)).all()
    assert (comm.geometry.geom_type == "Polygon").all()


def test_facilities_leave_the_south_east_and_the_south_bank_short(district):
    water = to_metric(district.water).union_all()
    areas = district.areas_street
    counts = {}
    for name, geom in zip(areas["name"], areas.geometry, strict=True):
        counts[name] = sum(
            int(gdf.geometry.within(geom).sum()) for gdf in district.facilities.values()
        )
    se = list(areas["name"])[3]
    assert counts[se] < min(v for k, v in counts.items() if k != se)
    assert sum(counts.values()) == sum(len(g) for g in district.facilities.values())
    south = to_metric(areas.iloc[2:]).union_all()
    for gdf in district.facilities.values():
        pts = to_metric(gdf).geometry
        on_south = pts[pts.within(south)]
        assert (on_south.distance(water) > 300.0).all()


def test_everything_is_labelled_synthetic(district, written):
    files = written[0]
    for gdf in [
        district.areas_street,
        district.areas_community,
        district.candidates,
        district.water,
        *district.facilities.values(),
    ]:
        assert gdf["name"].str.contains("合成").all()
    assert district.residents["name"].str.startswith("合成小区").all()
    assert district.metadata["synthetic"] is True
    manifest = json.loads(files.manifest_json.read_text(encoding="utf-8"))
    assert manifest == files.manifest
    assert manifest["synthetic"] is True and manifest["seed"] == 2026
    assert {f["file"] for f in manifest["files"]} == set(FILE_NAMES.values())
    readme = files.readme.read_text(encoding="utf-8")
    assert "合成数据" in readme and "SYNTHETIC" in readme and "GCJ-02" in readme
    head = files.streets_osm.read_text(encoding="utf-8")[:600]
    assert 'generator="servicecircle demo"' in head and "SYNTHETIC" in head
    for path in [*list(files.facilities.values())[1:], files.candidates]:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["synthetic"] is True and "SYNTHETIC" in doc["description"]
    for path, layer in [
        (files.areas_gpkg, "streets_areas"),
        (files.areas_gpkg, "communities"),
        (files.residents_gpkg, "residents"),
    ]:
        info = pyogrio.read_info(path, layer=layer)
        assert info["layer_metadata"]["synthetic"] == "true"
        assert "SYNTHETIC" in info["layer_metadata"]["DESCRIPTION"]


def test_written_layers_read_back_as_generated(district, written):
    files = written[0]
    assert [row[0] for row in pyogrio.list_layers(files.areas_gpkg)] == [
        "streets_areas",
        "communities",
    ]
    res = gpd.read_file(files.residents_gpkg, layer="residents")
    assert res.crs.to_epsg() == 4326
    assert res.drop(columns="geometry").equals(district.residents.drop(columns="geometry"))
    assert res.geometry.geom_equals_exact(district.residents.geometry, 1e-9).all()
    for kind in FACILITY_KINDS[1:]:
        gdf = gpd.read_file(files.facilities[kind])
        ref = district.facilities[kind]
        assert gdf.crs.to_epsg() == 4326
        assert list(gdf["facility_id"]) == list(ref["facility_id"])
        assert list(gdf["capacity"]) == list(ref["capacity"])
        assert gdf.geometry.geom_equals_exact(ref.geometry, 1e-9).all()
    cand = gpd.read_file(files.candidates)
    assert list(cand["site_id"]) == list(district.candidates["site_id"])
    assert set(cand["site_type"]) == {"planned_center", "vacant_premises"}


def test_canteen_csv_is_gcj02_and_converts_back_within_a_metre(district, written):
    path = written[0].facilities["canteen"]
    assert path.read_bytes().startswith("\ufeff名称".encode())  # UTF-8 BOM, as Excel writes
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["名称", "经度", "纬度", "座位数"]
    body = rows[1:]
    truth = district.facilities["canteen"]
    assert [r[0] for r in body] == list(truth["name"])
    assert [int(r[3]) for r in body] == list(truth["capacity"])
    glon = np.array([float(r[1]) for r in body])
    glat = np.array([float(r[2]) for r in body])
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    back = utm(wlon, wlat)
    true = utm(truth.geometry.x, truth.geometry.y)
    assert np.hypot(*(back - true).T).max() < 1.0
    shift = np.hypot(*(utm(glon, glat) - true).T)
    assert (shift > 200.0).all() and (shift < 800.0).all()  # the GCJ-02 offset is really there


# ------------------------------------------------------------------------------------------
# the street network


def test_osm_file_matches_the_street_table(district, osm):
    highway = osm.highway_ways()
    assert len(highway) == len(district.streets)
    assert [w[0] for w in highway] == list(district.streets["osm_id"])
    assert len(osm.nodes) == len(district.osm.node_lonlat)
    used = {r for _, refs, _ in osm.ways for r in refs}
    assert used <= set(osm.nodes)
    by_id = {w[0]: w[2] for w in highway}
    for row in district.streets.itertuples():
        assert by_id[row.osm_id]["highway"] == row.highway
        assert by_id[row.osm_id].get("name") == row.name


def test_walkable_network_is_one_connected_component(osm):
    G = osm.graph()
    assert G.number_of_nodes() > 1000
    assert nx.number_connected_components(G) == 1
    gates = [n for n, t in osm.node_tags.items() if t.get("barrier") == "gate"]
    assert len(gates) >= 100 and all(g in G for g in gates)


def test_network_has_what_the_walk_filter_must_drop_and_keep(osm):
    tags = [w[2] for w in osm.highway_ways()]
    hw = [t["highway"] for t in tags]
    for value in (
        "primary",
        "secondary",
        "tertiary",
        "residential",
        "service",
        "footway",
        "steps",
        "pedestrian",
        "motorway",
        "motorway_link",
    ):
        assert value in hw, value
    dropped = [t for t in tags if not is_walkable(t)]
    assert {t["highway"] for t in dropped} >= {"motorway", "motorway_link"}
    assert any(t.get("foot") == "no" and t.get("tunnel") == "yes" for t in dropped)
    assert any(t.get("access") == "private" for t in dropped)
    assert all(
        t["highway"].startswith("motorway") or t.get("foot") == "no" or t.get("access") == "private"
        for t in dropped
    )
    assert any(t.get("oneway") == "yes" and is_walkable(t) for t in tags)
    assert any(t.get("footway") == "crossing" and t.get("foot") == "designated" for t in tags)
    assert any(t.get("highway") == "crossing" for t in osm.node_tags.values())


def test_the_river_is_crossed_only_by_few_bridges(osm):
    water = osm.polygon(natural="water")
    crossing = [
        (tags, osm.line(refs))
        for _, refs, tags in osm.highway_ways()
        if osm.line(refs).intersects(water)
    ]
    assert crossing, "the canal must cut through the street network"
    assert all(tags.get("bridge") == "yes" for tags, _ in crossing)
    walk_bridges = [tags for tags, _ in crossing if is_walkable(tags)]
    assert 2 <= len(walk_bridges) <= 4
    assert any(t["highway"] == "footway" and t.get("foot") == "designated" for t in walk_bridges)
    # without its bridges the walking network falls apart into the two banks
    G = osm.graph(keep=lambda t: is_walkable(t) and t.get("bridge") != "yes")
    parts = list(nx.connected_components(G))
    assert len(parts) == 2
    centre = next(
        np.asarray(osm.line(refs).coords)
        for _, refs, tags in osm.ways
        if tags.get("waterway") == "river"
    )
    for part in parts:
        xy = np.array([osm.xy[n] for n in part])
        north = xy[:, 1] > np.interp(xy[:, 0], centre[:, 0], centre[:, 1])
        assert north.all() or not north.any()


def test_gated_compounds_open_to_the_street_only_through_their_gates(osm):
    G = osm.graph()
    nodes = np.fromiter(G.nodes, dtype=np.int64)
    xy = np.asarray([osm.xy[int(n)] for n in nodes])
    pos = {int(n): k for k, n in enumerate(nodes)}
    eu = np.asarray([pos[u] for u, _ in G.edges])
    ev = np.asarray([pos[v] for _, v in G.edges])
    gate_ids = np.asarray([n for n, t in osm.node_tags.items() if t.get("barrier") == "gate"])
    gate_xy = np.asarray([osm.xy[int(g)] for g in gate_ids])
    gated = 0
    for _, refs, tags in osm.ways:
        if tags.get("landuse") != "residential":
            continue
        poly = shapely.Polygon([osm.xy[r] for r in refs])
        on_wall = shapely.distance(shapely.points(gate_xy), poly.exterior) < 0.05
        if not on_wall.any():
            continue  # an open old block crossed by lanes
        gated += 1
        assert 1 <= on_wall.sum() <= 3
        walls = {pos[int(g)] for g in gate_ids[on_wall]}
        inside = shapely.contains_xy(poly.buffer(-0.05), xy[:, 0], xy[:, 1])
        leaving = inside[eu] != inside[ev]
        for a, b in zip(eu[leaving], ev[leaving], strict=True):
            assert a in walls or b in walls
    assert gated >= 60


def test_the_project_loader_reads_the_demo_street_file(written, osm):
    from geo.load import load_network

    net = load_network(written[0].streets_osm, use_cache=False)
    G = osm.graph()
    mine_km = sum(d["length"] for _, _, d in G.edges(data=True)) / 1000.0
    assert net.report.dropped_edges == 0
    assert abs(net.report.length_km - mine_km) / mine_km < 0.01


# ------------------------------------------------------------------------------------------
# writing and options


def test_write_refuses_an_existing_folder_unless_forced(tmp_path, district):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    for force in (False, True):  # a folder the tool did not write is never replaced (issue 11)
        with pytest.raises(InputError, match="exists"):
            write_demo(district, target, force=force)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    ours = tmp_path / "demo"
    write_demo(district, ours)
    with pytest.raises(InputError, match="exists"):
        write_demo(district, ours)
    (ours / "stale.txt").write_text("x")
    files = write_demo(district, ours, force=True)
    assert not (ours / "stale.txt").exists()
    assert files.streets_osm.exists() and files.folder == ours
    assert sorted(p.name for p in ours.iterdir()) == sorted([*FILE_NAMES.values(), MARKER])


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_seed_is_a_one_line_input_error(seed):
    with pytest.raises(InputError, match="seed must be a non-negative integer"):
        generate_demo(seed=seed)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_any_seed_gives_a_valid_connected_district(seed):
    d = generate_demo(seed=seed)
    assert len(d.residents) >= 100
    assert (d.residents["elderly"] <= d.residents["population"]).all()
    assert d.residents.geometry.within(d.areas_street.union_all().buffer(1e-7)).all()
    assert all(len(d.facilities[k]) > 0 for k in FACILITY_KINDS)
    G = nx.Graph()
    for row in d.streets.itertuples():
        tags = {k: v for k, v in row._asdict().items() if isinstance(v, str)}
        if not is_walkable(tags):
            continue
        pts = [tuple(c) for c in row.geometry.coords]
        G.add_edges_from(itertools.pairwise(pts))
    assert nx.number_connected_components(G) == 1
