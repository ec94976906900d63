"""The command line end to end, through a real subprocess, as a planner runs it."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyogrio
import pytest

from .conftest import ROOT, shared_file

KINDS = ("canteen", "neighborhood_center", "elderly_station", "youth_hostel")
GIS_LAYERS = ("facilities", "residents", "service_areas", "gaps", "areas", "suggestions")


def cli(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": "true"}
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "demo"
    cache = out.parent / "cache"
    r = cli("demo", "--out", out, "--cache-dir", cache)
    assert r.returncode == 0, r.stderr
    return out


def check_summary(s: dict, kinds=KINDS, minutes=("5", "10", "15")) -> None:
    assert s["schema_version"] == 2
    for kind in kinds:
        layer = s["layers"][kind]
        for key in (
            "facilities",
            "target_group",
            "population",
            "covered_population",
            "coverage_rate",
            "coverage_rate_by_minutes",
            "mean_minutes",
            "p90_minutes",
            "unsnapped_residents",
        ):
            assert key in layer, (kind, key)
        assert set(layer["coverage_rate_by_minutes"]) == set(minutes)
        rates = [layer["coverage_rate_by_minutes"][m] for m in minutes]
        assert rates == sorted(rates) and all(0 <= r <= 1 for r in rates)
        assert layer["coverage_rate"] == pytest.approx(
            layer["covered_population"] / layer["population"]
        )
    for area, per_kind in s["areas"].items():
        assert area
        for kind, v in per_kind.items():
            assert kind in kinds and (v["coverage_rate"] is None or 0 <= v["coverage_rate"] <= 1)


def test_demo_writes_every_output(demo):
    for name in ("map.html", "report.html", "report.xlsx", "summary.json"):
        assert (demo / name).stat().st_size > 0, name
    s = json.loads((demo / "summary.json").read_text(encoding="utf-8"))
    assert s["synthetic"] is True and "合成" in s["title"]
    check_summary(s)
    assert len(s["areas"]) == 4
    for kind in KINDS:
        sug = s["suggestions"][kind]
        assert sug["model"] == "mclp" and len(sug["sites"]) == 3
        added = [site["added_population"] for site in sug["sites"]]
        assert added == sorted(added, reverse=True)  # in the order chosen: marginal gains fall
        for site in sug["sites"]:
            assert 120.1 < site["lon"] < 120.3 and 30.2 < site["lat"] < 30.35
        assert sug["coverage_rate_after"] >= sug["coverage_rate_before"]
        assert isinstance(sug["optimal"], bool) and sug["gap"] is not None
    # the demo checks Shangcheng-style planning targets (data/targets_demo.toml)
    assert len(s["targets"]) == 5
    for t in s["targets"]:
        assert {
            "label",
            "layer",
            "scope",
            "status",
            "value",
            "threshold",
            "shortfall_population",
            "sites_needed",
        } <= set(t)
        assert t["status"] in ("met", "not met")
        assert t["status"] == "met" or t["sites_needed"] is not None or t["reasons"]
    layers = {name for name, _ in pyogrio.list_layers(demo / "gis" / "study.gpkg")}
    assert set(GIS_LAYERS) <= layers
    for sub, ext in (
        ("geojson", "geojson"),
        ("shp", "shp"),
        ("parquet", "parquet"),
        ("csv", "csv"),
    ):
        for name in GIS_LAYERS:
            assert (demo / "gis" / sub / f"{name}.{ext}").exists(), (sub, name)
    # the demo's inputs travel with it, canteens as an Amap (GCJ-02) CSV
    assert (demo / "inputs" / "canteens_gcj02.csv").exists()
    html = (demo / "map.html").read_text(encoding="utf-8")
    assert "unpkg.com" not in html and "cdn.jsdelivr" not in html


def test_run_with_flags_matches_demo(demo, tmp_path):
    inp = demo / "inputs"
    out = tmp_path / "flags"
    r = cli(
        "run",
        "--network",
        inp / "streets.osm",
        "--residents",
        inp / "residents.gpkg",
        "--layer",
        f"canteen={inp / 'canteens_gcj02.csv'}",
        "--coords",
        "canteen=gcj02",
        "--layer",
        f"youth_hostel={inp / 'youth_hostels.geojson'}",
        "--suggest",
        "canteen=2",
        "--minutes",
        "5,10,15,20",
        "--lang",
        "en",
        "--export-crs",
        "cgcs2000",
        "--formats",
        "gpkg,csv",
        "--out",
        out,
    )
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    check_summary(s, kinds=("canteen", "youth_hostel"), minutes=("5", "10", "15", "20"))
    d = json.loads((demo / "summary.json").read_text(encoding="utf-8"))
    # same inputs, same coverage as the demo's own run (hex areas instead of 街道 here)
    for kind in ("canteen", "youth_hostel"):
        assert s["layers"][kind]["coverage_rate"] == pytest.approx(
            d["layers"][kind]["coverage_rate"]
        )
    assert len(s["suggestions"]["canteen"]["sites"]) == 2
    assert pyogrio.read_info(out / "gis" / "study.gpkg", layer="facilities")["crs"] == "EPSG:4490"


def test_plan_file_and_flag_override(demo, tmp_path):
    inp = demo / "inputs"
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""
title = "计划文件"
network = "{(inp / "streets.osm").as_posix()}"
residents = "{(inp / "residents.gpkg").as_posix()}"
streets = "{(inp / "areas.gpkg").as_posix()}"
streets_layer = "streets_areas"
minutes = [5, 15]
[layers]
elderly_station = "{(inp / "elderly_stations.geojson").as_posix()}"
[speed]
elderly_station = 3.0
""",
        encoding="utf-8",
    )
    out = tmp_path / "plan-out"
    r = cli("run", plan, "--minutes", "10,15", "--out", out, "--formats", "geojson")
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["title"] == "计划文件"
    layer = s["layers"]["elderly_station"]
    assert set(layer["coverage_rate_by_minutes"]) == {"10", "15"}  # the flag won
    assert layer["speed_kmh"] == 3.0
    slower = layer["coverage_rate"]
    d = json.loads((demo / "summary.json").read_text(encoding="utf-8"))
    assert slower <= d["layers"]["elderly_station"]["coverage_rate"]


