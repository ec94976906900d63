"""The coverage analysis end to end on hand-built networks, properties, and real Hangzhou data."""

from __future__ import annotations

import json

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coverage.analysis import AnalysisOptions, StudyInputs, analyse
from coverage.summary import summary_dict
from geo.network import WalkNetwork, network_from_graph
from geo.snap import snap_points
from layers.spec import LayerSpec

from .conftest import shared_file
from .test_geo_routing import UTM, X0, Y0, oracle

CANTEEN = LayerSpec("canteen", "食堂", "Canteen", "elderly", 3.6, (5.0, 10.0, 15.0), 15.0)
CENTER = LayerSpec(
    "neighborhood_center", "邻里中心", "Center", "population", 4.5, (5.0, 10.0, 15.0), 15.0
)


def line_network() -> WalkNetwork:
    """One straight 2 km street: nodes at x = 0, 1000, 2000 m (UTM 51N)."""
    G = nx.MultiDiGraph(crs=f"EPSG:{UTM}")
    for i in range(3):
        G.add_node(i, x=X0 + 1000 * i, y=Y0)
    G.add_edge(0, 1)
    G.add_edge(1, 2)
    return network_from_graph(G, crs=UTM)


def points(net: WalkNetwork, xy: list[tuple[float, float]]) -> gpd.GeoSeries:
    arr = np.asarray(xy, float)
    lon, lat = net.to_wgs84.transform(X0 + arr[:, 0], Y0 + arr[:, 1])
    return gpd.GeoSeries(shapely.points(lon, lat), crs=4326)


def residents_frame(net, xy, pop, elderly, area=None):
    return gpd.GeoDataFrame(
        {
            "resident_id": [f"r{i}" for i in range(len(xy))],
            "name": [f"r{i}" for i in range(len(xy))],
            "population": pop,
            "elderly": elderly,
            "youth": [0] * len(xy),
        },
        geometry=points(net, xy),
        crs=4326,
    )


def facility_frame(net, kind, xy, capacity=None):
    n = len(xy)
    return gpd.GeoDataFrame(
        {
            "facility_id": [f"{kind}-{i}" for i in range(n)],
            "kind": [kind] * n,
            "name": [f"{kind} {i}" for i in range(n)],
            "capacity": capacity if capacity is not None else [np.nan] * n,
        },
        geometry=points(net, xy) if n else gpd.GeoSeries([], crs=4326),
        crs=4326,
    )


def test_hand_worked_line_street():
    net = line_network()
    # canteen at x=0 on the street; elderly walk 60 m/min
    res = residents_frame(
        net,
        [(285, 10), (590, 0), (1200, -20), (1990, 0), (1000, 900)],
        pop=[100, 100, 100, 100, 100],
        elderly=[10, 20, 30, 40, 50],
    )
    fac = {"canteen": facility_frame(net, "canteen", [(0, 0)])}
    r = analyse(net, StudyInputs(res, fac, {"canteen": CANTEEN}), title="t")
    m = r.residents["minutes_canteen"].to_numpy()
    # 10 m access + 285 m = 295 m = 4.92 min;  590 m = 9.83 min;  20 + 1200 = 1220 m = 20.33 min
    # 1990 m = 33.17 min;  the last is 900 m from the street: unsnapped, inf
    np.testing.assert_allclose(m[:4], [295 / 60, 590 / 60, 1220 / 60, 1990 / 60], atol=1e-6)
    assert np.isinf(m[4]) and not r.residents["snapped"].iloc[4]
    d = r.metrics[(r.metrics.level == "district")].set_index("minutes")
    # elderly total 150 (the unsnapped 50 stay in the denominator)
    assert d.loc[5.0, "population"] == 150
    assert d.loc[5.0, "covered_population"] == 10
    assert d.loc[10.0, "covered_population"] == 30
    assert d.loc[15.0, "coverage_rate"] == pytest.approx(30 / 150)
    assert d.loc[15.0, "unsnapped"] == 1
    # weighted mean over the 4 reachable: (10*4.92 + 20*9.83 + 30*20.33 + 40*33.17) / 100
    assert d.loc[15.0, "mean_minutes"] == pytest.approx(
        (10 * 295 + 20 * 590 + 30 * 1220 + 40 * 1990) / 60 / 100
    )
    assert d.loc[15.0, "p90_minutes"] == pytest.approx(1990 / 60)
    # the two far residents live on the street 1-2 whose ends are both beyond 900 m: one zone
    gaps = r.gaps[r.gaps.kind == "canteen"].sort_values("gap_id")
    assert list(gaps["uncovered_population"]) == [70.0]
    assert gaps["nearest_facility_minutes"].iloc[0] == pytest.approx(
        1220 / 60
    )  # its nearest member
    s = summary_dict(r)
    json.dumps(s)  # JSON-ready, no inf/NaN objects
    assert s["layers"]["canteen"]["coverage_rate_by_minutes"] == {
        "5": pytest.approx(10 / 150),
        "10": pytest.approx(30 / 150),
        "15": pytest.approx(30 / 150),
    }
    assert s["layers"]["canteen"]["unsnapped_residents"] == 1


