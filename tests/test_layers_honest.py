"""Issue 11: no input changes the numbers without a word (layers readers).

Each test writes a real file (or builds a frame) as a user would hand it over and checks that
the reader either gives the numbers a careful analyst would get by hand, or stops with one
line naming the file, the row and the fix.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import MultiPoint, Point, Polygon, box

from layers.crs import gcj02_to_wgs84
from layers.errors import InputError
from layers.io import read_table
from layers.model import (
    area_overlaps,
    read_areas,
    read_candidates,
    read_facilities,
    read_residents,
)
from layers.validate import MAX_PEOPLE_PER_FEATURE, check_overlap

from .conftest import shared_file

LON = np.array([120.1631, 120.1702, 120.1843])
LAT = np.array([30.2571, 30.2419, 30.2334])


def residents() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["湖滨一小区", "清波小区", "望江小区"], "population": [1200, 800, 35]},
        geometry=shapely.points(LON, LAT),
        crs=4326,
    )


def xy(gdf: gpd.GeoDataFrame) -> np.ndarray:
    return shapely.get_coordinates(np.asarray(gdf.geometry.array))


# ------------------------------------------------------------------- 1. bare --coords


def _write(gdf: gpd.GeoDataFrame, path: Path, crs: int) -> Path:
    gdf.to_crs(crs).to_file(path)
    return path


@pytest.mark.parametrize(
    ("name", "crs"),
    [("r.geojson", 4326), ("r.gpkg", 4326), ("r.gpkg", 4490), ("r.shp", 4326), ("r.shp", 4490)],
)
def test_bare_coords_leaves_files_that_declare_a_crs(tmp_path, caplog, name, crs):
    path = _write(residents(), tmp_path / name, crs)
    with caplog.at_level(logging.INFO, logger="layers"):
        back = read_residents(path, default_coords="gcj02")
    assert np.allclose(xy(back), xy(residents()), atol=1e-7)  # not moved by ~500 m
    assert "not applied" in caplog.text


def test_bare_coords_applies_to_csv_and_to_vector_files_without_crs(tmp_path):
    csv = tmp_path / "amap.csv"
    csv.write_text(
        "name,lng,lat,population\n"
        + "".join(f"p{i},{x},{y},10\n" for i, (x, y) in enumerate(zip(LON, LAT, strict=True))),
        encoding="utf-8",
    )
    shp = _write(residents(), tmp_path / "noprj.shp", 4326)
    (tmp_path / "noprj.prj").unlink()
    want = np.column_stack(gcj02_to_wgs84(LON, LAT))
    for path in (csv, shp):
        back = read_residents(path, default_coords="gcj02")
        assert np.allclose(xy(back), want, atol=1e-9)
    assert read_table(csv, default_coords="gcj02").attrs["coords_from"] == "default_coords"


def test_named_coords_overrides_a_declared_crs_with_a_warning(tmp_path, caplog):
    path = _write(residents(), tmp_path / "amap.geojson", 4326)
    with caplog.at_level(logging.WARNING, logger="layers"):
        back = read_residents(path, coords="gcj02", default_coords="wgs84")
    assert np.allclose(xy(back), np.column_stack(gcj02_to_wgs84(LON, LAT)), atol=1e-9)
    assert "amap.geojson declares EPSG:4326; treated as GCJ-02" in caplog.text
    assert read_table(path, coords="gcj02").attrs["coords_from"] == "coords"


def test_bare_coords_and_frames_in_memory(tmp_path):
    labelled = residents()
    unlabelled = residents().set_crs(None, allow_override=True)
    want = np.column_stack(gcj02_to_wgs84(LON, LAT))
    assert np.allclose(xy(read_residents(labelled, default_coords="gcj02")), xy(labelled))
    assert np.allclose(xy(read_residents(unlabelled, default_coords="gcj02")), want, atol=1e-9)
    assert np.allclose(xy(read_residents(labelled, coords="gcj02")), want, atol=1e-9)


def test_every_reader_takes_default_coords(tmp_path):
    fac = _write(residents(), tmp_path / "f.geojson", 4326)
    area = gpd.GeoDataFrame(
        {"name": ["湖滨街道"]}, geometry=[box(120.1, 30.2, 120.2, 30.3)], crs=4326
    )
    area_path = _write(area, tmp_path / "a.geojson", 4326)
    got = [
        read_facilities(fac, "canteen", default_coords="gcj02"),
        read_candidates(fac, default_coords="gcj02"),
    ]
    for gdf in got:
        assert np.allclose(xy(gdf), xy(residents()), atol=1e-7)
    areas = read_areas(area_path, default_coords="gcj02")
    assert areas.geometry[0].equals_exact(box(120.1, 30.2, 120.2, 30.3), 1e-7)


# -------------------------------------------------------------------- 2. MultiPoint


def _stations() -> gpd.GeoDataFrame:
    ten = MultiPoint([(120.15 + 0.002 * k, 30.25) for k in range(10)])
    return gpd.GeoDataFrame(
        {"id": ["S", "T"], "name": ["养老站点群", "单站"], "capacity": [100.0, 20.0]},
        geometry=[ten, MultiPoint([(120.17, 30.26)])],
        crs=4326,
    )


def test_multipoint_facilities_count_once_per_point(tmp_path, caplog):
    path = tmp_path / "stations.geojson"
    _stations().to_file(path)
    with caplog.at_level(logging.WARNING, logger="layers.model"):
        fac = read_facilities(path, "elderly_station")
    assert len(fac) == 11
    assert fac["facility_id"].tolist() == [f"S-{k}" for k in range(1, 11)] + ["T"]
    assert set(fac["name"][:10]) == {"养老站点群"}
    assert (fac.geom_type == "Point").all()
    assert fac.geometry[9].equals(Point(120.15 + 0.018, 30.25))
    assert fac["capacity"].sum() == pytest.approx(120.0)  # split, not multiplied
    assert "hold 11 points" in caplog.text
    assert "MultiPoint" in caplog.text


def test_multipoint_candidates_are_exploded():
    cand = read_candidates(_stations())
    assert len(cand) == 11
    assert cand["site_id"].is_unique


def test_polygon_facility_uses_a_point_inside_and_says_so(caplog):
    ell = Polygon([(0, 0), (10, 0), (10, 1), (1, 1), (1, 10), (0, 10)])
    ell = shapely.affinity.translate(
        shapely.affinity.scale(ell, 1e-4, 1e-4, origin=(0, 0)), 120.16, 30.25
    )
    gdf = gpd.GeoDataFrame({"name": ["L形楼"]}, geometry=[ell], crs=4326)
    with caplog.at_level(logging.WARNING, logger="layers.model"):
        fac = read_facilities(gdf, "canteen")
    assert ell.contains(fac.geometry[0])
    assert not ell.contains(ell.centroid)  # the centroid would have been outside
    assert "representative point" in caplog.text


# ---------------------------------------------------------------------- 3. encodings


def _names_shp(tmp: Path, encoding: str, name: str = "s.shp") -> Path:
    path = tmp / name
    pyogrio.write_dataframe(residents(), path, encoding=encoding)
    return path


def test_unknown_cpg_is_an_error_naming_it(tmp_path):
    path = _names_shp(tmp_path, "UTF-8")
    (tmp_path / "s.cpg").write_text("UTF-9")
    with pytest.raises(InputError) as err:
        read_table(path)
    text = str(err.value)
    assert "s.cpg names an unknown text encoding 'UTF-9'" in text
    assert "write UTF-8 or GBK in s.cpg" in text


@pytest.mark.parametrize(
    ("written", "cpg"), [("UTF-8", "65001"), ("GBK", "ANSI 936"), ("GBK", "936")]
)
def test_cpg_code_pages_are_understood(tmp_path, written, cpg):
    path = _names_shp(tmp_path, written)
    (tmp_path / "s.cpg").write_text(cpg)
    assert read_table(path)["name"].tolist() == residents()["name"].tolist()


def _gbk_row(path: Path, text: str) -> None:
    raw = path.read_bytes()
    utf, gbk = text.encode("utf-8"), text.encode("gbk")
    assert raw.count(utf) == 1
    path.write_bytes(raw.replace(utf, gbk + b" " * (len(utf) - len(gbk))))


@pytest.mark.parametrize("keep_cpg", [True, False])
def test_shapefile_utf8_with_one_gbk_record(tmp_path, keep_cpg):
    path = _names_shp(tmp_path, "UTF-8")
    _gbk_row(tmp_path / "s.dbf", "清波小区")
    if not keep_cpg:
        (tmp_path / "s.cpg").unlink()
    with pytest.raises(InputError) as err:
        read_table(path)
    assert "row 2" in str(err.value)
    assert "UTF-8" in str(err.value)


def test_csv_utf8_with_one_gbk_row_names_the_row(tmp_path):
    path = tmp_path / "mixed.csv"
    lines = ["name,lon,lat,population", "湖滨一小区,120.16,30.25,10", "清波小区,120.17,30.24,5"]
    lines += [f"望江{k}号,120.18,30.23,1" for k in range(3)]
    raw = "\n".join(lines).encode("utf-8").replace("清波小区".encode(), "清波小区".encode("gbk"))
    path.write_bytes(raw)
    with pytest.raises(InputError) as err:
        read_table(path)
    text = str(err.value)
    assert "mixed.csv, row 2:" in text
    assert "re-save the file as UTF-8" in text


def test_csv_wholly_gbk_is_read_and_logged(tmp_path, caplog):
    path = tmp_path / "gbk.csv"
    path.write_bytes("name,lon,lat\n湖滨一小区,120.16,30.25\n清波,120.17,30.24\n".encode("gbk"))
    with caplog.at_level(logging.INFO, logger="layers.io"):
        back = read_table(path)
    assert back["name"].tolist() == ["湖滨一小区", "清波"]
    assert "decoded as GB18030" in caplog.text


# -------------------------------------------------------------------------- 4. counts


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("1e12", "not plausible for one feature"),
        (str(MAX_PEOPLE_PER_FEATURE + 1), "not plausible for one feature"),
        ("inf", "infinite"),
        ("12.5", "not a whole number"),
    ],
)
def test_implausible_population_is_rejected_with_row_and_column(tmp_path, value, words):
    path = tmp_path / "r.csv"
    path.write_text(
        f"name,lon,lat,人口\na,120.16,30.25,10\nb,120.17,30.24,{value}\n", encoding="utf-8"
    )
    with pytest.raises(InputError) as err:
        read_residents(path)
    text = str(err.value)
    assert "r.csv, row 2, column '人口'" in text
    assert words in text


def test_plausible_large_population_and_infinite_group_or_capacity(tmp_path):
    gdf = residents()
    gdf["population"] = [MAX_PEOPLE_PER_FEATURE, 1, 1]
    assert read_residents(gdf)["population"].max() == MAX_PEOPLE_PER_FEATURE
    gdf["elderly"] = [1.0, np.inf, 0.0]
    with pytest.raises(InputError, match=r"row 2, column 'elderly'.*infinite"):
        read_residents(gdf)
    fac = residents().assign(capacity=[1.0, np.inf, np.nan])
    with pytest.raises(InputError, match=r"row 2, column 'capacity'.*infinite"):
        read_facilities(fac, "canteen")


# ------------------------------------------------------------------------ 5. overlaps


def test_overlapping_areas_are_reported_not_refused(tmp_path, caplog):
    gdf = gpd.GeoDataFrame(
        {"name": ["湖滨街道", "清波街道", "望江街道"]},
        geometry=[
            box(120.15, 30.25, 120.17, 30.27),
            box(120.16, 30.25, 120.18, 30.27),  # half of 湖滨 again
            box(120.18 - 1e-6, 30.25, 120.20, 30.27),  # a sliver along 清波's edge
        ],
        crs=4326,
    )
    path = tmp_path / "streets.geojson"
    gdf.to_file(path)
    with caplog.at_level(logging.WARNING, logger="layers.model"):
        areas = read_areas(path)
    assert len(areas) == 3
    pairs = areas.attrs["overlaps"]
    assert [(a, b) for a, b, _ in pairs] == [("湖滨街道", "清波街道")]
    assert pairs[0][2] == pytest.approx(0.5, abs=0.01)
    assert area_overlaps(areas) == pairs
    assert "'湖滨街道' and '清波街道' overlap (50.0% of the smaller one)" in caplog.text
    assert "望江" not in caplog.text


def test_community_overlaps_name_their_street():
    gdf = gpd.GeoDataFrame(
        {"name": ["一社区", "一社区"], "所属街道": ["湖滨街道", "清波街道"]},
        geometry=[box(120.15, 30.25, 120.16, 30.26), box(120.15, 30.25, 120.16, 30.26)],
        crs=4326,
    )
    pairs = read_areas(gdf, level="community").attrs["overlaps"]
    assert [(a, b) for a, b, _ in pairs] == [("湖滨街道 一社区", "清波街道 一社区")]
    assert pairs[0][2] == pytest.approx(1.0)


# ------------------------------------------------------------ 6. areas lying elsewhere


def test_check_overlap_refuses_a_polygon_layer_elsewhere():
    extent = box(120.10, 30.20, 120.25, 30.30)
    beijing = gpd.GeoDataFrame(
        {"area": ["东华门街道"]}, geometry=[box(116.39, 39.90, 116.42, 39.93)], crs=4326
    )
    with pytest.raises(InputError) as err:
        check_overlap(beijing, extent, file="streets.gpkg")
    assert "streets.gpkg: no feature lies in the study area" in str(err.value)
    touching = gpd.GeoDataFrame(
        {"area": ["湖滨街道"]}, geometry=[box(120.24, 30.29, 120.30, 30.35)], crs=4326
    )
    assert check_overlap(touching, extent, file="streets.gpkg") == 1.0


# ------------------------------------------------------------------------- real data


def test_real_osm_pois_are_not_shifted_by_a_bare_coords():
    path = shared_file("hangzhou_westlake_pois_osm.geojson")
    plain = read_facilities(path, "canteen", id_col="osm_id")
    bare = read_facilities(path, "canteen", id_col="osm_id", default_coords="gcj02")
    named = read_facilities(path, "canteen", id_col="osm_id", coords="gcj02")
    assert np.array_equal(xy(plain), xy(bare))
    moved_m = plain.to_crs(32651).distance(named.to_crs(32651))
    assert moved_m.between(300, 700).all()  # what the bare value used to do to every POI


def test_real_osm_streets_have_no_overlaps_but_a_shifted_copy_does():
    admin = gpd.read_file(shared_file("hangzhou_admin_osm.geojson"))
    streets = admin[admin["admin_level"].astype(str) == "8"].reset_index(drop=True)
    assert read_areas(streets).attrs["overlaps"] == []
    first = streets.iloc[[0]].copy()
    first["name"] = "复制的街道"
    first["geometry"] = first.geometry.translate(xoff=0.002)  # ~200 m east: mostly itself
    pairs = read_areas(pd.concat([streets, first], ignore_index=True)).attrs["overlaps"]
    assert ("复制的街道" in pairs[0][:2]) and streets["name"][0] in pairs[0][:2]
    assert 0.5 < pairs[0][2] < 1.0