@pytest.mark.parametrize(
    ("make_args", "words"),
    [
        (
            lambda inp, tmp: [
                "--network",
                tmp / "nope.osm.pbf",
                "--residents",
                inp / "residents.gpkg",
                "--layer",
                f"canteen={inp / 'canteens_gcj02.csv'}",
            ],
            "nope.osm.pbf",
        ),
        (
            lambda inp, tmp: [
                "--network",
                inp / "streets.osm",
                "--residents",
                inp / "residents.gpkg",
                "--layer",
                f"bakery={inp / 'youth_hostels.geojson'}",
            ],
            "unknown layer kind 'bakery'",
        ),
        (
            lambda inp, tmp: [
                "--network",
                inp / "streets.osm",
                "--residents",
                inp / "residents.gpkg",
                "--layer",
                f"canteen={inp / 'canteens_gcj02.csv'}",
                "--crs",
                "EPSG:99999",
            ],
            "CRS",
        ),
        (
            lambda inp, tmp: [
                "--network",
                inp / "streets.osm",
                "--residents",
                inp / "residents.gpkg",
                "--layer",
                f"canteen={inp / 'canteens_gcj02.csv'}",
                "--coords",
                "canteen=wsg84",
            ],
            "wsg84",
        ),
        (
            lambda inp, tmp: [
                "--network",
                inp / "streets.osm",
                "--residents",
                _no_population(inp, tmp),
                "--layer",
                f"canteen={inp / 'canteens_gcj02.csv'}",
            ],
            "population",
        ),
        (
            lambda inp, tmp: [
                "--network",
                inp / "streets.osm",
                "--residents",
                inp / "residents.gpkg",
                "--layer",
                f"canteen={inp / 'canteens_gcj02.csv'}",
                "--suggest",
                "youth_hostel=3",
            ],
            "youth_hostel",
        ),
    ],
)
def test_user_mistakes_exit_2_with_one_line_and_no_output(demo, tmp_path, make_args, words):
    out = tmp_path / "failed"
    r = cli("run", *make_args(demo / "inputs", tmp_path), "--out", out)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert words in lines[0]
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".failed")]


def _no_population(inp: Path, tmp: Path) -> Path:
    import geopandas as gpd

    res = gpd.read_file(inp / "residents.gpkg").rename(columns={"population": "popul"})
    p = tmp / "res.geojson"
    res.to_file(p)
    return p