def test_gap_zones_split_by_served_streets():
    # 4 km street, nodes every 1 km; a canteen at 2 km serves nodes 1..3 (<= 900 m? no: 1000 m)
    G = nx.MultiDiGraph(crs=f"EPSG:{UTM}")
    for i in range(9):
        G.add_node(i, x=X0 + 500 * i, y=Y0)
    for i in range(8):
        G.add_edge(i, i + 1)
    net = network_from_graph(G, crs=UTM)
    # canteen at x=2000 (node 4) covers nodes 3..5 (500 m) and reaches 900 m: nodes 2, 6 are
    # 1000 m away, so streets 0-1-2 and 6-7-8 are unserved and separated by served streets
    res = residents_frame(
        net,
        [(100, 0), (700, 0), (2100, 0), (3300, 0), (3900, 0)],
        pop=[10] * 5,
        elderly=[5, 6, 7, 8, 9],
    )
    fac = {"canteen": facility_frame(net, "canteen", [(2000, 0)])}
    r = analyse(net, StudyInputs(res, fac, {"canteen": CANTEEN}), title="t")
    gaps = r.gaps.sort_values("gap_id")
    assert list(gaps["uncovered_population"]) == [17.0, 11.0]  # east (8+9), west (5+6)
    assert list(r.residents["gap_canteen"]) == [2, 2, 0, 1, 1]
    assert gaps["nearest_facility"].tolist() == ["canteen-0", "canteen-0"]
    # nearest of each zone: 1300 m (x=700) and 1300 m (x=3300) -> 21.67 min
    np.testing.assert_allclose(gaps["nearest_facility_minutes"], [1300 / 60, 1300 / 60])


def test_resident_on_facility_is_access_legs_only():
    net = line_network()
    res = residents_frame(net, [(500, 30)], pop=[10], elderly=[10])
    fac = {"canteen": facility_frame(net, "canteen", [(500, -40)])}
    r = analyse(net, StudyInputs(res, fac, {"canteen": CANTEEN}), title="t")
    assert r.residents["minutes_canteen"].iloc[0] == pytest.approx(70 / 60)


