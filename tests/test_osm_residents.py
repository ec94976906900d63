"""Residents derived from OSM buildings: exact totals, floor-area weights, groups, real Hangzhou data."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from layers.errors import InputError
from layers.model import read_areas
from layers.osm.residents import (
    allocate_population,
    largest_remainder,
    parse_levels,
    read_residential_osm,
    residential_units,
    residents_from_osm,
)
from tests.conftest import shared_file

# ~100 m in degrees near Hangzhou (30.25N)
DX = 0.00104
DY = 0.0009


def cell(i: float, j: float, w: float = 1.0, h: float = 1.0):
    x0, y0 = 120.15 + i * DX, 30.25 + j * DY
    return box(x0, y0, x0 + w * DX, y0 + h * DY)


def synthetic_layer() -> gpd.GeoDataFrame:
    """Two streets side by side (west: x 0-10, east: x 10-20 cells)."""
    rows = [
        # west street: a compound with two typed buildings and one untyped one inside
        ("w1", "翠苑一区", "", "residential", "", cell(1, 1, 6, 6)),
        ("w2", "1幢", "apartments", "", "6", cell(2, 2, 1, 0.5)),  # 5,000 m2 x 6
        ("w3", "2幢", "apartments", "", "12", cell(4, 2, 1, 0.5)),  # same footprint, 12 floors
        ("w4", "", "yes", "", "", cell(2, 4, 1, 0.5)),  # untyped, inside the compound: counted
        ("w5", "", "yes", "", "", cell(8, 8, 1, 0.5)),  # untyped, outside compounds: ignored
        ("w6", "", "house", "", "", cell(8, 1, 0.3, 0.3)),  # lone house, default 3 floors
        ("w7", "", "residential", "", "", cell(9, 9, 0.02, 0.02)),  # 4 m2 shed: ignored
        # east street: a compound with no mapped buildings
        ("w8", "望江新村", "", "residential", "", cell(12, 1, 5, 5)),
        ("w9", "", "dormitory", "", "", cell(18, 8, 1, 1)),
    ]
    return gpd.GeoDataFrame(
        {
            "osm_type": ["way"] * len(rows),
            "osm_id": [int(r[0][1:]) for r in rows],
            "name": [r[1] for r in rows],
            "building": [r[2] or None for r in rows],
            "landuse": [r[3] or None for r in rows],
            "building:levels": [r[4] or None for r in rows],
        },
        geometry=[r[5] for r in rows],
        crs=4326,
    )


def synthetic_areas() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["西街道", "东街道", "北街道"]},
        geometry=[cell(0, 0, 10, 10), cell(10, 0, 10, 10), cell(0, 10, 20, 5)],
        crs=4326,
    )


@pytest.fixture
def layer_file(tmp_path):
    path = tmp_path / "residential.geojson"
    synthetic_layer().to_file(path, driver="GeoJSON")
    return path


def test_units_dedupe_compounds_and_floor_area(layer_file):
    units = residential_units(read_residential_osm(layer_file))
    by_id = units.set_index("osm_id")
    assert set(by_id.index) == {"w2", "w3", "w4", "w6", "w8", "w9"}  # w1 has buildings; w5, w7 out
    w2, w3 = by_id.loc["w2", "floor_area_m2"], by_id.loc["w3", "floor_area_m2"]
    assert w3 == pytest.approx(2 * w2, rel=1e-4)  # same footprint, twice the floors
    assert by_id.loc["w2", "levels_source"] == "tag"
    assert by_id.loc["w6", "levels"] == 3 and by_id.loc["w6", "levels_source"] == "default"
    assert by_id.loc["w2", "compound"] == "翠苑一区"
    assert by_id.loc["w2", "name"] == "翠苑一区 1幢"
    assert by_id.loc["w8", "levels_source"] == "compound"
    ratio = by_id.loc["w8", "floor_area_m2"] / by_id.loc["w8", "footprint_m2"]
    assert ratio == pytest.approx(1.6)
    assert by_id.loc["w2", "footprint_m2"] == pytest.approx(5000, rel=0.03)


def test_compound_units_merge_buildings(layer_file):
    units = residential_units(read_residential_osm(layer_file), unit="compound")
    by_id = units.set_index("osm_id")
    assert "w2" not in by_id.index and "w1" in by_id.index
    buildings = residential_units(read_residential_osm(layer_file)).set_index("osm_id")
    expected = buildings.loc[["w2", "w3", "w4"], "floor_area_m2"].sum()
    assert by_id.loc["w1", "floor_area_m2"] == pytest.approx(expected)


def test_allocation_exact_totals_and_groups(layer_file):
    totals = {"西街道": 10_001, "东街道": 3_333}
    shares = {"elderly": 0.27, "youth": 0.2}
    res = residents_from_osm(layer_file, synthetic_areas(), totals, shares=shares)
    assert res.groupby("area")["population"].sum().to_dict() == totals
    for area, total in totals.items():
        sub = res[res["area"] == area]
        assert sub["elderly"].sum() == round(0.27 * total)
        assert sub["youth"].sum() == round(0.2 * total)
    assert (res["elderly"] <= res["population"]).all()
    assert (res["youth"] <= res["population"]).all()
    assert res["population"].dtype == np.int64
    assert list(res.columns[:6]) == [
        "resident_id",
        "name",
        "population",
        "elderly",
        "youth",
        "area",
    ]
    assert (res.geom_type == "Point").all() and res.crs.to_epsg() == 4326
    assert res["resident_id"].is_unique
    pop = res.set_index("resident_id")["population"]
    assert abs(pop["w3"] - 2 * pop["w2"]) <= 2  # twice the floors, twice the people
    assert "北街道" not in set(res["area"])  # areas without totals are left out
    assert "OpenStreetMap" in res.attrs["sources"][0]


def test_per_area_shares_and_zero_total(layer_file):
    units = residential_units(read_residential_osm(layer_file))
    res = allocate_population(
        units,
        synthetic_areas(),
        {"西街道": 500, "东街道": 0},
        shares={"elderly": 0.1, "西街道": {"elderly": 0.5}},
        area_col="name",
    )
    west = res[res["area"] == "西街道"]
    assert west["elderly"].sum() == 250  # the per-area share wins
    assert res[res["area"] == "东街道"]["population"].sum() == 0


@pytest.mark.parametrize(
    ("totals", "shares", "error", "words"),
    [
        ({"西街倒": 100}, None, ValueError, ["unknown area '西街倒'", "did you mean '西街道'"]),
        (
            {"北街道": 100},
            None,
            InputError,
            ["'北街道' has a population total (100) but no residential"],
        ),
        ({"西街道": -5}, None, ValueError, ["whole number >= 0"]),
        ({"西街道": 10.5}, None, ValueError, ["whole number >= 0"]),
        ({"西街道": 100}, {"elderly": 1.5}, ValueError, ["share of 'elderly'", "between 0 and 1"]),
        (
            {"西街道": 100},
            {"东街道": {"elderly": 0.2}},
            ValueError,
            ["shares given for area '东街道'"],
        ),
        ({}, None, ValueError, ["no population totals"]),
    ],
)
def test_allocation_errors(layer_file, totals, shares, error, words):
    """What the OSM data lacks is the user's to fix (InputError); a bad argument is a ValueError."""
    with pytest.raises(ValueError) as info:
        residents_from_osm(layer_file, synthetic_areas(), totals, shares=shares)
    assert type(info.value) is error
    for w in words:
        assert w in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"unit": "street"}, "unknown unit 'street'"), ({"compound_far": 0}, "compound_far")],
)
def test_unit_arguments_are_checked_as_arguments(layer_file, kwargs, words):
    with pytest.raises(ValueError, match=words) as info:
        residential_units(read_residential_osm(layer_file), **kwargs)
    assert type(info.value) is ValueError