def test_unknown_target_word_exits_2(demo, tmp_path):
    inp = demo / "inputs"
    targets = tmp_path / "targets.toml"
    targets.write_text(
        '[[targets]]\nlabel = "助餐全覆盖"\nlayer = "canteen"\nscope = "街道"\n'
        'measure = "coverage_rate"\nthreshold = 1.0\n',
        encoding="utf-8",
    )
    out = tmp_path / "t"
    r = cli(
        "run",
        "--network",
        inp / "streets.osm",
        "--residents",
        inp / "residents.gpkg",
        "--areas",
        inp / "areas.gpkg",
        "--layer",
        f"canteen={inp / 'canteens_gcj02.csv'}",
        "--targets",
        targets,
        "--out",
        out,
    )
    assert r.returncode == 2
    assert "target 1 ('助餐全覆盖'): unknown scope '街道'" in r.stderr
    assert "district, street, community" in r.stderr and not out.exists()


def test_existing_output_needs_force(demo, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = cli("demo", "--out", out, "--formats", "csv")
    assert r.returncode == 2 and "--force" in r.stderr
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.realdata
def test_real_hangzhou_prepare_and_run(tmp_path):
    pbf = shared_file("westlake_10km.osm.pbf")
    admin = shared_file("hangzhou_admin_osm.geojson")
    inputs = tmp_path / "inputs"
    r = cli(
        "prepare-osm",
        pbf,
        "--areas",
        admin,
        "--area-where",
        "in_new_shangcheng_2021=true",
        "--out",
        inputs,
    )
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    r = cli(
        "run",
        inputs / "plan.toml",
        "--suggest",
        "canteen=3",
        "--formats",
        "gpkg",
        "--cache-dir",
        tmp_path / "cache",
        "--out",
        out,
    )
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    check_summary(s)
    assert len(s["areas"]) == 9 and s["synthetic"] is False
    assert any("OpenStreetMap" in line for line in s["sources"])
    assert len(s["suggestions"]["canteen"]["sites"]) == 3


def _minutes(out: Path) -> dict[str, list]:
    import pandas as pd

    res = pd.read_csv(out / "gis" / "csv" / "residents.csv", encoding="utf-8-sig")
    res = res.sort_values("resident_id")
    return {c: res[c].round(9).tolist() for c in res.columns if c.startswith("minutes_")}


def test_bare_coords_only_for_tables_and_areas_change_no_minute(demo, tmp_path):
    """Issue 11: a bare --coords leaves a GPKG that declares WGS84 alone; --areas moves nothing."""
    inp = demo / "inputs"
    common = [
        "--network", inp / "streets.osm",
        "--residents", inp / "residents.gpkg",
        "--layer", f"canteen={inp / 'canteens_gcj02.csv'}",
        "--layer", f"youth_hostel={inp / 'youth_hostels.geojson'}",
        "--formats", "csv",
    ]  # fmt: skip
    bare = cli("run", *common, "--coords", "gcj02", "--out", tmp_path / "bare")
    named = cli("run", *common, "--coords", "canteen=gcj02", "--out", tmp_path / "named")
    assert bare.returncode == 0 and named.returncode == 0, bare.stderr + named.stderr
    assert _minutes(tmp_path / "bare") == _minutes(tmp_path / "named")
    d = json.loads((demo / "summary.json").read_text(encoding="utf-8"))
    s = json.loads((tmp_path / "bare" / "summary.json").read_text(encoding="utf-8"))
    for kind in ("canteen", "youth_hostel"):
        assert s["layers"][kind]["coverage_rate"] == pytest.approx(
            d["layers"][kind]["coverage_rate"]
        )
    # the same study with 街道 polygons: not one resident's minutes change
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'streets = "{(inp / "areas.gpkg").as_posix()}"\nstreets_layer = "streets_areas"\n',
        encoding="utf-8",
    )
    areas = cli("run", plan, *common, "--coords", "canteen=gcj02", "--out", tmp_path / "areas")
    assert areas.returncode == 0, areas.stderr
    assert _minutes(tmp_path / "areas") == _minutes(tmp_path / "named")