def test_suggestions_close_the_gap_and_report():
    net = line_network()
    res = residents_frame(
        net, [(100, 0), (1800, 0), (1900, 5)], pop=[50, 50, 50], elderly=[10, 20, 30]
    )
    fac = {"canteen": facility_frame(net, "canteen", [(0, 0)])}
    cands = gpd.GeoDataFrame(
        {"site_id": ["a", "b"], "name": ["A", "B"], "capacity": [np.nan] * 2},
        geometry=points(net, [(1000, 0), (1850, 0)]),
        crs=4326,
    )
    r = analyse(
        net,
        StudyInputs(res, fac, {"canteen": CANTEEN}, candidates=cands),
        title="t",
        options=AnalysisOptions(suggest={"canteen": 1}),
    )
    s = r.suggestions
    assert list(s["site_id"]) == ["b"] and s["added_population"].iloc[0] == 50
    run = r.suggestion_runs["canteen"]
    assert run.coverage_rate_before == pytest.approx(10 / 60)
    assert run.coverage_rate_after == pytest.approx(1.0)
    assert run.optimal
    # scenario comparison: the same metrics after the new site, minutes measured by hand
    after = r.residents["minutes_after_canteen"].to_numpy()
    np.testing.assert_allclose(after, [100 / 60, 50 / 60, (50 + 5) / 60], atol=1e-6)
    d = r.metrics_after[r.metrics_after.level == "district"].set_index("minutes")
    assert d.loc[15.0, "coverage_rate"] == pytest.approx(1.0)
    assert d.loc[5.0, "covered_population"] == 60


def grid(seed: int, n: int = 8, spacing: float = 120.0) -> WalkNetwork:
    rng = np.random.default_rng(seed)
    G = nx.MultiDiGraph(crs=f"EPSG:{UTM}")
    for i in range(n):
        for j in range(n):
            G.add_node(i * n + j, x=X0 + j * spacing, y=Y0 + i * spacing)
    for i in range(n):
        for j in range(n):
            k = i * n + j
            if j + 1 < n and rng.random() > 0.1:
                G.add_edge(k, k + 1)
            if i + 1 < n and rng.random() > 0.1:
                G.add_edge(k, k + n)
    return network_from_graph(G, crs=UTM)


def random_inputs(net, seed, n_res=40, n_fac=3):
    rng = np.random.default_rng(seed)
    ext = net.node_xy.max(axis=0) - net.node_xy.min(axis=0)
    xy = [tuple(v) for v in rng.uniform(0, 1, (n_res, 2)) * ext]
    pop = rng.integers(1, 100, n_res)
    res = residents_frame(net, xy, pop=pop, elderly=(pop * rng.uniform(0, 1, n_res)).astype(int))
    fxy = [tuple(v) for v in rng.uniform(0, 1, (n_fac, 2)) * ext]
    return res, fxy


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), faster=st.floats(1.0, 2.0))
def test_properties_speed_minutes_and_more_facilities(seed, faster):
    net = grid(seed)
    res, fxy = random_inputs(net, seed)
    base = analyse(
        net,
        StudyInputs(res, {"canteen": facility_frame(net, "canteen", fxy)}, {"canteen": CANTEEN}),
        title="t",
    )
    quick = analyse(
        net,
        StudyInputs(
            res,
            {"canteen": facility_frame(net, "canteen", fxy)},
            {"canteen": CANTEEN.with_speed(3.6 * faster)},
        ),
        title="t",
    )
    more = analyse(
        net,
        StudyInputs(
            res,
            {"canteen": facility_frame(net, "canteen", [*fxy, (300, 300)])},
            {"canteen": CANTEEN},
        ),
        title="t",
    )

    def covered(r):
        d = r.metrics[r.metrics.level == "district"].set_index("minutes")
        return d["covered_population"]

    c = covered(base)
    # more minutes never lowers coverage
    assert (np.diff(c.to_numpy()) >= 0).all()
    # a faster walk never lowers it; nor does another facility
    assert (covered(quick).to_numpy() >= c.to_numpy() - 1e-9).all()
    assert (covered(more).to_numpy() >= c.to_numpy() - 1e-9).all()
    m0 = base.residents["minutes_canteen"].to_numpy()
    m1 = more.residents["minutes_canteen"].to_numpy()
    assert (m1 <= m0 + 1e-9).all()


def test_hex_areas_when_no_areas_given():
    net = grid(1)
    res, fxy = random_inputs(net, 1)
    r = analyse(
        net,
        StudyInputs(res, {"canteen": facility_frame(net, "canteen", fxy)}, {"canteen": CANTEEN}),
        title="t",
    )
    assert (r.areas["level"] == "hex").all() and len(r.areas) >= 1
    hex_rows = r.metrics[r.metrics.level == "hex"]
    per_threshold = hex_rows.groupby("minutes")["population"].sum()
    district = r.metrics[r.metrics.level == "district"].set_index("minutes")["population"]
    np.testing.assert_allclose(per_threshold.to_numpy(), district.to_numpy())