def test_osm_xml_through_pyosmium(tmp_path):
    """A tiny .osm file: a compound (closed way) with one apartment block inside."""
    nodes = {
        1: (120.150, 30.250), 2: (120.156, 30.250), 3: (120.156, 30.255), 4: (120.150, 30.255),
        5: (120.151, 30.251), 6: (120.153, 30.251), 7: (120.153, 30.252), 8: (120.151, 30.252),
    }  # fmt: skip
    xml = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for nid, (lon, lat) in nodes.items():
        xml.append(f'<node id="{nid}" version="1" lat="{lat}" lon="{lon}"/>')
    xml.append('<way id="100" version="1">')
    xml += [f'<nd ref="{n}"/>' for n in (1, 2, 3, 4, 1)]
    xml.append('<tag k="landuse" v="residential"/><tag k="name" v="采荷小区"/></way>')
    xml.append('<way id="101" version="1">')
    xml += [f'<nd ref="{n}"/>' for n in (5, 6, 7, 8, 5)]
    xml.append('<tag k="building" v="apartments"/><tag k="building:levels" v="7"/></way>')
    xml.append("</osm>")
    path = tmp_path / "tiny.osm"
    path.write_text("\n".join(xml), encoding="utf-8")
    feats = read_residential_osm(path)
    assert sorted(feats["osm_id"]) == ["w100", "w101"]
    units = residential_units(feats)
    assert units["osm_id"].tolist() == ["w101"]
    assert units["levels"].tolist() == [7.0]
    assert units["compound"].tolist() == ["采荷小区"]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("none.osm.pbf", None, "OSM file not found"),
        ("empty.osm.pbf", b"", "OSM file is empty"),
        ("junk.osm.pbf", b"not a protobuf at all", "not a readable OSM file"),
        (
            "nothing.geojson",
            "polygons-without-residential",
            "no residential buildings or compounds",
        ),
    ],
)
def test_unreadable_osm_sources(tmp_path, name, content, words):
    path = tmp_path / name
    if content == "polygons-without-residential":
        gpd.GeoDataFrame({"building": ["commercial"]}, geometry=[cell(0, 0)], crs=4326).to_file(
            path, driver="GeoJSON"
        )
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=words):
        read_residential_osm(path)