def test_areas_of_another_place_exit_2(demo, tmp_path):
    """A 街道 file that lies entirely elsewhere stops the run before the network is built."""
    inp = demo / "inputs"
    far = tmp_path / "beijing.geojson"
    far.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "东华门街道"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [
                                [[116.39, 39.90], [116.41, 39.90], [116.41, 39.92], [116.39, 39.90]]
                            ],
                        },
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    out = tmp_path / "far"
    r = cli(
        "run",
        "--network", inp / "streets.osm",
        "--residents", inp / "residents.gpkg",
        "--layer", f"youth_hostel={inp / 'youth_hostels.geojson'}",
        "--areas", far,
        "--out", out,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "beijing.geojson" in r.stderr and "no feature lies in the study area" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_web_mercator_crs_exits_2(demo, tmp_path):
    """EPSG:3857 stretches distances by ~15% at 30°N: refused before the network is built."""
    inp = demo / "inputs"
    r = cli(
        "run",
        "--network", inp / "streets.osm",
        "--residents", inp / "residents.gpkg",
        "--layer", f"canteen={inp / 'canteens_gcj02.csv'}",
        "--coords", "canteen=gcj02",
        "--crs", "3857",
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert r.returncode == 2 and "EPSG:3857 distorts distances by 15." in r.stderr, r.stderr
    ok = cli(
        "run",
        "--network", inp / "streets.osm",
        "--residents", inp / "residents.gpkg",
        "--layer", f"canteen={inp / 'canteens_gcj02.csv'}",
        "--coords", "canteen=gcj02",
        "--crs", "4549",
        "--formats", "csv",
        "--out", tmp_path / "gk",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    d = json.loads((demo / "summary.json").read_text(encoding="utf-8"))
    s = json.loads((tmp_path / "gk" / "summary.json").read_text(encoding="utf-8"))
    # Gauss-Kruger CM 120E is true to scale here: the same coverage as local UTM, to 0.5%
    assert s["layers"]["canteen"]["coverage_rate"] == pytest.approx(
        d["layers"]["canteen"]["coverage_rate"], abs=0.005
    )


# --- issue 12: every input nameable, every option checked before any heavy work, help -----------


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory) -> Path:
    """The demo's input files only (no analysis): what a planner receives."""
    from data.demo import generate_demo, write_demo

    folder = tmp_path_factory.mktemp("inputs") / "inputs"
    write_demo(generate_demo(), folder)
    return folder


def test_demo_areas_gpkg_usable_from_the_cli(demo_inputs, tmp_path):
    """The demo's own two-layer areas.gpkg: the fix names --areas-layer, and it works."""
    import pyogrio

    inp = demo_inputs
    common = [
        "--network", inp / "streets.osm",
        "--residents", inp / "residents.gpkg",
        "--layer", f"youth_hostel={inp / 'youth_hostels.geojson'}",
        "--formats", "csv",
    ]  # fmt: skip
    r = cli("run", *common, "--areas", inp / "areas.gpkg", "--out", tmp_path / "no")
    assert r.returncode == 2, r.stderr
    assert "--areas-layer NAME" in r.stderr and "layer=NAME" not in r.stderr
    r = cli(
        "run", *common,
        "--areas", inp / "areas.gpkg", "--areas-layer", "streets_areas",
        "--communities", inp / "areas.gpkg", "--communities-layer", "communities",
        "--communities-columns", "name=name,parent=parent",
        "--out", tmp_path / "yes",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "yes" / "summary.json").read_text(encoding="utf-8"))
    names = pyogrio.read_dataframe(inp / "areas.gpkg", layer="streets_areas")["name"]
    assert set(s["areas"]) == set(names)


def _residents_without(inp: Path, tmp: Path, column: str) -> Path:
    import geopandas as gpd

    p = tmp / f"res_no_{column}.geojson"
    gpd.read_file(inp / "residents.gpkg").drop(columns=[column]).to_file(p)
    return p


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (lambda inp, tmp: ["--formats", "gpkg,shpp"], "did you mean 'shp'"),
        (lambda inp, tmp: ["--export-crs", "wgs8"], "--export-crs wgs8"),
        (
            lambda inp, tmp: ["--suggest", "canteen=5", "--model", "lscp"],
            "--model lscp finds the fewest sites",
        ),
        (
            lambda inp, tmp: [
                "--candidates",
                inp / "candidates.geojson",
                "--suggest",
                "canteen=500",
            ],
            "asks for 500 new sites but the candidates file has only",
        ),
        (
            lambda inp, tmp: ["--residents", _residents_without(inp, tmp, "elderly")],
            "--residents-columns elderly=",
        ),
        (
            lambda inp, tmp: ["--residents-columns", "population=常住人口"],
            "--residents-columns population=",
        ),
        (
            lambda inp, tmp: ["--layer-columns", "canteen:capacity=床位"],
            "--layer-columns canteen:capacity=",
        ),
        (lambda inp, tmp: ["--dask", "tcp//10.0.0.5:8786"], "--dask: 'tcp//10.0.0.5:8786'"),
    ],
)
def test_options_checked_before_the_network_is_read(demo_inputs, tmp_path, extra, words):
    """A broken network file is read last: each mistake is reported before it, in plain words."""
    inp = demo_inputs
    junk = tmp_path / "junk.osm"
    junk.write_text("not an OSM file", encoding="utf-8")
    args = [
        "--network", junk,
        "--residents", inp / "residents.gpkg",
        "--layer", f"canteen={inp / 'canteens_gcj02.csv'}",
        "--coords", "canteen=gcj02",
    ]  # fmt: skip
    more = extra(inp, tmp_path)
    if "--residents" in more:
        at = args.index("--residents")
        args[at + 1] = more[more.index("--residents") + 1]
        more = [a for a in more if a not in ("--residents", args[at + 1])]
    r = cli("run", *args, *more, "--out", tmp_path / "o")
    assert r.returncode == 2, r.stderr
    assert words in r.stderr, r.stderr
    assert "`p`" not in r.stderr and "Traceback" not in r.stderr
    assert not re.search(r"\w_cols?\b", r.stderr), r.stderr  # no Python keyword as a fix
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "o").exists()


