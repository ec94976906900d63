"""Readers and writers: round trips in every format and coordinate system, encodings, layers."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from layers.crs import from_wgs84
from layers.errors import InputError
from layers.io import list_layers, read_table, shapefile_field_names, write_table
from layers.model import (
    read_areas,
    read_candidates,
    read_facilities,
    read_residents,
    resident_points,
)
from layers.spec import load_layer_table, spec_from_mapping

FORMATS = ["geojson", "gpkg", "shp", "parquet", "csv", "xlsx"]


def facilities() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "facility_id": ["F001", "F002", "F003"],
            "名称": ["湖滨街道幸福食堂", "清波邻里中心", "望江·康养驿站"],
            "人口": [1200, 0, 35],
            "share": [0.25, 0.5, 0.125],
        },
        geometry=[Point(120.1631, 30.2571), Point(120.1702, 30.2419), Point(120.1843, 30.2334)],
        crs=4326,
    )


def areas() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"area": ["湖滨街道", "清波街道"], "level": ["street", "street"]},
        geometry=[
            Polygon([(120.15, 30.25), (120.17, 30.25), (120.17, 30.27), (120.15, 30.27)]),
            MultiPolygon(
                [
                    Polygon([(120.15, 30.23), (120.16, 30.23), (120.16, 30.24), (120.15, 30.23)]),
                    Polygon([(120.17, 30.23), (120.18, 30.23), (120.18, 30.24), (120.17, 30.23)]),
                ]
            ),
        ],
        crs=4326,
    )


def assert_same(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, *, tol_deg: float = 1e-9) -> None:
    """Same attribute values (dtypes may widen) and geometries within ``tol_deg``."""
    cols = [c for c in a.columns if c != a.geometry.name]
    assert list(b.columns.drop(b.geometry.name)) == cols
    for c in cols:
        va, vb = a[c].tolist(), b[c].tolist()
        if pd.api.types.is_numeric_dtype(a[c]):
            np.testing.assert_allclose(np.asarray(vb, float), np.asarray(va, float), rtol=1e-12)
        else:
            assert vb == va, c
    assert b.crs.to_epsg() == 4326
    for ga, gb in zip(a.geometry, b.geometry, strict=True):
        assert shapely.get_type_id(ga) % 3 == shapely.get_type_id(gb) % 3 or ga.geom_type in (
            gb.geom_type,
            gb.geom_type.replace("Multi", ""),
        )
        assert shapely.hausdorff_distance(ga, gb) < tol_deg


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_points_wgs84(tmp_path, fmt):
    gdf = facilities()
    path = tmp_path / f"fac.{fmt}"
    res = write_table(gdf, path)
    assert res.path == path and path.exists()
    back = read_table(path)
    assert_same(gdf, back)
    if fmt in ("geojson", "gpkg", "parquet", "csv"):  # these keep integer types exactly
        assert back["人口"].tolist() == [1200, 0, 35]
        assert pd.api.types.is_integer_dtype(back["人口"])
    assert back.attrs["source"] == str(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_polygons_wgs84(tmp_path, fmt):
    gdf = areas()
    path = tmp_path / f"areas.{fmt}"
    write_table(gdf, path)
    back = read_table(path)
    assert_same(gdf, back)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("crs", ["gcj02", "bd09", "cgcs2000", "EPSG:4549", "EPSG:32651"])
def test_round_trip_coordinate_systems(tmp_path, fmt, crs):
    gdf = facilities()
    path = tmp_path / f"fac.{fmt}"
    res = write_table(gdf, path, crs=crs)
    # the file really holds the requested coordinates
    raw = pyogrio.read_dataframe(path) if fmt in ("geojson", "gpkg", "shp") else None
    if raw is not None:
        expected = from_wgs84(gdf, crs)
        assert shapely.hausdorff_distance(raw.geometry[0], expected.geometry[0]) < 1e-6
    coords = crs if fmt in ("csv", "xlsx") or crs in ("gcj02", "bd09") else None
    back = read_table(path, coords=coords)
    tol = 1e-7 if crs.startswith("EPSG") or crs == "cgcs2000" else 1e-9
    assert_same(gdf, back, tol_deg=tol)
    assert res.crs == crs


def test_projected_csv_uses_x_y(tmp_path):
    path = tmp_path / "p.csv"
    write_table(facilities(), path, crs="EPSG:4549")
    head = path.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert head[-2:] == ["x", "y"]
    with pytest.raises(InputError, match="look like projected metres"):
        read_table(path)


def test_mixed_geometries_to_csv_as_wkt(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"n": [1, 2]},
        geometry=[Point(120.1, 30.2), LineString([(120.1, 30.2), (120.2, 30.3)])],
        crs=4326,
    )
    path = tmp_path / "m.csv"
    write_table(gdf, path)
    assert "geometry" in path.read_text(encoding="utf-8-sig").splitlines()[0]
    assert_same(gdf, read_table(path))


def test_existing_file_needs_force(tmp_path):
    path = tmp_path / "f.geojson"
    write_table(facilities(), path)
    with pytest.raises(InputError, match="output exists"):
        write_table(facilities(), path)
    write_table(facilities().iloc[:1], path, force=True)
    assert len(read_table(path)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["f.geojson"]  # no temp files left


def test_geopackage_layers_append_and_choose(tmp_path):
    path = tmp_path / "study.gpkg"
    write_table(facilities(), path, layer="canteen")
    write_table(areas(), path, layer="areas")  # appended without force
    assert sorted(list_layers(path)) == ["areas", "canteen"]
    assert len(read_table(path, layer="canteen")) == 3
    with pytest.raises(InputError, match=r"holds 2 layers: .*(areas|canteen).*--areas-layer"):
        read_table(path)
    with pytest.raises(InputError, match=r"has no layer 'canten'.*did you mean 'canteen'"):
        read_table(path, layer="canten")
    with pytest.raises(InputError, match="already has a layer 'areas'"):
        write_table(areas(), path, layer="areas")
    write_table(areas().iloc[:1], path, layer="areas", force=True)
    assert len(read_table(path, layer="areas")) == 1
    assert len(read_table(path, layer="canteen")) == 3  # other layer kept


def test_shapefile_field_names_cut_and_mapping_saved(tmp_path):
    gdf = facilities()
    gdf["population_elderly"] = [1, 2, 3]
    gdf["population_youth"] = [4, 5, 6]
    gdf["六十岁以上老年人口"] = [7, 8, 9]
    gdf["name:zh"] = ["甲", "乙", "丙"]
    path = tmp_path / "fac.shp"
    res = write_table(gdf, path)
    assert res.field_map["population_elderly"] == "population"
    assert res.field_map["population_youth"] == "populati_1"
    assert res.field_map["六十岁以上老年人口"] == "六十岁"  # 3 bytes per character
    assert all(len(v.encode()) <= 10 for v in res.field_map.values())
    mapping = pd.read_csv(tmp_path / "fac_fields.csv", encoding="utf-8-sig")
    assert dict(zip(mapping["field"], mapping["shapefile_field"], strict=True)) == res.field_map
    assert (tmp_path / "fac.cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    back = read_table(path)  # original names come back from fac_fields.csv
    assert_same(gdf, back)
    (tmp_path / "fac_fields.csv").unlink()
    short = read_table(path)
    assert short["populati_1"].tolist() == [4, 5, 6]
    assert "facility_i" in short.columns
    write_table(gdf, path, force=True)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"fac.shp", "fac.shx", "fac.dbf", "fac.prj", "fac.cpg", "fac_fields.csv"}


def test_shapefile_overwrite_removes_stale_parts(tmp_path):
    path = tmp_path / "a.shp"
    short = facilities().drop(columns=["facility_id"])
    gdf = short.assign(a_very_long_name=1)
    write_table(gdf, path)
    assert (tmp_path / "a_fields.csv").exists()
    (tmp_path / "a.qix").write_bytes(b"old index")
    res = write_table(short, path, force=True)
    assert all(k == v for k, v in res.field_map.items())
    names = {p.name for p in tmp_path.iterdir()}
    assert "a.qix" not in names and "a_fields.csv" not in names


def test_shapefile_field_name_uniqueness_is_case_insensitive():
    m = shapefile_field_names(["Name", "name", "NAME_extra_long", "name:zh"])
    assert len({v.lower() for v in m.values()}) == 4
    assert m["name:zh"] == "name_zh"


def test_shapefile_mixed_types_rejected(tmp_path):
    gdf = gpd.GeoDataFrame(
        geometry=[Point(120.1, 30.2), LineString([(120.1, 30.2), (120.2, 30.3)])], crs=4326
    )
    with pytest.raises(InputError, match="mixes LineString, Point"):
        write_table(gdf, tmp_path / "m.shp")


LAUNDERED = pytest.mark.filterwarnings("ignore:Normalized/laundered field name")


@LAUNDERED
@pytest.mark.parametrize("encoding", ["GBK", "GB18030", "UTF-8"])
def test_shapefile_without_cpg_detects_encoding(tmp_path, caplog, encoding):
    path = tmp_path / "gbk.shp"
    pyogrio.write_dataframe(facilities(), path, encoding=encoding)
    (tmp_path / "gbk.cpg").unlink()
    with caplog.at_level(logging.INFO, logger="layers.io"):
        back = read_table(path)
    assert back["名称"].tolist() == facilities()["名称"].tolist()
    assert "人口" in back.columns
    expected = "UTF-8" if encoding == "UTF-8" else "GB18030"
    assert f"no .cpg file; text decoded as {expected}" in caplog.text


@LAUNDERED
def test_shapefile_cpg_is_honoured(tmp_path):
    path = tmp_path / "g.shp"
    pyogrio.write_dataframe(facilities(), path, encoding="GBK")
    assert (tmp_path / "g.cpg").read_text().strip() == "GBK"
    back = read_table(path)
    assert back["名称"].tolist() == facilities()["名称"].tolist()
    assert back.attrs["encoding"] == "GBK"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_encodings_and_chinese_headers(tmp_path, encoding):
    text = (
        "编号,名称,经度,纬度,人口\n"
        "001,湖滨一小区,120.1631,30.2571,1200\n"
        "002,清波,120.1702,30.2419,800\n"
    )
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode(encoding))
    back = read_table(path)
    assert back["名称"].tolist() == ["湖滨一小区", "清波"]
    assert back["编号"].tolist() == ["001", "002"]  # codes keep their leading zeros
    assert back["人口"].tolist() == [1200, 800]
    assert list(back.columns) == ["编号", "名称", "人口", "geometry"]
    assert back.geometry[0].equals(Point(120.1631, 30.2571))
    assert back.attrs["encoding"] == ("utf-8" if encoding != "gbk" else "gb18030")


@pytest.mark.parametrize(
    ("lon", "lat"),
    [("lon", "lat"), ("LNG", "Lat"), ("Longitude", "Latitude"), ("x", "y"), ("东经", "北纬")],
)
def test_csv_coordinate_headers(tmp_path, lon, lat):
    path = tmp_path / "c.csv"
    path.write_text(f"name,{lon},{lat}\na,120.16,30.25\n", encoding="utf-8")
    back = read_table(path)
    assert back.geometry[0].equals(Point(120.16, 30.25))
    assert list(back.columns) == ["name", "geometry"]


def test_csv_gcj02_points_converted_on_read(tmp_path):
    path = tmp_path / "amap.csv"
    path.write_text("name,lng,lat\n西湖,120.1551,30.2741\n", encoding="utf-8")
    wgs = read_table(path, coords="wgs84")
    gcj = read_table(path, coords="gcj02")
    shift = gpd.GeoSeries([wgs.geometry[0], gcj.geometry[0]], crs=4326).to_crs(32651)
    assert 300 < shift[0].distance(shift[1]) < 700
    assert gcj.attrs["coords"] == "gcj02"


def test_csv_without_coords_warns_wgs84(tmp_path, caplog):
    path = tmp_path / "c.csv"
    path.write_text("name,lon,lat\na,120.16,30.25\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="layers.io"):
        read_table(path)
    assert "assuming WGS84" in caplog.text


def test_xlsx_chinese_headers_and_sheet_choice(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        pd.DataFrame({"说明": ["本表为测试"]}).to_excel(xw, sheet_name="说明", index=False)
        pd.DataFrame(
            {"名称": ["甲", "乙"], "经度": [120.16, 120.17], "纬度": [30.25, 30.26]}
        ).to_excel(xw, sheet_name="点位", index=False)
        pd.DataFrame().to_excel(xw, sheet_name="Sheet3", index=False)
    with pytest.raises(InputError, match="2 sheets with data: 说明, 点位"):
        read_table(path)
    back = read_table(path, layer="点位")
    assert back["名称"].tolist() == ["甲", "乙"]
    assert back.attrs["layer"] == "点位"


def test_xlsx_single_sheet_with_data_is_chosen(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        pd.DataFrame({"lon": [120.16], "lat": [30.25]}).to_excel(xw, sheet_name="数据", index=False)
        pd.DataFrame().to_excel(xw, sheet_name="Sheet2", index=False)
    assert len(read_table(path)) == 1


def test_inf_written_as_null(tmp_path):
    gdf = facilities()
    gdf["minutes"] = [3.5, np.inf, 12.0]
    for fmt in ("gpkg", "csv", "parquet"):
        path = tmp_path / f"r.{fmt}"
        write_table(gdf, path)
        back = read_table(path)
        assert np.isnan(back["minutes"][1]) and back["minutes"][0] == 3.5
    assert np.isinf(gdf["minutes"][1])  # input untouched


def test_plain_parquet_with_coordinates(tmp_path):
    path = tmp_path / "plain.parquet"
    pd.DataFrame({"name": ["a"], "lon": [120.16], "lat": [30.25]}).to_parquet(path)
    back = read_table(path)
    assert back.geometry[0].equals(Point(120.16, 30.25))


def test_file_crs_override_for_gcj_labelled_wgs84(tmp_path):
    # An Amap export: GCJ-02 numbers in a GeoJSON that claims WGS84.
    gcj = from_wgs84(facilities(), "gcj02")
    path = tmp_path / "amap.geojson"
    gcj.to_file(path, driver="GeoJSON")
    back = read_table(path, coords="gcj02")
    assert_same(facilities(), back, tol_deg=1e-9)


def test_reprojected_geopackage_read_to_wgs84(tmp_path):
    path = tmp_path / "proj.gpkg"
    facilities().to_crs(4549).to_file(path, layer="x", driver="GPKG")
    back = read_table(path)
    assert back.crs.to_epsg() == 4326
    assert back.attrs["coords"] == "EPSG:4549"
    assert_same(facilities(), back, tol_deg=1e-7)


def test_shapefile_without_prj_in_degrees_assumed_wgs84(tmp_path, caplog):
    path = tmp_path / "noprj.shp"
    write_table(facilities(), path)
    (tmp_path / "noprj.prj").unlink()
    with caplog.at_level(logging.WARNING, logger="layers.io"):
        back = read_table(path)
    assert back.crs.to_epsg() == 4326
    assert "declares no coordinate system" in caplog.text


def test_input_not_modified_by_write(tmp_path):
    gdf = facilities()
    before = gdf.copy()
    write_table(gdf, tmp_path / "x.gpkg", crs="gcj02")
    pd.testing.assert_frame_equal(pd.DataFrame(gdf), pd.DataFrame(before))


# ----------------------------------------------------------------------- the layer model


def test_read_facilities_chinese_aliases_and_schema(tmp_path):
    path = tmp_path / "canteens.csv"
    path.write_text(
        "编号,名称,座位数,地址,经度,纬度\n"
        "C01,湖滨幸福食堂,60,东坡路,120.1631,30.2571\n"
        ",清波老年食堂,,河坊街,120.1702,30.2419\n",
        encoding="utf-8",
    )
    fac = read_facilities(path, "canteen", coords="wgs84")
    assert list(fac.columns) == ["facility_id", "kind", "name", "capacity", "地址", "geometry"]
    assert fac["facility_id"].tolist() == ["C01", "canteen-0002"]  # generated from the row
    assert fac["kind"].tolist() == ["canteen", "canteen"]
    assert fac["name"].tolist() == ["湖滨幸福食堂", "清波老年食堂"]
    assert fac["capacity"][0] == 60 and np.isnan(fac["capacity"][1])
    assert fac.crs.to_epsg() == 4326
    again = read_facilities(path, "canteen", coords="wgs84")
    assert again["facility_id"].tolist() == fac["facility_id"].tolist()


def test_read_facilities_user_kind_and_explicit_columns(tmp_path):
    specs = dict(load_layer_table())
    specs["clinic"] = spec_from_mapping(
        "clinic",
        {
            "label_zh": "社区卫生服务站",
            "label_en": "Clinic",
            "target_group": "population",
            "speed_kmh": 4.5,
            "thresholds_min": [15],
        },
    )
    gdf = gpd.GeoDataFrame(
        {"code": [7, 8], "title": ["站A", "站B"], "医生": [3, 4]},
        geometry=[Point(120.16, 30.25), Polygon([(120.1, 30.2), (120.11, 30.2), (120.11, 30.21)])],
        crs=4326,
    )
    fac = read_facilities(gdf, "clinic", id_col="code", name_col="title", specs=specs)
    assert fac["facility_id"].tolist() == ["7", "8"]  # numeric ids become text
    assert fac["name"].tolist() == ["站A", "站B"]
    assert (fac.geom_type == "Point").all()  # the polygon became a point inside it
    assert fac.geometry[1].within(gdf.geometry[1])
    assert fac["医生"].tolist() == [3, 4]


def test_read_residents_groups_and_points(tmp_path):
    gdf = gpd.GeoDataFrame(
        {
            "小区名称": ["一区", "二区"],
            "常住人口": [1200, 800.0],
            "60岁以上": [300, 200],
            "青年": [250, 100],
            "kind": ["a", "b"],
        },
        geometry=[box(120.15, 30.25, 120.16, 30.26), Point(120.17, 30.26)],
        crs=4326,
    )
    path = tmp_path / "res.gpkg"
    write_table(gdf, path)
    res = read_residents(path)
    assert list(res.columns[:5]) == ["resident_id", "name", "population", "elderly", "youth"]
    assert res["population"].tolist() == [1200, 800]
    assert res["population"].dtype == np.int64
    assert res["elderly"].tolist() == [300, 200]
    assert res["youth"].tolist() == [250, 100]
    assert res["resident_id"].tolist() == ["R0001", "R0002"]
    assert res.geom_type.tolist() == ["Polygon", "Point"]  # geometry kept as given
    pts = resident_points(res)
    assert pts.geom_type.tolist() == ["Point", "Point"]
    assert pts.geometry[0].within(res.geometry[0])
    assert res.geom_type[0] == "Polygon"  # input of resident_points untouched
    renamed = read_residents(path, group_cols={"elderly": "60岁以上"})
    assert "youth" not in renamed.columns and renamed["elderly"].tolist() == [300, 200]


def test_read_residents_without_groups(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("pop,lon,lat\n5,120.1,30.2\n", encoding="utf-8")
    res = read_residents(path, coords="wgs84")
    assert list(res.columns) == ["resident_id", "name", "population", "geometry"]


def test_read_areas_streets_and_communities(tmp_path):
    streets = gpd.GeoDataFrame(
        {"街道": ["湖滨街道", "清波街道"]},
        geometry=[box(120.15, 30.25, 120.17, 30.27), box(120.15, 30.23, 120.17, 30.25)],
        crs=4326,
    )
    a = read_areas(streets)
    assert a[["area", "level", "parent"]].values.tolist() == [
        ["湖滨街道", "street", ""],
        ["清波街道", "street", ""],
    ]
    comms = gpd.GeoDataFrame(
        {"社区名称": ["东坡社区", "东坡社区"], "所属街道": ["湖滨街道", "清波街道"]},
        geometry=[box(120.15, 30.25, 120.16, 30.26), box(120.15, 30.23, 120.16, 30.24)],
        crs=4326,
    )
    c = read_areas(comms, level="community")  # same name in two streets is fine
    assert c["parent"].tolist() == ["湖滨街道", "清波街道"]
    assert c["level"].tolist() == ["community", "community"]


def test_read_candidates(tmp_path):
    path = tmp_path / "cand.xlsx"
    pd.DataFrame(
        {
            "名称": ["空置用房1", "规划邻里中心"],
            "容量": [40, None],
            "lng": [120.16, 120.17],
            "lat": [30.25, 30.26],
        }
    ).to_excel(path, index=False)
    cand = read_candidates(path, coords="gcj02")
    assert cand["site_id"].tolist() == ["site-0001", "site-0002"]
    assert cand["capacity"][0] == 40 and np.isnan(cand["capacity"][1])
    assert cand.geometry[0].x != 120.16  # converted from GCJ-02


def test_reading_and_writing_leave_no_sidecar_files(tmp_path):
    """GDAL's .aux.xml never appears beside a user's file, nor in an output folder."""
    from data.demo import generate_demo, write_demo
    from layers.io import list_layers, read_table

    files = write_demo(generate_demo(seed=7), tmp_path / "demo")
    before = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert not [n for n in before if n.endswith(".aux.xml")]
    list_layers(files.areas_gpkg)
    read_table(files.areas_gpkg, layer="communities")
    read_table(files.residents_gpkg)
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == before