def test_capacity_gives_2sfca_and_oversubscription():
    net = line_network()
    res = residents_frame(
        net, [(100, 0), (200, 0), (1500, 0)], pop=[100, 100, 100], elderly=[100, 100, 100]
    )
    fac = {"canteen": facility_frame(net, "canteen", [(0, 0), (1600, 0)], capacity=[20.0, 500.0])}
    r = analyse(net, StudyInputs(res, fac, {"canteen": CANTEEN}), title="t")
    acc = r.residents["access_canteen"].to_numpy()
    assert acc[2] > acc[0] > 0
    over = r.facilities.loc[r.facilities["load_ratio"] > 1, "facility_id"]
    assert list(over) == ["canteen-0"]


@pytest.mark.realdata
def test_real_hangzhou_community_centres_against_networkx(tmp_path):
    """9 Shangcheng 街道, residential buildings as residents, OSM community centres as facilities.

    The independent check splits the street graph at every snapped point and runs networkx
    multi-source Dijkstra; coverage must agree within 0.1 percentage point.
    """
    from geo.load import load_network

    gml = shared_file("shangcheng_west_walk.graphml.gz")
    admin = gpd.read_file(shared_file("hangzhou_admin_osm.geojson"))
    streets = admin[admin["in_new_shangcheng_2021"].astype(bool)].rename(columns={"name": "area"})
    assert len(streets) == 9
    homes = gpd.read_file(shared_file("hangzhou_westlake_residential_osm.geojson"))
    homes = homes[homes.geometry.intersects(streets.union_all())].reset_index(drop=True)
    area_m2 = homes.to_crs(32651).area.to_numpy()
    levels = pd.to_numeric(homes.get("building:levels"), errors="coerce").fillna(6).clip(1, 40)
    pop = np.maximum(1, np.round(area_m2 * levels.to_numpy() / 35)).astype(int)
    res = gpd.GeoDataFrame(
        {
            "resident_id": [f"b{i}" for i in range(len(homes))],
            "name": homes.get("name", ""),
            "population": pop,
            "elderly": (pop * 0.25).astype(int),
            "youth": (pop * 0.2).astype(int),
        },
        geometry=homes.geometry.representative_point(),
        crs=4326,
    )
    pois = gpd.read_file(shared_file("hangzhou_westlake_pois_osm.geojson"))
    cc = pois[pois["amenity"] == "community_centre"].reset_index(drop=True)
    fac = gpd.GeoDataFrame(
        {
            "facility_id": [f"cc{i}" for i in range(len(cc))],
            "kind": "neighborhood_center",
            "name": cc.get("name", ""),
            "capacity": np.nan,
        },
        geometry=cc.geometry,
        crs=4326,
    )
    net = load_network(gml, cache_dir=tmp_path)
    r = analyse(
        net,
        StudyInputs(
            res,
            {"neighborhood_center": fac},
            {"neighborhood_center": CENTER},
            streets=streets[["area", "geometry"]],
        ),
        title="real",
    )
    assert len(res) > 2000 and len(fac) >= 3

    # independent computation on the same snapped points
    rxy = net.project_lonlat(res.geometry.x.to_numpy(), res.geometry.y.to_numpy())
    fxy = net.project_lonlat(fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy())
    sr, sf = snap_points(net, rxy), snap_points(net, fxy)
    want_m = oracle(net, sf, sr, np.inf)
    want_min = want_m / CENTER.metres_per_minute
    np.testing.assert_allclose(
        r.residents["minutes_neighborhood_center"].to_numpy(), want_min, atol=1e-6
    )
    w = res["population"].to_numpy(float)
    d = r.metrics[r.metrics.level == "district"].set_index("minutes")
    for t in (5.0, 10.0, 15.0):
        want_rate = w[want_min <= t].sum() / w.sum()
        assert abs(d.loc[t, "coverage_rate"] - want_rate) < 0.001
    # per 街道 too
    per = r.metrics[(r.metrics.level == "street") & (r.metrics.minutes == 15.0)].set_index("area")
    street_of = r.residents["area"].to_numpy()
    for name in streets["area"]:
        sel = street_of == name
        if w[sel].sum() > 0:
            want = w[sel & (want_min <= 15)].sum() / w[sel].sum()
            assert abs(per.loc[name, "coverage_rate"] - want) < 0.001