def test_help_describes_every_option_with_defaults_and_examples():
    import importlib

    app = importlib.import_module("app")
    parser = app._parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subs.choices.items():
        assert sub.epilog and f"app.py {name}" in sub.epilog, name  # an example per command
        for action in sub._actions:
            assert action.help, (name, action.option_strings)
            default = action.default
            if default not in (None, False, [], argparse.SUPPRESS) and action.option_strings:
                assert "default" in action.help, (name, action.option_strings)
    text = subs.choices["run"].format_help()
    lines = text.splitlines()
    assert len(lines) <= 90 and max(map(len, lines)) <= 100
    for flag in ("--areas-layer", "--layer-sheet", "--residents-columns", "--candidates-layer"):
        assert flag in text
    assert "街道" in text and "社区" in text


def test_version_comes_from_pyproject():
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"app.py {version}"


def test_run_on_the_demo_inputs_is_synthetic_and_coords_names_are_checked(demo, tmp_path):
    """A run on the demo's generated streets says synthetic; a misspelt --coords name is refused."""
    inp = demo / "inputs"
    args = [
        "run",
        "--network", inp / "streets.osm",
        "--residents", inp / "residents.gpkg",
        "--layer", f"youth_hostel={inp / 'youth_hostels.geojson'}",
        "--formats", "csv",
    ]  # fmt: skip
    typo = cli(*args, "--coords", "resident=gcj02", "--out", tmp_path / "typo")
    assert typo.returncode == 2 and "did you mean 'residents'?" in typo.stderr, typo.stderr
    assert not (tmp_path / "typo").exists()
    r = cli(*args, "--out", tmp_path / "syn")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "syn" / "summary.json").read_text(encoding="utf-8"))
    assert s["synthetic"] is True
    assert not any("OpenStreetMap" in line for line in s["sources"])


def test_demo_on_a_local_dask_cluster_gives_the_same_summary(demo, tmp_path):
    """``--dask local:2``: snap and route per partition on two worker processes, same numbers.

    The status text of a suggestion carries the solver's milliseconds, so it is compared
    without them; every number is compared as it is.
    """
    r = cli("demo", "--out", tmp_path / "d", "--dask", "local:2", "--verbose")
    assert r.returncode == 0, r.stderr
    assert "snap and route on Dask" in r.stderr  # it did run there (logged with --verbose)
    got = json.loads((tmp_path / "d" / "summary.json").read_text(encoding="utf-8"))
    want = json.loads((demo / "summary.json").read_text(encoding="utf-8"))

    def numbers(s: dict) -> dict:
        s = {k: v for k, v in s.items() if k != "timings_s"}
        for run in s["suggestions"].values():
            run["status"] = re.sub(r"\d+ ms", "ms", run["status"])
        return s

    assert numbers(got) == numbers(want)
