"""GIS exports: every format and CRS round-trips; fields pass the checks QGIS users make."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from pyproj import CRS

from layers.crs import from_wgs84, system_crs
from layers.errors import InputError
from maps.export import LAYERS, TABLES, export_result
from tests.fixtures_result import make_result

CRSES = ("wgs84", "cgcs2000", "gcj02", 4549)  # 4549: CGCS2000 / 3-degree Gauss-Kruger CM 120E
SUFFIX = {"geojson": ".geojson", "shp": ".shp", "parquet": ".parquet", "csv": ".csv"}


@pytest.fixture(scope="module")
def result():
    return make_result()


@pytest.fixture(scope="module", params=CRSES, ids=str)
def exported(request, result, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"export-{request.param}")
    written = export_result(result, out, crs=request.param)
    return request.param, out, written


def _read(out, fmt: str, name: str, crs) -> gpd.GeoDataFrame:
    """Read a layer back the way a GIS user would, restoring full field names."""
    if fmt == "gpkg":
        return gpd.read_file(out / "study.gpkg", layer=name)
    path = out / fmt / f"{name}{SUFFIX[fmt]}"
    if fmt == "parquet":
        return gpd.read_parquet(path)
    if fmt == "csv":
        table = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=True)
        if "geometry" in table:
            geoms = shapely.from_wkt(table.pop("geometry"))
        else:
            x, y = ("x", "y") if "x" in table else ("lon", "lat")
            geoms = shapely.points(table.pop(x), table.pop(y))
        return gpd.GeoDataFrame(table, geometry=geoms, crs=system_crs(crs))
    gdf = gpd.read_file(path)
    fields = path.with_name(f"{name}_fields.csv")
    if fmt == "shp" and fields.exists():
        mapping = pd.read_csv(fields, encoding="utf-8-sig")
        gdf = gdf.rename(
            columns=dict(zip(mapping["shapefile_field"], mapping["field"], strict=True))
        )
    return gdf


def _same_values(got: pd.Series, want: pd.Series, fmt: str) -> None:
    name = want.name
    if pd.api.types.is_bool_dtype(want):
        assert [bool(v) for v in got] == [bool(v) for v in want], name
    elif pd.api.types.is_numeric_dtype(want):
        w = want.to_numpy(dtype=float)
        g = got.to_numpy(dtype=float)
        nulls = ~np.isfinite(w)  # inf (unreachable) and NaN are written as NULL
        assert np.isnan(g[nulls]).all(), name
        np.testing.assert_allclose(g[~nulls], w[~nulls], rtol=1e-12, err_msg=str(name))
    else:
        w = ["" if v is None else str(v) for v in want]
        # DBF and CSV cannot tell an empty text from NULL
        g = ["" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v) for v in got]
        if fmt == "csv":  # numeric-looking ids would be parsed as numbers by a CSV reader
            g = [s[:-2] if s.endswith(".0") and s[:-2] in w else s for s in g]
        assert g == w, name


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "shp", "parquet", "csv"])
def test_every_layer_round_trips(exported, result, fmt):
    crs, out, _ = exported
    for name in LAYERS:
        original = getattr(result, name)
        back = _read(out, fmt, name, crs)
        assert len(back) == len(original), name
        cols = [c for c in original.columns if c != original.geometry.name]
        assert set(cols) <= set(back.columns), (name, set(cols) - set(back.columns))
        for col in cols:
            _same_values(back[col], original[col], fmt)
        expected = from_wgs84(original, crs)
        tol = 1e-3 if CRS(system_crs(crs)).is_projected else 1e-8
        got = np.asarray(back.geometry.array)
        want = np.asarray(expected.geometry.array)
        assert shapely.equals_exact(
            shapely.normalize(got), shapely.normalize(want), tolerance=tol
        ).all() or (
            # polygons promoted to MultiPolygon by GeoPackage / Shapefile writers
            shapely.equals_exact(
                shapely.normalize(shapely.get_parts(got)),
                shapely.normalize(shapely.get_parts(want)),
                tolerance=tol,
            ).all()
        ), (name, fmt)
        if fmt != "csv":
            assert CRS(back.crs).to_epsg() == system_crs(crs).to_epsg(), (name, fmt)


def test_gcj02_moves_coordinates_and_says_so(result, tmp_path):
    export_result(result, tmp_path, formats=("gpkg",), crs="gcj02")
    back = gpd.read_file(tmp_path / "study.gpkg", layer="facilities")
    shift = np.hypot(
        back.geometry.x - result.facilities.geometry.x,
        back.geometry.y - result.facilities.geometry.y,
    )
    assert (shift > 0.003).all()  # a few hundred metres in Hangzhou
    info = json.loads((tmp_path / "export.json").read_text(encoding="utf-8"))
    assert info["crs"] == "gcj02" and info["offset_coordinates"] is True
    assert info["crs_label"] == "EPSG:4326"
    assert info["layers"]["residents"] == len(result.residents)


def test_geopackage_layers_and_field_types(result, tmp_path):
    written = export_result(result, tmp_path, formats=("gpkg",))
    gpkg = tmp_path / "study.gpkg"
    assert written["gpkg"] == [gpkg]
    layers = dict(pyogrio.list_layers(gpkg))
    assert list(layers) == [*LAYERS, *TABLES]  # planning targets: tables without geometry
    assert layers["facilities"] == "Point" and layers["residents"] == "Point"
    assert layers["service_areas"] == "MultiPolygon"
    info = pyogrio.read_info(gpkg, layer="residents")
    types = dict(
        zip(info["fields"], zip(info["ogr_types"], info["ogr_subtypes"], strict=True), strict=True)
    )
    for kind in result.specs:
        assert types[f"minutes_{kind}"] == ("OFTReal", "OFSTNone")
        assert types[f"covered_{kind}"][1] == "OFSTBoolean"
        assert types[f"facility_{kind}"][0] == "OFTString"
    assert types["layers_covered"][0] in ("OFTInteger", "OFTInteger64")
    # unreachable minutes are real NULLs in the file, not NaN or a sentinel
    with sqlite3.connect(gpkg) as con:
        for kind in result.specs:
            nulls = con.execute(
                f'SELECT count(*) FROM residents WHERE "minutes_{kind}" IS NULL'
            ).fetchone()[0]
            assert nulls == int(np.isinf(result.residents[f"minutes_{kind}"]).sum())
            smallest = con.execute(f'SELECT min("minutes_{kind}") FROM residents').fetchone()[0]
            assert smallest >= 0
    areas = pyogrio.read_info(gpkg, layer="areas")["fields"]
    assert {f"coverage_{k}" for k in result.specs} <= set(areas)


def test_shapefile_passes_qgis_checks(exported, result):
    _, out, written = exported
    shp_files = written["shp"]
    for name in LAYERS:
        shp = out / "shp" / f"{name}.shp"
        assert shp in shp_files
        for suffix in (".dbf", ".shx", ".prj", ".cpg"):
            assert shp.with_suffix(suffix).exists(), suffix
        assert shp.with_suffix(".cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
        fields = list(pyogrio.read_info(shp)["fields"])
        assert all(len(f.encode("utf-8")) <= 10 for f in fields)
        assert len({f.lower() for f in fields}) == len(fields)
        original = [c for c in getattr(result, name).columns if c != "geometry"]
        mapping_csv = shp.with_name(f"{name}_fields.csv")
        if any(len(c) > 10 for c in original):
            mapping = pd.read_csv(mapping_csv, encoding="utf-8-sig")
            assert list(mapping["field"]) == original
            assert list(mapping["shapefile_field"]) == fields
    res = gpd.read_file(out / "shp" / "residents.shp")
    assert list(res["area"]) == list(result.residents["area"])  # Chinese survives the DBF


def test_csv_layout(exported, result):
    crs, out, _ = exported
    projected = CRS(system_crs(crs)).is_projected
    raw = (out / "csv" / "residents.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel on Chinese Windows reads UTF-8
    res = pd.read_csv(out / "csv" / "residents.csv", encoding="utf-8-sig")
    assert ({"x", "y"} if projected else {"lon", "lat"}) <= set(res.columns)
    assert "geometry" not in res
    inf = np.isinf(result.residents["minutes_youth_hostel"]).to_numpy()
    assert res.loc[inf, "minutes_youth_hostel"].isna().all()
    sa = pd.read_csv(out / "csv" / "service_areas.csv", encoding="utf-8-sig")
    assert sa["geometry"].str.startswith(("POLYGON", "MULTIPOLYGON")).all()


def test_parquet_is_geoparquet(exported):
    _, out, _ = exported
    meta = pq.read_schema(out / "parquet" / "residents.parquet").metadata
    geo = json.loads(meta[b"geo"])
    assert geo["primary_column"] == "geometry"
    assert "geometry" in geo["columns"]


def test_empty_layers(result, tmp_path, caplog):
    r = replace(result, suggestions=result.suggestions.iloc[0:0], gaps=result.gaps.iloc[0:0])
    with caplog.at_level("INFO"):
        written = export_result(r, tmp_path)
    layers = dict(pyogrio.list_layers(tmp_path / "study.gpkg"))
    assert layers["suggestions"] == "Point" and layers["gaps"] == "MultiPolygon"
    info = pyogrio.read_info(tmp_path / "study.gpkg", layer="suggestions")
    assert info["features"] == 0
    assert {"kind", "rank", "site_id", "added_population"} <= set(info["fields"])
    assert set(pq.read_schema(tmp_path / "parquet" / "suggestions.parquet").names) >= {
        "rank",
        "geometry",
    }
    assert pd.read_csv(tmp_path / "csv" / "gaps.csv", encoding="utf-8-sig").empty
    # the same set of files as a study with gaps: empty GeoJSON/Shapefile keep type and fields
    full = tmp_path / "full"
    export_result(result, full)
    listing = lambda d: sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())  # noqa: E731
    assert listing(tmp_path / "geojson") == listing(full / "geojson")
    assert listing(tmp_path / "shp") == listing(full / "shp")
    shp = pyogrio.read_info(tmp_path / "shp" / "suggestions.shp")
    assert shp["features"] == 0 and shp["geometry_type"] == "Point"
    assert (tmp_path / "shp" / "suggestions.cpg").read_text().strip().upper() == "UTF-8"
    gj = pyogrio.read_info(tmp_path / "geojson" / "gaps.geojson")
    assert gj["features"] == 0 and gj["crs"] == "EPSG:4326"
    assert "gaps.geojson written with its schema" in caplog.text
    assert all(p.exists() for paths in written.values() for p in paths)
    assert not list(tmp_path.rglob("*.aux.xml")) and not list(tmp_path.rglob(".*tmp-*"))


def test_no_overwrite_without_force(result, tmp_path):
    export_result(result, tmp_path, formats=("csv",))
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "csv").iterdir()}
    with pytest.raises(InputError, match="exists"):
        export_result(result, tmp_path, formats=("gpkg", "csv"))
    assert not (tmp_path / "study.gpkg").exists()  # refused before anything was written
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "csv").iterdir()} == before
    export_result(result, tmp_path, formats=("gpkg", "csv"), force=True)
    assert (tmp_path / "study.gpkg").exists()
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_bad_options_are_input_errors(result, tmp_path):
    with pytest.raises(InputError, match="format"):
        export_result(result, tmp_path, formats=("kml",))
    with pytest.raises(InputError, match="coordinate system"):
        export_result(result, tmp_path, crs="mars-2")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="folder"):
        export_result(result, tmp_path / "afile")


def test_inputs_are_not_modified(result, tmp_path):
    before = {name: getattr(result, name).copy() for name in LAYERS}
    export_result(result, tmp_path, formats=("gpkg", "csv"), crs="gcj02")
    for name, frame in before.items():
        pd.testing.assert_frame_equal(pd.DataFrame(getattr(result, name)), pd.DataFrame(frame))


def test_target_tables_in_gpkg_csv_parquet(result, tmp_path, caplog):
    with caplog.at_level("INFO"):
        written = export_result(result, tmp_path)
    gpkg = tmp_path / "study.gpkg"
    with sqlite3.connect(gpkg) as con:
        kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
    assert all(kinds[name] == "attributes" for name in TABLES)  # QGIS lists them as tables
    for name in TABLES:
        want = getattr(result, name)
        for back in (
            pyogrio.read_dataframe(gpkg, layer=name),
            pd.read_csv(
                tmp_path / "csv" / f"{name}.csv", encoding="utf-8-sig", keep_default_na=True
            ),
            pd.read_parquet(tmp_path / "parquet" / f"{name}.parquet"),
        ):
            assert list(back.columns) == list(want.columns) and len(back) == len(want)
            for col in want.columns:
                _same_values(back[col], want[col], "csv")
        assert not (tmp_path / "geojson" / f"{name}.geojson").exists()
        assert not (tmp_path / "shp" / f"{name}.shp").exists()
    # sites needed is NULL where no candidate set can meet the target, never a sentinel
    with sqlite3.connect(gpkg) as con:
        nulls = con.execute("SELECT count(*) FROM targets WHERE sites_needed IS NULL").fetchone()[0]
    assert nulls == int(result.targets["sites_needed"].isna().sum()) == 1
    info = json.loads((tmp_path / "export.json").read_text(encoding="utf-8"))
    assert info["tables"] == {name: len(getattr(result, name)) for name in TABLES}
    assert "csv/targets.csv" in info["files"]["csv"]
    assert "has no geometry" in caplog.text
    assert all(p.exists() for paths in written.values() for p in paths)
    # a study without targets writes no target table anywhere
    bare = replace(result, targets=pd.DataFrame(), target_units=pd.DataFrame())
    export_result(bare, tmp_path / "bare", formats=("gpkg", "csv"))
    assert [n for n, _ in pyogrio.list_layers(tmp_path / "bare" / "study.gpkg")] == list(LAYERS)
    assert not (tmp_path / "bare" / "csv" / "targets.csv").exists()