def test_unsnapped_facilities_and_residents_outside_areas_are_counted_apart(tmp_path):
    """A facility 900 m off the street serves no one; residents outside every 街道 are named."""
    net = line_network()
    res = residents_frame(
        net, [(100, 0), (900, 0), (1900, 0)], pop=[100, 200, 400], elderly=[10, 20, 40]
    )
    fac = {"canteen": facility_frame(net, "canteen", [(0, 0), (1500, 900)])}
    west = shapely.Polygon(list(points(net, [(-50, -50), (1000, -50), (1000, 50), (-50, 50)])))
    streets = gpd.GeoDataFrame({"area": ["西街道"]}, geometry=[west], crs=4326)
    r = analyse(net, StudyInputs(res, fac, {"canteen": CANTEEN}, streets=streets), title="t")
    s = summary_dict(r)
    layer = s["layers"]["canteen"]
    assert layer["facilities"] == 1 and layer["facilities_unsnapped"] == 1
    assert layer["unsnapped_facilities"] == [{"facility_id": "canteen-1", "name": "canteen 1"}]
    assert s["residents_outside_areas"] == 1 and s["population_outside_areas"] == 400
    # the district still counts everyone; the 街道 row only its own residents
    d = r.metrics[(r.metrics.level == "district") & (r.metrics.minutes == 15.0)]
    st_row = r.metrics[(r.metrics.level == "street") & (r.metrics.minutes == 15.0)]
    assert float(d["population"].iloc[0]) == 70 and float(st_row["population"].iloc[0]) == 30
    from maps.report import report_tables

    checks = next(t for t in report_tables(r, lang="zh") if t.key == "checks")
    details = " ".join(checks.rows["detail"].astype(str))
    assert "canteen 1（canteen-1）" in details and "400" in details
    assert list(checks.rows["count"]) == [1, 1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_src=st.integers(1, 5))
def test_street_minutes_equal_networkx_at_each_street_middle(seed, n_src):
    """The drawn network's minutes are the exact walk to each street's middle (networkx oracle)."""
    from coverage.analysis import edge_midpoint_m
    from geo.routing import nearest_distances
    from geo.snap import Snapped

    from .test_geo_routing import _points, random_network

    net = network_from_graph(
        random_network(seed, connected=False), crs=UTM, largest_component=False
    )
    src = snap_points(net, _points(seed, n_src), max_snap_m=120)
    half = net.edge_length_m / 2
    mids = Snapped(
        edge=np.arange(net.n_edges),
        offset_m=half,
        access_m=np.zeros(net.n_edges),
        xy=np.zeros((net.n_edges, 2)),
        unsnapped=np.zeros(net.n_edges, dtype=bool),
    )
    near = nearest_distances(net, src, mids)
    got = edge_midpoint_m(net, near, src)
    np.testing.assert_allclose(got, oracle(net, src, mids, np.inf), rtol=1e-9, atol=1e-6)


