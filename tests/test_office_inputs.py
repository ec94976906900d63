"""Issue 12 (2, 3, 10, 11): every input nameable, every option checked early, office files read.

Tables as offices export them (a title above the header, a merged two-row header, ``;``/tab
separators, ``1,164``, ``１２３４``, ``1234人``), a 街道 file whose only column is ``area_name``,
and fixes that name real flags and plan keys, never a Python keyword.
"""

from __future__ import annotations

import logging
import re
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from openpyxl import Workbook
from shapely.geometry import box

from layers.errors import InputError
from layers.io import read_table
from layers.model import column_option, read_areas, read_facilities, read_residents
from layers.plan import (
    EXPORT_FORMATS,
    Plan,
    parse_columns,
    parse_formats,
    plan_from_mapping,
)
from layers.validate import check_group_columns

PYTHON_KEYWORDS = ("name_col", "population_col", "group_cols", "capacity_col", "id_col", "layer=")


def no_keywords(text: str) -> None:
    for word in PYTHON_KEYWORDS:
        assert word not in text, text


# ------------------------------------------------------------------------------- XLSX


def xlsx(path: Path, rows: list[list[object]], merges: tuple[str, ...] = ()) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = "助餐点"
    for row in rows:
        sheet.append(row)
    for cells in merges:
        sheet.merge_cells(cells)
    book.save(path)
    return path


def test_xlsx_title_row_above_the_header(tmp_path, caplog):
    p = xlsx(
        tmp_path / "canteens.xlsx",
        [
            ["上城区助餐点名单（2026年）"],
            ["名称", "经度", "纬度", "座位数"],
            ["湖滨食堂", 120.165, 30.255, 40],
            ["清波食堂", 120.170, 30.245, 60],
        ],
    )
    with caplog.at_level(logging.WARNING):
        fac = read_facilities(p, "canteen")
    assert fac["name"].tolist() == ["湖滨食堂", "清波食堂"]
    assert fac["capacity"].tolist() == [40.0, 60.0]
    assert "the header is row 2" in caplog.text and "上城区助餐点名单" in caplog.text


def test_xlsx_two_row_merged_header_is_joined(tmp_path, caplog):
    p = xlsx(
        tmp_path / "residents.xlsx",
        [
            ["小区人口统计"],
            ["名称", "经度", "纬度", "人口", None],
            [None, None, None, "总数", "60岁以上"],
            ["A小区", 120.165, 30.255, "1,164", 300],
            ["B小区", 120.170, 30.245, 800, 210],
        ],
        merges=("A2:A3", "B2:B3", "C2:C3", "D2:E2"),
    )
    with caplog.at_level(logging.WARNING):
        table = read_table(p)
    assert {"名称", "人口_总数", "人口_60岁以上"} <= set(table.columns)
    assert "two-row header (rows 2 and 3)" in caplog.text
    res = read_residents(p, population_col="人口_总数", group_cols={"elderly": "人口_60岁以上"})
    assert res["population"].tolist() == [1164, 800]
    assert res["elderly"].tolist() == [300, 210]