def test_floor_table_without_osm_tags(tmp_path):
    """A city footprint layer with a 层数 column: every polygon is a residential building."""
    gdf = gpd.GeoDataFrame(
        {"层数": [3, 18]}, geometry=[cell(1, 1, 1, 1), cell(3, 1, 1, 1)], crs=4326
    )
    path = tmp_path / "footprints.gpkg"
    gdf.to_file(path, driver="GPKG")
    units = residential_units(read_residential_osm(path))
    assert units["levels"].tolist() == [3.0, 18.0]
    res = allocate_population(units, synthetic_areas(), {"西街道": 2100})
    assert sorted(res["population"].tolist()) == [300, 1800]


@pytest.mark.parametrize(
    ("text", "levels"),
    [("6", 6.0), ("6;7", 6.0), (" 12 ", 12.0), ("地上6层", 6.0), ("", None), ("0", None)],
)
def test_parse_levels(text, levels):
    assert parse_levels(text) == levels


# ------------------------------------------------------------------- largest remainder


def test_largest_remainder_examples():
    assert largest_remainder([1.0, 1.0, 1.0], 10).tolist() == [4, 3, 3]  # ties to the first
    assert largest_remainder([0.5, 0.25, 0.25], 3).tolist() == [1, 1, 1]  # 1.5, .75, .75
    assert largest_remainder([0.6, 0.3, 0.1], 3).tolist() == [2, 1, 0]
    assert largest_remainder([2.2e-311], 1).tolist() == [1]  # subnormal weights
    assert largest_remainder([3, 1], 0).tolist() == [0, 0]
    assert largest_remainder([], 0).tolist() == []
    with pytest.raises(ValueError):
        largest_remainder([0.0, 0.0], 5)


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(st.floats(min_value=0.0, max_value=1e6), min_size=1, max_size=40).filter(
        lambda w: sum(w) > 0
    ),
    total=st.integers(min_value=0, max_value=10**7),
)
def test_largest_remainder_sums_exactly(weights, total):
    parts = largest_remainder(weights, total)
    assert int(parts.sum()) == total
    quota = np.asarray(weights) * total / sum(weights)
    assert (parts >= np.floor(quota) - 1).all() and (parts <= np.ceil(quota) + 1).all()
    assert (parts >= 0).all()


@settings(max_examples=200, deadline=None)
@given(
    pops=st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=40).filter(
        lambda p: sum(p) > 0
    ),
    share=st.floats(min_value=0.0, max_value=1.0),
)
def test_group_allocation_never_above_population(pops, share):
    group_total = round(share * sum(pops))
    parts = largest_remainder(np.asarray(pops, dtype=np.int64), group_total)
    assert int(parts.sum()) == group_total
    assert (parts <= np.asarray(pops)).all()


# ------------------------------------------------------------------------ real data


# Test inputs, not census figures: round illustrative totals for the nine 街道.
SHANGCHENG_TOTALS = {
    "湖滨街道": 43_215,
    "清波街道": 38_907,
    "小营街道": 71_334,
    "望江街道": 86_120,
    "南星街道": 104_551,
    "紫阳街道": 92_768,
    "凯旋街道": 97_003,
    "采荷街道": 88_419,
    "闸弄口街道": 101_876,
}


@pytest.fixture(scope="module")
def shangcheng_streets():
    admin = read_areas(shared_file("hangzhou_admin_osm.geojson"))
    streets = admin[admin["in_new_shangcheng_2021"].astype(bool).to_numpy()]
    assert sorted(streets["area"]) == sorted(SHANGCHENG_TOTALS)
    return streets


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("source", "unit"),
    [
        ("hangzhou_westlake_residential_osm.geojson", "building"),
        ("hangzhou_westlake_residential_osm.geojson", "compound"),
        ("westlake_10km.osm.pbf", "building"),
    ],
)
def test_shangcheng_totals_exact(shangcheng_streets, source, unit):
    res = residents_from_osm(
        shared_file(source),
        shangcheng_streets,
        SHANGCHENG_TOTALS,
        shares={"elderly": 0.26, "youth": 0.21},
        unit=unit,
    )
    assert res.groupby("area")["population"].sum().to_dict() == SHANGCHENG_TOTALS
    assert int(res["population"].sum()) == sum(SHANGCHENG_TOTALS.values())
    assert (res["elderly"] <= res["population"]).all()
    assert res["resident_id"].is_unique
    assert len(res) > (1000 if unit == "building" else 500)
    # every unit's point lies in the 街道 it was counted in
    joined = gpd.sjoin(
        res[["area", "geometry"]], shangcheng_streets[["area", "geometry"]], predicate="within"
    )
    assert (joined["area_left"] == joined["area_right"]).all()
    # people per 100 m2 of floor area is the same within a street (dasymetric)
    for area in ("湖滨街道", "南星街道"):
        sub = res[(res["area"] == area) & (res["floor_area_m2"] > 2000)]
        density = sub["population"] / sub["floor_area_m2"]
        assert density.max() / density.min() < 1.05