def test_network_warnings_reach_summary_and_report():
    """A network that looks like a driving network is said in summary.json and the report."""
    from dataclasses import replace as dc_replace

    from geo.network import network_warnings
    from maps.report import report_tables

    net = line_network()
    warned = network_warnings(source="drive.graphml", footpath_km=0.0, tagged_km=2.0)
    assert warned  # no footways at all: warned
    net = dc_replace(
        net, report=dc_replace(net.report, footpath_km=0.0, tagged_km=2.0, warnings=warned)
    )
    res = residents_frame(net, [(100, 0)], pop=[10], elderly=[5])
    fac = {"canteen": facility_frame(net, "canteen", [(0, 0)])}
    r = analyse(net, StudyInputs(res, fac, {"canteen": CANTEEN}), title="t")
    assert summary_dict(r)["network_warnings"] == list(warned)
    checks = next(t for t in report_tables(r, lang="zh") if t.key == "checks")
    detail = " ".join(checks.rows["detail"])
    assert "机动车路网" in detail and "0.0%" in detail


def test_loads_reach_the_facilities_report_and_exports(tmp_path):
    """2SFCA loads are columns of the facilities table: report, workbook and GIS layers show them."""
    import pyogrio

    from coverage.access2sfca import gaussian_2sfca
    from maps.export import export_result
    from maps.report import report_tables

    net = line_network()
    res = residents_frame(
        net, [(100, 0), (200, 0), (1500, 0)], pop=[100, 100, 100], elderly=[100, 100, 100]
    )
    fac = {
        "canteen": facility_frame(
            net, "canteen", [(0, 0), (1600, 0), (900, 0)], capacity=[20.0, 500.0, np.nan]
        )
    }
    r = analyse(net, StudyInputs(res, fac, {"canteen": CANTEEN}), title="t")
    f = r.facilities.set_index("facility_id")
    # the same loads as 2SFCA computed on its own from the routed pairs
    from geo.routing import reachable_pairs

    rs = snap_points(net, _xy(net, res), max_snap_m=300)
    fs = snap_points(net, _xy(net, fac["canteen"]), max_snap_m=300)
    pairs = reachable_pairs(net, fs, rs, cutoff_m=15 * CANTEEN.metres_per_minute)
    ref = gaussian_2sfca(
        pairs["target"].to_numpy(),
        pairs["source"].to_numpy(),
        pairs["distance_m"].to_numpy() / CANTEEN.metres_per_minute,
        res["elderly"].to_numpy(float),
        np.array([20.0, 500.0, np.nan]),
        catchment_min=15,
    )
    np.testing.assert_allclose(f["demand_load"].to_numpy(), ref.load)
    assert f.loc["canteen-0", "load_ratio"] > 1 and f.loc["canteen-1", "load_ratio"] < 1
    assert np.isnan(f.loc["canteen-2", "load_ratio"])
    tables = {t.key: t for t in report_tables(r, lang="zh")}
    assert list(tables["loads"].rows["name"]) == ["canteen 0"]  # only the over-subscribed
    checks = tables["checks"].rows
    assert "容量未知" in " ".join(checks["check"]) and "canteen 2" in " ".join(checks["detail"])
    export_result(r, tmp_path / "gis", formats=("gpkg",))
    info = pyogrio.read_info(tmp_path / "gis" / "study.gpkg", layer="facilities")
    assert {"demand_load", "load_ratio"} <= set(info["fields"])


def _xy(net, gdf):
    from coverage.state import points_xy

    return points_xy(net, gdf)


def test_more_sites_than_candidates_is_said_in_plain_words():
    from layers.errors import InputError

    net = line_network()
    res = residents_frame(net, [(1900, 0), (1950, 0)], pop=[10, 10], elderly=[5, 5])
    fac = {"canteen": facility_frame(net, "canteen", [(0, 0)])}
    with pytest.raises(InputError, match=r"asks for 50 new sites but only \d+ candidate") as e:
        analyse(
            net,
            StudyInputs(res, fac, {"canteen": CANTEEN}),
            title="t",
            options=AnalysisOptions(suggest={"canteen": 50}),
        )
    assert "`p`" not in str(e.value) and "--suggest canteen=" in str(e.value)


