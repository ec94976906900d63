"""Bad input: every malformed file gives one InputError naming the file, the row/column and a fix.

Each case writes a real file into ``tmp_path`` and calls the public reader a user would reach
(``read_table``, ``read_residents``, ...); the expected key words are matched in ``str(err)``,
the exact line a user sees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point, Polygon, box

from layers.errors import InputError
from layers.io import read_table
from layers.model import read_areas, read_candidates, read_facilities, read_residents
from layers.validate import check_overlap, closest, find_column

POINTS = gpd.GeoDataFrame(
    {"name": ["甲", "乙"]}, geometry=[Point(120.16, 30.25), Point(120.17, 30.26)], crs=4326
)


def csv(tmp: Path, text: str, name: str = "t.csv", encoding: str = "utf-8") -> Path:
    p = tmp / name
    p.write_bytes(text.encode(encoding))
    return p


def geojson(tmp: Path, gdf: gpd.GeoDataFrame, name: str = "t.geojson") -> Path:
    p = tmp / name
    gdf.to_file(p, driver="GeoJSON")
    return p


def gpkg_two_layers(tmp: Path) -> Path:
    p = tmp / "study.gpkg"
    POINTS.to_file(p, layer="canteen", driver="GPKG")
    POINTS.to_file(p, layer="elderly_station", driver="GPKG")
    return p


def shp_without(tmp: Path, part: str) -> Path:
    p = tmp / "s.shp"
    POINTS.to_file(p, driver="ESRI Shapefile", encoding="UTF-8")
    (tmp / f"s{part}").unlink()
    return p


def projected_shp_without_prj(tmp: Path) -> Path:
    p = tmp / "proj.shp"
    POINTS.to_crs(4549).to_file(p, driver="ESRI Shapefile", encoding="UTF-8")
    (tmp / "proj.prj").unlink()
    return p


def null_geometry(tmp: Path) -> Path:
    p = tmp / "nullgeom.geojson"
    p.write_text(
        '{"type":"FeatureCollection","features":['
        '{"type":"Feature","properties":{"name":"a"},"geometry":{"type":"Point","coordinates":[120.1,30.2]}},'
        '{"type":"Feature","properties":{"name":"b"},"geometry":null}]}',
        encoding="utf-8",
    )
    return p


def collapsed_polygon(tmp: Path) -> Path:
    # All vertices on one line: make_valid turns it into a line, so it is not repaired.
    flat = Polygon([(120.0, 30.0), (120.5, 30.5), (120.25, 30.25), (120.0, 30.0)])
    good = box(120.1, 30.2, 120.11, 30.21)
    return geojson(tmp, gpd.GeoDataFrame({"name": ["ok", "flat"]}, geometry=[good, flat], crs=4326))


def xlsx_two_sheets(tmp: Path) -> Path:
    p = tmp / "book.xlsx"
    with pd.ExcelWriter(p, engine="openpyxl") as xw:
        pd.DataFrame({"lon": [120.1], "lat": [30.2]}).to_excel(xw, sheet_name="一", index=False)
        pd.DataFrame({"lon": [120.2], "lat": [30.3]}).to_excel(xw, sheet_name="二", index=False)
    return p


def residents_csv(tmp: Path, rows: str, header: str = "name,lon,lat,population,elderly") -> Path:
    return csv(tmp, f"{header}\n{rows}", name="residents.csv")


Case = tuple[str, Callable[[Path], Any], list[str]]

CASES: list[Case] = [
    # ---- files
    ("missing file", lambda t: read_table(t / "nope.csv"), ["nope.csv", "file not found"]),
    (
        "misspelt file name",
        lambda t: (csv(t, "lon,lat\n1,2\n", "facilities.csv"), read_table(t / "facilites.csv")),
        ["file not found", "did you mean 'facilities.csv'"],
    ),
    (
        "empty file",
        lambda t: read_table(csv(t, "", "e.geojson")),
        ["e.geojson", "file is empty (0 bytes)", "export the layer again"],
    ),
    (
        "unsupported type",
        lambda t: read_table(csv(t, "x", "plan.dwg")),
        ["plan.dwg", "unsupported file type '.dwg'", "GeoPackage"],
    ),
    ("old excel", lambda t: read_table(csv(t, "x", "old.xls")), ["save an .xls workbook as .xlsx"]),
    (
        "folder instead of file",
        lambda t: ((t / "dir.gpkg").mkdir(), read_table(t / "dir.gpkg")),
        ["dir.gpkg", "is a folder, not a file"],
    ),
    (
        "not json",
        lambda t: read_table(csv(t, "name,lon\nx,1\n", "bad.geojson")),
        ["bad.geojson", "cannot be read as GeoJSON", "really is a GeoJSON"],
    ),
    (
        "not a workbook",
        lambda t: read_table(csv(t, "just text", "bad.xlsx")),
        ["bad.xlsx", "cannot be read as XLSX workbook"],
    ),
    (
        "not parquet",
        lambda t: read_table(csv(t, "just text", "bad.parquet")),
        ["bad.parquet", "cannot be read as GeoParquet"],
    ),
    (
        "shapefile without dbf",
        lambda t: read_table(shp_without(t, ".dbf")),
        ["s.shp", "Shapefile lacks its .dbf file", "copy s.dbf"],
    ),
    (
        "shapefile without shx",
        lambda t: read_table(shp_without(t, ".shx")),
        ["Shapefile lacks its .shx file"],
    ),
    (
        "projected shapefile without prj",
        lambda t: read_table(projected_shp_without_prj(t)),
        ["proj.shp", "declares no coordinate system", "not degrees", "EPSG:4549"],
    ),
    # ---- tables and coordinates
    ("header only", lambda t: read_table(csv(t, "lon,lat\n")), ["t.csv", "the layer has no rows"]),
    (
        "misspelt longitude header",
        lambda t: read_table(csv(t, "longtitude,latitude\n120.1,30.2\n")),
        ["column 'longitude'", "no 'longitude' column", "rename 'longtitude' to 'longitude'"],
    ),
    (
        "no coordinate columns",
        lambda t: read_table(csv(t, "name,a,b\nx,1,2\n")),
        ["no coordinate columns found", "经度/纬度", "'geometry' column"],
    ),
    (
        "coordinate with letters",
        lambda t: read_table(csv(t, "lon,lat\n120.1E,30.2\n")),
        ["row 1", "column 'lon'", "'120.1E' is not a number", "decimal degrees"],
    ),
    (
        "empty coordinate",
        lambda t: read_table(csv(t, "lon,lat\n120.1,30.2\n120.2,\n")),
        ["row 2", "column 'lat'", "coordinate is empty"],
    ),
    (
        "latitude out of range",
        lambda t: read_table(csv(t, "lon,lat\n120.1,30.2\n-100.0,95.0\n")),
        ["row 2", "column 'lat'", "latitude 95 is outside [-90, 90]"],
    ),
    (
        "swapped columns",
        lambda t: read_table(csv(t, "lon,lat\n30.25,120.16\n30.26,120.17\n")),
        ["row 1", "look swapped", "'lon' holds latitudes", "2 rows in all", "swap the two columns"],
    ),
    (
        "gcj02 declared outside China",
        lambda t: read_table(csv(t, "lon,lat\n120.1,30.2\n2.35,48.85\n"), coords="gcj02"),
        ["row 2", "outside China", "declared gcj02"],
    ),
    (
        "projected numbers without CRS",
        lambda t: read_table(csv(t, "x,y\n512345.6,3345678.9\n")),
        ["row 1", "look like projected metres", "coords=EPSG:4549"],
    ),
    (
        "bad WKT",
        lambda t: read_table(csv(t, 'name,geometry\na,"POINT (120.1 30.2)"\nb,"POINT (120.1"\n')),
        ["row 2", "column 'geometry'", "not valid WKT"],
    ),
    (
        "ragged CSV",
        lambda t: read_table(csv(t, "lon,lat\n120.1,30.2,5,6\n120.2\n")),
        ["t.csv", "not a well-formed CSV table"],
    ),
    (
        "undecodable bytes",
        lambda t: read_table(csv(t, "lon,lat\n", encoding="utf-8").parent / _raw(t)),
        ["neither UTF-8 nor GBK", "CSV UTF-8"],
    ),
    (
        "wrong declared encoding",
        lambda t: read_table(csv(t, "名称,lon,lat\n甲,120.1,30.2\n"), encoding="ascii"),
        ["cannot decode the text as ascii"],
    ),
    (
        "unknown coordinate system",
        lambda t: read_table(csv(t, "lon,lat\n120.1,30.2\n"), coords="gcj2"),
        ["t.csv", "unknown coordinate system 'gcj2'", "did you mean 'gcj02'"],
    ),
    (
        "gcj02 declared on a projected file",
        lambda t: read_table(_projected_gpkg(t), coords="gcj02"),
        ["proj.gpkg", "projected CRS", "coords=gcj02"],
    ),
    # ---- layers
    (
        "ambiguous GeoPackage",
        lambda t: read_facilities(gpkg_two_layers(t), "canteen"),
        ["study.gpkg", "holds 2 layers: canteen, elderly_station", "--layer-sheet canteen=NAME"],
    ),
    (
        "unknown GeoPackage layer",
        lambda t: read_table(gpkg_two_layers(t), layer="canten"),
        ["has no layer 'canten'", "did you mean 'canteen'"],
    ),
    (
        "ambiguous workbook",
        lambda t: read_residents(xlsx_two_sheets(t)),
        ["book.xlsx", "2 sheets with data: 一, 二", "--residents-layer NAME"],
    ),
    # ---- geometries
    (
        "null geometry",
        lambda t: read_table(null_geometry(t)),
        ["nullgeom.geojson", "row 2", "geometry is missing or empty"],
    ),
    (
        "polygon collapsed to a line",
        lambda t: read_table(collapsed_polygon(t)),
        ["row 2", "invalid geometry", "cannot be repaired", "Fix geometries"],
    ),
    (
        "points given as areas",
        lambda t: read_areas(geojson(t, POINTS.assign(area=["a", "b"]))),
        ["row 1", "area needs MultiPolygon or Polygon geometries, found Point"],
    ),
    (
        "no overlap with the study area",
        lambda t: check_overlap(
            read_table(geojson(t, POINTS)), box(121.0, 31.0, 121.1, 31.1), file="t.geojson"
        ),
        ["no feature lies in the study area", "GCJ-02/BD-09"],
    ),
    # ---- residents
    (
        "misspelt population column",
        lambda t: read_residents(
            residents_csv(t, "a,120.1,30.2,10,1\n", "name,lon,lat,populaton,elderly")
        ),
        [
            "residents.csv",
            "missing column 'population'",
            "rename 'populaton' to 'population'",
            "--residents-columns population=populaton",
        ],
    ),
    (
        "negative population",
        lambda t: read_residents(residents_csv(t, "a,120.1,30.2,10,1\nb,120.2,30.3,-5,0\n")),
        ["row 2", "column 'population'", "population is negative (-5)"],
    ),
    (
        "empty population",
        lambda t: read_residents(residents_csv(t, "a,120.1,30.2,,1\n")),
        ["row 1", "population is empty", "0 if nobody"],
    ),
    (
        "fractional population",
        lambda t: read_residents(residents_csv(t, "a,120.1,30.2,12.5,1\n")),
        ["row 1", "population is not a whole number (12.5)"],
    ),
    (
        "population as text",
        lambda t: read_residents(residents_csv(t, "a,120.1,30.2,约300,1\n")),
        ["row 1", "population '约300' is not a number"],
    ),
    (
        "group above population",
        lambda t: read_residents(
            residents_csv(
                t, "a,120.1,30.2,100,20\nb,120.2,30.3,100,120\n", "名称,经度,纬度,人口,60岁以上"
            )
        ),
        ["row 2", "column '60岁以上'", "60岁以上 (120) exceeds 人口 (100)"],
    ),
    (
        "named group column missing",
        lambda t: read_residents(
            residents_csv(t, "a,120.1,30.2,100,20\n"), group_cols={"elderly": "老年人口数"}
        ),
        [
            "missing column '老年人口数'",
            "check the column name given with --residents-columns elderly=老年人口数",
        ],
    ),
    # ---- facilities, candidates, areas
    (
        "duplicate facility ids",
        lambda t: read_facilities(
            csv(t, "id,lon,lat\nF1,120.1,30.2\nF2,120.2,30.3\nF1,120.3,30.4\n"), "canteen"
        ),
        ["row 3", "duplicate id 'F1' in rows 1 and 3", "unique"],
    ),
    (
        "unknown facility kind",
        lambda t: read_facilities(csv(t, "lon,lat\n120.1,30.2\n"), "canten"),
        ["unknown layer kind 'canten'", "did you mean 'canteen'", "layer table"],
    ),
    (
        "negative capacity",
        lambda t: read_facilities(
            csv(t, "床位数,lon,lat\n10,120.1,30.2\n-3,120.2,30.3\n"), "elderly_station"
        ),
        ["row 2", "column '床位数'", "capacity is negative (-3)"],
    ),
    (
        "capacity as text",
        lambda t: read_candidates(csv(t, "capacity,lon,lat\nmany,120.1,30.2\n")),
        ["row 1", "capacity 'many' is not a number"],
    ),
    (
        "duplicate area names",
        lambda t: read_areas(
            geojson(
                t,
                gpd.GeoDataFrame(
                    {"街道": ["湖滨街道", "湖滨街道"]},
                    geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
                    crs=4326,
                ),
            )
        ),
        ["row 2", "duplicate area name '湖滨街道' in rows 1 and 2"],
    ),
    (
        "empty area name",
        lambda t: read_areas(
            geojson(
                t,
                gpd.GeoDataFrame(
                    {"name": ["湖滨街道", None]},
                    geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
                    crs=4326,
                ),
            )
        ),
        ["row 2", "area name is empty"],
    ),
]


def _raw(tmp: Path) -> str:
    (tmp / "raw.csv").write_bytes(b"lon,lat\n\xff\xfe\xff,1\n")
    return "raw.csv"


def _projected_gpkg(tmp: Path) -> Path:
    p = tmp / "proj.gpkg"
    POINTS.to_crs(32651).to_file(p, driver="GPKG")
    return p


def test_at_least_25_distinct_cases():
    assert len({name for name, _, _ in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize(("name", "call", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_message(tmp_path, name, call, expected):
    with pytest.raises(InputError) as info:
        call(tmp_path)
    text = str(info.value)
    assert "\n" not in text
    for words in expected:
        assert words in text, f"{name}: {words!r} not in {text!r}"
    assert "fix:" in text  # every message says what to do


def test_bowtie_is_repaired_with_a_warning(tmp_path, caplog):
    bowtie = Polygon([(120.1, 30.2), (120.2, 30.3), (120.2, 30.2), (120.1, 30.3), (120.1, 30.2)])
    p = geojson(tmp_path, gpd.GeoDataFrame({"area": ["8字形"]}, geometry=[bowtie], crs=4326))
    with caplog.at_level(logging.WARNING, logger="layers.validate"):
        areas = read_areas(p)
    assert areas.geometry[0].is_valid and areas.geometry[0].area > 0
    assert "repaired 1 invalid geometry with shapely.make_valid (rows 1)" in caplog.text


def test_overlap_share_and_partial_warning(tmp_path, caplog):
    gdf = read_table(geojson(tmp_path, POINTS))
    with caplog.at_level(logging.WARNING, logger="layers.validate"):
        share = check_overlap(gdf, box(120.15, 30.24, 120.165, 30.255), file="t.geojson")
    assert share == 0.5
    assert "1 of 2 features lie outside the study area" in caplog.text


def test_find_column_aliases_case_and_spaces():
    assert find_column([" Population ", "x"], "population") == " Population "
    assert find_column(["人口", "x"], "population", ("人口",)) == "人口"
    assert find_column(["x"], "population", required=False) is None
    assert closest("Canten", ["canteen", "youth_hostel"]) == "canteen"


def test_inputs_are_not_modified_by_repair(tmp_path):
    bowtie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    gdf = gpd.GeoDataFrame({"area": ["x"]}, geometry=[bowtie], crs=4326)
    read_areas(gdf)
    assert not gdf.geometry[0].is_valid


def test_shapefile_missing_prj_is_not_an_error_in_degrees(tmp_path):
    p = tmp_path / "deg.shp"
    pyogrio.write_dataframe(POINTS, p, encoding="UTF-8")
    (tmp_path / "deg.prj").unlink()
    assert len(read_table(p)) == 2
