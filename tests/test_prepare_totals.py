"""``prepare-osm --totals``: GBK, empty or wrong totals give one line, never a traceback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from layers.errors import InputError
from layers.osm.prepare import _read_totals

from .conftest import ROOT, shared_file

AREAS_KM2 = {"采荷街道": 4.5, "清波街道": 2.6, "小营街道": 3.1}
GOOD = "街道,人口\n采荷街道,90000\n清波街道,40000\n小营街道,50000\n"
EXPECTED = {"采荷街道": 90000, "清波街道": 40000, "小营街道": 50000}


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / "totals.csv"
    p.write_bytes(text.encode(encoding))
    return p


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_utf8_and_gbk_totals_read_the_same(tmp_path, encoding, caplog):
    p = write(tmp_path, GOOD, encoding)
    with caplog.at_level(logging.WARNING):
        assert _read_totals(p, area_km2=AREAS_KM2) == EXPECTED
    warned = any("GBK" in r.getMessage() for r in caplog.records)
    assert warned == encoding.startswith("gb")


@pytest.mark.parametrize(
    ("text", "row", "words"),
    [
        ("", None, "is empty"),
        ("  \n\n", None, "is empty"),
        ("街道,人口\n", None, "no rows"),
        ("街道\n采荷街道\n", None, "two columns"),
        ("街道,人口\n采荷街道,90000\n清波街道,四万\n小营街道,1\n", 2, "'四万' is not a whole"),
        ("街道,人口\n采荷街道,9.2\n清波街道,1\n小营街道,1\n", 1, "'9.2' is not a whole"),
        ("街道,人口\n采荷街道,-5\n清波街道,1\n小营街道,1\n", 1, "'-5' is not a whole"),
        ("街道,人口\n采荷街道,\n清波街道,1\n小营街道,1\n", 1, "is not a whole"),
        ("街道,人口\n采荷街道,1e12\n清波街道,1\n小营街道,1\n", 1, "people per km2"),
        ("街道,人口\n采荷街道,1\n采荷街道,2\n小营街道,1\n", 2, "appears twice"),
        ("街道,人口\n采和街道,1\n清波街道,1\n小营街道,1\n", 1, "did you mean '采荷街道'?"),
        (
            "街道,人口\n采荷街道,1\n清波街道,1\n",
            None,
            "no population for 1 街道 of --areas: 小营街道",
        ),
    ],
)
def test_bad_totals_name_the_file_row_and_fix(tmp_path, text, row, words):
    p = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        _read_totals(p, area_km2=AREAS_KM2)
    e = err.value
    assert words in str(e) and e.file == str(p) and e.row == row
    assert "\n" not in str(e) and "--totals" in e.fix


def test_neither_utf8_nor_gbk_is_refused(tmp_path):
    p = tmp_path / "totals.csv"
    p.write_bytes(b"\xff\xff\xff,\x80\n")
    with pytest.raises(InputError, match="neither UTF-8 nor GBK"):
        _read_totals(p, area_km2=AREAS_KM2)


def test_missing_totals_file_names_the_flag(tmp_path):
    with pytest.raises(InputError) as err:
        _read_totals(tmp_path / "nope.csv", area_km2=AREAS_KM2)
    assert "--totals" in err.value.fix


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true"},
        timeout=600,
        check=False,
    )


def prepare(tmp_path: Path, totals: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return cli(
        "prepare-osm",
        shared_file("westlake_10km.osm.pbf"),
        "--areas",
        shared_file("hangzhou_admin_osm.geojson"),
        "--area-where",
        "in_new_shangcheng_2021=true",
        "--totals",
        totals,
        "--out",
        out,
    )


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("text", "words"),
    [("", "is empty"), ("街道,人口\n采荷街道,九万\n", "row 1, column '人口'")],
)
def test_prepare_osm_bad_totals_exit_2_with_one_line(tmp_path, text, words):
    out = tmp_path / "out"
    r = prepare(tmp_path, write(tmp_path, text, "gbk"), out)
    assert r.returncode == 2, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
    assert len(errors) == 1 and words in errors[0] and "--totals" in errors[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


@pytest.mark.realdata
def test_prepare_osm_reads_gbk_totals(tmp_path):
    import geopandas as gpd

    streets = [
        "采荷街道",
        "清波街道",
        "紫阳街道",
        "小营街道",
        "望江街道",
        "南星街道",
        "湖滨街道",
        "闸弄口街道",
        "凯旋街道",
    ]
    people = {name: 30_000 + 5_000 * i for i, name in enumerate(streets)}
    text = "街道,人口\n" + "".join(f"{n},{v}\n" for n, v in people.items())
    out = tmp_path / "out"
    r = prepare(tmp_path, write(tmp_path, text, "gbk"), out)
    assert r.returncode == 0, r.stderr
    assert "GBK" in r.stderr
    residents = gpd.read_file(out / "residents.gpkg")
    assert residents.groupby("area")["population"].sum().to_dict() == people