def test_osm_tag_proxy_layers_are_said_in_every_output():
    """Facilities built by prepare-osm from OSM tags are flagged in the summary and sources."""
    from coverage.analysis import PROXY_SOURCE_LINE
    from layers.osm.facilities import OSM_PROXY_SOURCE

    net = line_network()
    res = residents_frame(net, [(100, 0)], pop=[10], elderly=[5])
    fac = facility_frame(net, "canteen", [(0, 0)]).assign(source=OSM_PROXY_SOURCE)
    center = facility_frame(net, "neighborhood_center", [(500, 0)])
    specs = {"canteen": CANTEEN, "neighborhood_center": CENTER}
    r = analyse(
        net,
        StudyInputs(res, {"canteen": fac, "neighborhood_center": center}, specs),
        title="t",
    )
    s = summary_dict(r)
    assert s["layers"]["canteen"]["osm_proxy"] is True
    assert s["layers"]["neighborhood_center"]["osm_proxy"] is False
    assert PROXY_SOURCE_LINE in s["sources"]


def test_gap_zone_area_is_the_street_most_of_its_residents_live_in(tmp_path):
    """The vectorised gap table names, per zone, the 街道 most of its residents live in."""
    from data.demo import generate_demo, write_demo
    from geo.load import load_network
    from layers.model import read_areas, read_facilities, read_residents
    from layers.spec import load_layer_table

    files = write_demo(generate_demo(seed=11), tmp_path / "d")
    net = load_network(files.streets_osm, cache_dir=tmp_path / "c")
    spec = load_layer_table()["youth_hostel"]
    inputs = StudyInputs(
        read_residents(files.residents_gpkg),
        {"youth_hostel": read_facilities(files.facilities["youth_hostel"], "youth_hostel")},
        {"youth_hostel": spec},
        streets=read_areas(files.areas_gpkg, level="street", layer="streets_areas"),
    )
    r = analyse(net, inputs, title="t")
    res = r.residents
    assert len(r.gaps) > 1
    for row in r.gaps.itertuples():
        members = res[res["gap_youth_hostel"] == row.gap_id]
        named = members["area"][members["area"] != ""]
        counts = named.value_counts(sort=False)
        best = counts.max() if len(counts) else 0
        # the most common 街道; among equals the one met first in resident order
        want = next((a for a in named if counts[a] == best), "")
        assert row.area == want


def test_city_streets_are_projected_as_one_array_with_the_same_vertices(monkeypatch):
    """Above the simplify limit the streets are built from one projected coordinate array:
    the same vertices, in WGS84, as projecting every line (what a city network gets)."""
    import coverage.analysis as analysis
    from bench.synthetic import grid_network

    net = grid_network(900, seed=4)
    monkeypatch.setattr(analysis, "SIMPLIFY_STREETS_UP_TO", 0)
    analysis.street_geometry_wgs84.cache_clear()
    try:
        fast = analysis.street_geometry_wgs84(net)
    finally:
        analysis.street_geometry_wgs84.cache_clear()
    each = analysis._to_wgs84(net, net.edge_geometries())
    assert len(fast) == net.n_edges
    assert shapely.equals_exact(fast, each, tolerance=1e-12).all()


def test_layers_drawn_in_threads_equal_one_at_a_time(monkeypatch):
    """Service areas and gap zones run one layer per core; the tables are the same as in turn."""
    import coverage.analysis as analysis
    from bench.bench_coverage import inputs_for
    from bench.synthetic import grid_network, random_points

    net = grid_network(3000, seed=8)
    inputs = inputs_for(net, random_points(net, 2000, seed=9), 9)
    monkeypatch.setattr(analysis.os, "cpu_count", lambda: 4)
    threaded = analyse(net, inputs, title="t")
    monkeypatch.setattr(analysis.os, "cpu_count", lambda: 1)
    in_turn = analyse(net, inputs, title="t")
    for a, b in ((threaded.gaps, in_turn.gaps), (threaded.service_areas, in_turn.service_areas)):
        assert len(a) and a.drop(columns="geometry").equals(b.drop(columns="geometry"))
        assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0).all()
    assert summary_dict(threaded) | {"timings_s": 0} == summary_dict(in_turn) | {"timings_s": 0}