def _without_named_styles(src: Path, dst: Path) -> Path:
    """The workbook without named cell styles, as some exporters write it: openpyxl then warns
    'Workbook contains no default style, apply openpyxl's default'."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/styles.xml":
                data = re.sub(rb"<cellStyles.*?</cellStyles>", b"", data, flags=re.S)
            zout.writestr(item, data)
    return dst


def test_no_raw_library_warning_reaches_the_terminal(tmp_path):
    src = xlsx(tmp_path / "a.xlsx", [["name", "lon", "lat"], ["x", 120.16, 30.25]])
    p = _without_named_styles(src, tmp_path / "nostyle.xlsx")
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        import openpyxl

        openpyxl.load_workbook(p)
    assert any("no default style" in str(w.message) for w in raw)  # the file does trigger it
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        table = read_table(p)
    assert len(table) == 1
    assert [str(w.message) for w in seen] == []


# -------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_csv_separators_are_sniffed(tmp_path, sep):
    p = tmp_path / "c.csv"
    rows = [["名称", "经度", "纬度", "座位数"], ["a", "120.16", "30.25", "40"]]
    p.write_text("\n".join(sep.join(r) for r in rows) + "\n", encoding="utf-8")
    fac = read_facilities(p, "canteen")
    assert fac["name"].tolist() == ["a"] and fac["capacity"].tolist() == [40.0]


def test_csv_office_numbers(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text(
        'name,lon,lat,population,elderly\na,120.16,30.25,"1,164",１２３\nb,120.17,30.26,800,45\n',
        encoding="utf-8",
    )
    res = read_residents(p)
    assert res["population"].tolist() == [1164, 800]
    assert res["elderly"].tolist() == [123, 45]


def test_csv_count_units_down_a_column(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text(
        "name,lon,lat,population\na,120.16,30.25,1234人\nb,120.17,30.26,56 人\n",
        encoding="utf-8",
    )
    assert read_residents(p)["population"].tolist() == [1234, 56]


def test_csv_title_row_above_the_header(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("上城区助餐点名单（2026年）\n名称,经度,纬度\na,120.16,30.25\n", encoding="utf-8")
    assert read_facilities(p, "canteen")["name"].tolist() == ["a"]


def test_codes_and_decimal_commas_stay_text(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text('code,v,lon,lat\n001,"30,27",120.16,30.25\n', encoding="utf-8")
    t = read_table(p)
    assert t["code"].tolist() == ["001"] and t["v"].tolist() == ["30,27"]


def test_infinite_coordinate_is_called_infinite(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("name,lon,lat\na,inf,30.25\n", encoding="utf-8")
    with pytest.raises(InputError, match="coordinate is infinite"):
        read_table(p)


# ------------------------------------------------------------------ names and columns


def test_area_file_whose_only_text_column_names_each_polygon(tmp_path, caplog):
    p = tmp_path / "streets.geojson"
    gpd.GeoDataFrame(
        {"area_name": ["湖滨街道", "清波街道"], "code": [1, 2]},
        geometry=[box(120.15, 30.24, 120.16, 30.25), box(120.16, 30.24, 120.17, 30.25)],
        crs=4326,
    ).to_file(p)
    with caplog.at_level(logging.WARNING):
        areas = read_areas(p)
    assert areas["area"].tolist() == ["湖滨街道", "清波街道"]
    assert "using 'area_name'" in caplog.text and "--areas-columns name=area_name" in caplog.text


def test_area_file_with_two_candidate_name_columns_asks_for_the_flag(tmp_path):
    p = tmp_path / "streets.geojson"
    gpd.GeoDataFrame(
        {"jdmc": ["湖滨", "清波"], "jddm": ["A1", "A2"]},
        geometry=[box(120.15, 30.24, 120.16, 30.25), box(120.16, 30.24, 120.17, 30.25)],
        crs=4326,
    ).to_file(p)
    with pytest.raises(InputError) as err:
        read_areas(p)
    assert "--areas-columns name=COLUMN" in str(err.value)
    no_keywords(str(err.value))


@pytest.mark.parametrize(
    ("read", "flag"),
    [
        (
            lambda p: read_facilities(p, "canteen", capacity_col="床位"),
            "--layer-columns canteen:capacity=",
        ),
        (lambda p: read_residents(p, population_col="常住人口"), "--residents-columns population="),
        (
            lambda p: read_areas(p, level="community", name_col="社区"),
            "--communities-columns name=",
        ),
    ],
)
def test_column_fixes_name_flags(tmp_path, read, flag):
    p = tmp_path / "t.geojson"
    gpd.GeoDataFrame(
        {"name": ["a"], "population": [5]}, geometry=[box(120.15, 30.24, 120.16, 30.25)], crs=4326
    ).to_file(p)
    with pytest.raises(InputError) as err:
        read(p)
    assert flag in str(err.value)
    no_keywords(str(err.value))


def test_missing_group_column_names_the_flag():
    frame = gpd.GeoDataFrame({"population": [5], "老年人口": [2]})
    with pytest.raises(InputError) as err:
        check_group_columns(frame, ["elderly"], needed_by={"elderly": ["canteen"]})
    text = str(err.value)
    assert "needed by canteen" in text and "--residents-columns elderly=" in text
    assert "[residents_columns]" in text


def test_column_option_text():
    assert column_option("residents", "population").format(col="常住人口") == (
        "--residents-columns population=常住人口 (plan: population in [residents_columns])"
    )


# ------------------------------------------------------------------------------ plans


def plan_files(tmp_path: Path) -> dict[str, object]:
    for name in ("n.osm", "r.gpkg", "c.csv", "s.xlsx"):
        (tmp_path / name).write_text("x")
    return {
        "network": str(tmp_path / "n.osm"),
        "residents": str(tmp_path / "r.gpkg"),
    }


def test_plan_names_every_layer_and_column(tmp_path):
    data = {
        **plan_files(tmp_path),
        "candidates": str(tmp_path / "c.csv"),
        "candidates_layer": "空置用房",
        "residents_columns": {"population": "常住人口", "id": "编号", "name": "小区"},
        "streets_columns": {"name": "街道名称"},
        "communities_columns": {"name": "社区名称", "parent": "所属街道"},
        "candidates_columns": {"capacity": "面积"},
        "layers": {
            "canteen": {
                "file": str(tmp_path / "s.xlsx"),
                "layer": "助餐点",
                "columns": {"name": "名称", "capacity": "座位"},
            }
        },
    }
    plan = plan_from_mapping(data).check()
    assert plan.candidates_layer == "空置用房"
    assert plan.layers[0].layer == "助餐点"
    assert plan.layers[0].columns == {"name": "名称", "capacity": "座位"}
    assert plan.communities_columns["parent"] == "所属街道"
    assert plan.residents_columns["id"] == "编号"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"streets_columns": {"nmae": "x"}}, "did you mean 'name'"),
        ({"candidates_columns": {"capcity": "x"}}, "did you mean 'capacity'"),
        (
            {"layers": {"canteen": {"file": "s.xlsx", "columns": {"nam": "x"}}}},
            "--layer-columns canteen:",
        ),
    ],
)
def test_plan_column_typos_are_refused(tmp_path, extra, words):
    data = {**plan_files(tmp_path), "layers": {"canteen": str(tmp_path / "c.csv")}, **extra}
    with pytest.raises(InputError, match=words):
        plan_from_mapping(data, base=tmp_path).check()


def test_lscp_takes_no_number_of_sites(tmp_path):
    data = {
        **plan_files(tmp_path),
        "layers": {"canteen": str(tmp_path / "c.csv")},
        "model": "lscp",
    }
    with pytest.raises(InputError) as err:
        plan_from_mapping({**data, "suggest": {"canteen": 5}}).check()
    assert "takes no number" in err.value.problem and "--model mclp" in str(err.value.fix)
    ok = plan_from_mapping({**data, "suggest": {"canteen": True}}).check()
    assert ok.suggest == {"canteen": 0}


def test_options_checked_without_any_file():
    with pytest.raises(InputError, match="did you mean 'wgs84'"):
        Plan(export_crs="wgs8").check_options()
    with pytest.raises(InputError, match="--basemap"):
        Plan(basemap="google").check_options()


def test_formats():
    from maps.export import FORMATS

    assert EXPORT_FORMATS == FORMATS  # the early check knows every format the exporter writes
    assert parse_formats("GPKG, shapefile,csv") == ["gpkg", "shp", "csv"]
    with pytest.raises(InputError, match="did you mean 'shp'"):
        parse_formats("gpkg,shpp")


def test_parse_columns():
    assert parse_columns("population=常住人口,elderly=60岁以上", flag="--residents-columns") == {
        "population": "常住人口",
        "elderly": "60岁以上",
    }
    with pytest.raises(InputError, match="KEY=COLUMN"):
        parse_columns("常住人口", flag="--residents-columns")


def test_numbers_kept_exact(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("name,lon,lat,v\na,120.1551234,30.25,1.5\n", encoding="utf-8")
    t = read_table(p)
    assert t["v"].tolist() == [1.5]
    assert np.isclose(t.geometry.x.iloc[0], 120.1551234)
