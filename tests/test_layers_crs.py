"""Coordinate systems: published reference pairs, exact inverses, out-of-China identity.

Reference pairs (copied as numbers only, with their source):

* eviltransform (github.com/googollee/eviltransform), ``python/test.py`` / ``go/transform_test.go``:
  three WGS84 -> GCJ-02 pairs (Shanghai, Shenzhen, Beijing).  Its tests require the forward
  formula to 1e-6 degrees and its exact inverse to 0.5 m.  The two BD-09 pairs of the same file
  are *not* used: they were produced by an old version that used ``pi`` where Baidu's formula has
  ``x_pi = pi * 3000 / 180`` (visible in ``python/eviltransform.py`` at commit 40db2ed), and they
  differ from the published formula by 10-41 m.
* coordtransform (github.com/wandergis/coordtransform), ``README.md`` "result" block: all four
  conversions of (116.404, 39.915).  Its inverses (BD-09 -> GCJ-02, GCJ-02 -> WGS84) are the
  one-step approximations, so ours, which are exact, differ from them by a few centimetres.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS, Geod
from shapely.geometry import LineString, Point, Polygon

from layers.crs import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china,
    parse_coord_system,
    system_crs,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from layers.errors import InputError

GEOD = Geod(ellps="WGS84")

# (wgs_lon, wgs_lat, gcj_lon, gcj_lat) from eviltransform's test suite.
EVILTRANSFORM_PAIRS = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]
# coordtransform README, input (116.404, 39.915) for every function.
CT_IN = (116.404, 39.915)
CT_WGS_TO_GCJ = (116.41024449916938, 39.91640428150164)
CT_GCJ_TO_BD = (116.41036949371029, 39.92133699351021)
CT_BD_TO_GCJ_APPROX = (116.39762729119315, 39.90865673957631)
CT_GCJ_TO_WGS_APPROX = (116.39775550083061, 39.91359571849836)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), EVILTRANSFORM_PAIRS)
def test_wgs_to_gcj_matches_eviltransform(wlon, wlat, glon, glat):
    x, y = wgs84_to_gcj02(wlon, wlat)
    assert float(x) == pytest.approx(glon, abs=1e-9)
    assert float(y) == pytest.approx(glat, abs=1e-9)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), EVILTRANSFORM_PAIRS)
def test_gcj_to_wgs_is_exact_on_eviltransform_pairs(wlon, wlat, glon, glat):
    x, y = gcj02_to_wgs84(glon, glat)
    assert metres(x, y, wlon, wlat) < 0.01  # eviltransform's own bar is 0.5 m


def test_coordtransform_readme_forward_values():
    x, y = wgs84_to_gcj02(*CT_IN)
    assert (float(x), float(y)) == pytest.approx(CT_WGS_TO_GCJ, abs=1e-10)
    x, y = gcj02_to_bd09(*CT_IN)
    assert (float(x), float(y)) == pytest.approx(CT_GCJ_TO_BD, abs=1e-10)


def test_coordtransform_readme_inverse_values_within_approximation_error():
    # Their inverses are one-step approximations; ours are exact, so a few cm apart at most.
    x, y = bd09_to_gcj02(*CT_IN)
    assert 0 < metres(x, y, *CT_BD_TO_GCJ_APPROX) < 0.5
    x, y = gcj02_to_wgs84(*CT_IN)
    assert 0 < metres(x, y, *CT_GCJ_TO_WGS_APPROX) < 0.5
    # ...and ours really invert the forward formulas.
    assert metres(*gcj02_to_bd09(*bd09_to_gcj02(*CT_IN)), *CT_IN) < 1e-3
    assert metres(*wgs84_to_gcj02(*gcj02_to_wgs84(*CT_IN)), *CT_IN) < 1e-3


def test_gcj_offset_in_hangzhou_is_hundreds_of_metres():
    # West Lake: the GCJ-02 shift is what puts WGS84 points ~500 m off on Amap.
    x, y = wgs84_to_gcj02(120.1551, 30.2741)
    assert 300 < metres(x, y, 120.1551, 30.2741) < 700


CHINA_LON = st.floats(min_value=73.0, max_value=135.0)
CHINA_LAT = st.floats(min_value=18.0, max_value=53.5)


@settings(max_examples=300, deadline=None)
@given(lon=CHINA_LON, lat=CHINA_LAT)
def test_gcj_round_trip_under_a_centimetre(lon, lat):
    gx, gy = wgs84_to_gcj02(lon, lat)
    wx, wy = gcj02_to_wgs84(gx, gy)
    assert metres(wx, wy, lon, lat) < 0.01
    gx2, gy2 = wgs84_to_gcj02(wx, wy)
    assert metres(gx2, gy2, gx, gy) < 0.01


@settings(max_examples=300, deadline=None)
@given(lon=CHINA_LON, lat=CHINA_LAT)
def test_bd_round_trip_under_a_centimetre(lon, lat):
    bx, by = wgs84_to_bd09(lon, lat)
    wx, wy = bd09_to_wgs84(bx, by)
    assert metres(wx, wy, lon, lat) < 0.01
    gx, gy = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert metres(gx, gy, lon, lat) < 0.01


def test_vectorised_matches_scalar():
    rng = np.random.default_rng(3)
    lon = rng.uniform(100, 125, 500)
    lat = rng.uniform(20, 45, 500)
    vx, vy = gcj02_to_wgs84(lon, lat)
    for i in (0, 17, 499):
        sx, sy = gcj02_to_wgs84(lon[i], lat[i])
        assert (float(sx), float(sy)) == (vx[i], vy[i])
    assert vx.shape == (500,)


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(2.35, 48.85), (-74.0, 40.7), (151.2, -33.9), (139.7, 35.7), (100.5, 0.5), (60.0, 40.0)],
)
def test_outside_china_is_identity(lon, lat):
    for fn in (wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09):
        x, y = fn(lon, lat)
        assert (float(x), float(y)) == (lon, lat)


def test_in_china_box_and_nan():
    assert in_china([120.1, 2.35, np.nan], [30.2, 48.8, 30.0]).tolist() == [True, False, False]


def test_inputs_not_modified():
    lon = np.array([120.1, 120.2])
    lat = np.array([30.2, 30.3])
    gcj02_to_wgs84(lon, lat)
    assert lon.tolist() == [120.1, 120.2]
    assert lat.tolist() == [30.2, 30.3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WGS84", "wgs84"),
        ("wgs-84", "wgs84"),
        ("EPSG:4326", "wgs84"),
        ("GCJ-02", "gcj02"),
        ("高德", "gcj02"),
        ("bd-09", "bd09"),
        ("百度", "bd09"),
        ("CGCS2000", "cgcs2000"),
        ("4490", "cgcs2000"),
        (4490, "cgcs2000"),
    ],
)
def test_parse_names(text, expected):
    assert parse_coord_system(text) == expected


def test_parse_projected_epsg_and_wkt():
    crs = parse_coord_system("EPSG:4549")  # CGCS2000 / 3-degree Gauss-Kruger CM 120E
    assert isinstance(crs, CRS) and crs.to_epsg() == 4549
    wkt = CRS.from_epsg(32651).to_wkt()
    assert parse_coord_system(wkt).to_epsg() == 32651
    assert parse_coord_system(CRS.from_epsg(4326)) == "wgs84"


@pytest.mark.parametrize(
    ("text", "suggestion"), [("gcj2", "gcj02"), ("wgs48", "wgs84"), ("bd9", "bd09")]
)
def test_parse_unknown_suggests_closest(text, suggestion):
    pattern = rf"unknown coordinate system '{text}'.*did you mean '{suggestion}'"
    with pytest.raises(InputError, match=pattern):
        parse_coord_system(text)


def _sample_gdf() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["点", "线", "面"]},
        geometry=[
            Point(120.16, 30.25),
            LineString([(120.15, 30.25), (120.17, 30.26)]),
            Polygon([(120.15, 30.24), (120.16, 30.24), (120.16, 30.25), (120.15, 30.24)]),
        ],
        crs=4326,
    )


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_geodataframe_round_trip_all_geometry_types(system):
    gdf = _sample_gdf()
    shifted = from_wgs84(gdf, system)
    assert shifted.crs.to_epsg() == 4326
    # really moved, by a few hundred metres
    d = metres(shifted.geometry[0].x, shifted.geometry[0].y, 120.16, 30.25)
    assert 200 < d < 1500
    back = to_wgs84(shifted, system)
    for a, b in zip(back.geometry, gdf.geometry, strict=True):
        assert a.geom_type == b.geom_type
        ca = np.asarray(a.exterior.coords if a.geom_type == "Polygon" else a.coords)
        cb = np.asarray(b.exterior.coords if b.geom_type == "Polygon" else b.coords)
        assert np.abs(ca - cb).max() < 1e-9
    assert gdf.geometry[0].x == 120.16  # input untouched
    assert back["name"].tolist() == ["点", "线", "面"]


def test_projected_and_cgcs2000_through_pyproj():
    gdf = _sample_gdf()
    projected = from_wgs84(gdf, "EPSG:4549")
    assert projected.crs.to_epsg() == 4549
    assert 400_000 < projected.geometry[0].x < 600_000  # Gauss-Kruger false easting
    back = to_wgs84(projected)
    assert back.geometry[0].distance(Point(120.16, 30.25)) < 1e-8
    cg = from_wgs84(gdf, "cgcs2000")
    assert cg.crs.to_epsg() == 4490
    assert cg.geometry[0].distance(Point(120.16, 30.25)) < 1e-5  # < 1 m


def test_to_wgs84_override_relabels_file_crs():
    # A file from Amap labelled EPSG:4326 but holding GCJ-02: the declaration wins.
    gdf = _sample_gdf()
    out = to_wgs84(gdf, "gcj02")
    assert out.geometry[0].distance(gdf.geometry[0]) > 1e-3


def test_to_wgs84_rejects_offset_on_projected_layer():
    projected = from_wgs84(_sample_gdf(), 32651)
    with pytest.raises(InputError, match="projected CRS"):
        to_wgs84(projected, "gcj02")


def test_xy_pairs():
    x, y = to_wgs84(([120.16], [30.25]), "gcj02")
    gx, gy = from_wgs84((x, y), "gcj02")
    assert float(metres(gx, gy, [120.16], [30.25])[0]) < 0.01
    ex, ey = from_wgs84(([120.16], [30.25]), 32651)
    assert ex[0] > 100_000
    assert 3_000_000 < ey[0] < 4_000_000
    assert system_crs("bd09").to_epsg() == 4326


def test_fixes_name_real_flags_not_python_keywords():
    import re

    fixes = []
    for call in (
        lambda: parse_coord_system("wsg84"),
        lambda: parse_coord_system(""),
        lambda: to_wgs84(_sample_gdf().set_crs(None, allow_override=True)),
    ):
        with pytest.raises(InputError) as err:
            call()
        fixes.append(err.value.fix or "")
    assert all("--coords" in f for f in fixes), fixes
    assert not [f for f in fixes if re.search(r"\b[a-z_]+=\.\.\.|\bsystem=", f)], fixes


def test_a_pair_without_its_system_is_a_programming_error():
    """Coordinates handed over without their system are the caller's bug, not the user's."""
    with pytest.raises(ValueError, match="coordinate system of an") as err:
        to_wgs84((np.array([1.0]), np.array([2.0])))
    assert type(err.value) is ValueError
