"""GIS exports of a study: the layers a GIS team takes into QGIS, ArcGIS or the city platform.

One call writes the six layers of a :class:`~coverage.result.StudyResult` (``facilities``,
``residents`` with minutes and covered flags per kind, ``service_areas``, ``gaps``, ``areas`` with
their metrics, ``suggestions``) in every requested format::

    <out_dir>/study.gpkg              all six layers in one GeoPackage
    <out_dir>/geojson/<layer>.geojson
    <out_dir>/shp/<layer>.shp (+ .dbf .shx .prj .cpg, and <layer>_fields.csv when names were cut)
    <out_dir>/parquet/<layer>.parquet GeoParquet
    <out_dir>/csv/<layer>.csv         UTF-8 with BOM; points as lon/lat (x/y when projected),
                                      other shapes as WKT
    <out_dir>/export.json             what was written: CRS, row counts, sources, synthetic flag

Planning targets, when the study has them, are two tables without geometry: ``targets`` (one row
per target: status, value, shortfall, sites needed, reason) and ``target_units`` (one row per
target and 街道/社区, worst first; join ``unit`` to ``areas.area`` to map them).  They go into the
GeoPackage as attribute tables (``gpkg_contents.data_type = 'attributes'``, listed by QGIS as
tables), to ``csv/`` and to ``parquet/`` (plain Parquet); GeoJSON and Shapefile hold features with
geometry only, so these formats skip them.

The format writers are :func:`layers.io.write_table` (atomic writes, inf -> NULL, Shapefile field
names cut to 10 bytes with a mapping table, ``.cpg`` = UTF-8, GCJ-02 offsets); this module only
decides what goes where.  Every target is checked before anything is written, so a refused
export (an existing file without ``force``) leaves nothing half-done.

Empty layers (no gaps, no suggestions...) are written in every format, so the set of files is
the same for every study: in the GeoPackage and the Shapefile with their geometry type and
fields, in GeoParquet with their schema, in CSV as a header, in GeoJSON as a feature collection
without features.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from coverage.result import StudyResult
from layers.atomic import atomic_path, check_target, publish_staged
from layers.crs import CoordSystem, parse_coord_system, system_crs, system_name
from layers.errors import InputError
from layers.io import shapefile_field_names, write_table

log = logging.getLogger(__name__)

#: Layer name -> attribute of :class:`StudyResult`, in the order GIS users see them.
LAYERS: Final = ("facilities", "residents", "service_areas", "gaps", "areas", "suggestions")
#: Geometry type declared for an empty layer.
_EMPTY_GEOMETRY: Final = {
    "facilities": "Point",
    "residents": "Point",
    "service_areas": "MultiPolygon",
    "gaps": "MultiPolygon",
    "areas": "MultiPolygon",
    "suggestions": "Point",
}
#: Tables without geometry (planning targets), written when not empty.
TABLES: Final = ("targets", "target_units")
#: Formats that can hold a table without geometry.
_TABLE_FORMATS: Final = ("gpkg", "parquet", "csv")
FORMATS: Final = ("gpkg", "geojson", "shp", "parquet", "csv")
GPKG_NAME: Final = "study.gpkg"
_SUFFIX: Final = {"geojson": ".geojson", "shp": ".shp", "parquet": ".parquet", "csv": ".csv"}


def _check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    out = []
    for f in formats:
        key = str(f).strip().lower().lstrip(".")
        key = {
            "shapefile": "shp",
            "geoparquet": "parquet",
            "geopackage": "gpkg",
            "json": "geojson",
        }.get(key, key)
        if key not in FORMATS:
            msg = f"export format '{f}' is not supported"
            raise InputError(msg, column="formats", fix=f"use any of {', '.join(FORMATS)}")
        if key not in out:
            out.append(key)
    if not out:
        msg = "no export format given"
        raise InputError(msg, column="formats", fix=f"use any of {', '.join(FORMATS)}")
    return tuple(out)


def result_layers(result: StudyResult) -> dict[str, gpd.GeoDataFrame]:
    """The six export layers of ``result`` (the result's own frames, not copies)."""
    return {name: getattr(result, name) for name in LAYERS}


def result_tables(result: StudyResult) -> dict[str, pd.DataFrame]:
    """The non-empty tables without geometry of ``result`` (planning targets)."""
    tables = {name: getattr(result, name) for name in TABLES}
    return {name: t for name, t in tables.items() if t is not None and not t.empty}


def _plain_table(table: pd.DataFrame) -> pd.DataFrame:
    """A copy writers can take: inf -> NaN (NULL), a fresh index."""
    out = table.reset_index(drop=True).copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col].dtype):
            out[col] = out[col].where(np.isfinite(out[col].to_numpy(dtype=np.float64)))
    return out


def _write_table(table: pd.DataFrame, path: Path, fmt: str, *, force: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, force=force) as tmp:
        if fmt == "csv":
            table.to_csv(tmp, index=False, encoding="utf-8-sig")
        else:
            table.to_parquet(tmp, index=False)


def _targets(
    out: Path,
    formats: Sequence[str],
    layers: dict[str, gpd.GeoDataFrame],
    tables: Sequence[str] = (),
) -> list[Path]:
    targets = [out / "export.json"]
    for fmt in formats:
        if fmt == "gpkg":
            targets.append(out / GPKG_NAME)
            continue
        for name in layers:
            path = out / fmt / f"{name}{_SUFFIX[fmt]}"
            targets.append(path)
            if fmt == "shp":
                targets += [path.with_suffix(s) for s in (".dbf", ".shx", ".prj", ".cpg")]
                targets.append(path.with_name(f"{name}_fields.csv"))
        if fmt in ("parquet", "csv"):
            targets += [out / fmt / f"{name}{_SUFFIX[fmt]}" for name in tables]
    return targets


def _write_empty_gpkg_layer(gdf: gpd.GeoDataFrame, path: Path, name: str, crs: CoordSystem) -> None:
    """An empty layer that still says what it would hold (geometry type, fields, CRS)."""
    frame = gdf.set_crs(system_crs(crs), allow_override=True)
    pyogrio.write_dataframe(
        frame, path, layer=name, driver="GPKG", geometry_type=_EMPTY_GEOMETRY[name]
    )


def _write_empty_vector(
    gdf: gpd.GeoDataFrame, path: Path, fmt: str, name: str, crs: CoordSystem, *, force: bool
) -> list[Path]:
    """An empty GeoJSON or Shapefile that still declares its geometry type, fields and CRS.

    The set of output files is the same whatever the data: a district with no gaps still has
    ``gaps.geojson`` and ``gaps.shp``, so scripts and QGIS projects that open them never break.
    """
    frame = gdf.set_crs(system_crs(crs), allow_override=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "geojson":
        with atomic_path(path, force=force) as tmp:
            pyogrio.write_dataframe(
                frame, tmp, layer=name, driver="GeoJSON", geometry_type=_EMPTY_GEOMETRY[name]
            )
        return [path]
    cols = [str(c) for c in frame.columns if c != frame.geometry.name]
    mapping = shapefile_field_names(cols)
    frame = frame.rename(columns=mapping)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}.tmp-", dir=path.parent))
    try:
        if any(k != v for k, v in mapping.items()):  # as for a layer with rows
            pd.DataFrame(
                {"field": list(mapping), "shapefile_field": list(mapping.values())}
            ).to_csv(staging / f"{path.stem}_fields.csv", index=False, encoding="utf-8-sig")
        pyogrio.write_dataframe(
            frame,
            staging / path.name,
            driver="ESRI Shapefile",
            encoding="UTF-8",
            geometry_type=_EMPTY_GEOMETRY[name],
        )
        written = publish_staged(sorted(staging.iterdir()), path, force=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def _check_crs(layers: dict[str, gpd.GeoDataFrame]) -> None:
    for name, gdf in layers.items():
        if gdf.crs is None:
            msg = f"the '{name}' layer of the result has no coordinate system"
            raise InputError(msg, fix="the analysis must label its frames EPSG:4326")


def export_result(
    result: StudyResult,
    out_dir: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    crs: CoordSystem | int = "wgs84",
    force: bool = False,
) -> dict[str, list[Path]]:
    """Write the study's layers for GIS use.

    Parameters
    ----------
    result
        The analysis result (frames in WGS84); not modified.
    out_dir
        Folder to write into (created if needed).
    formats
        Any of ``gpkg``, ``geojson``, ``shp``, ``parquet``, ``csv``.
    crs
        ``"wgs84"`` (default), ``"cgcs2000"`` (EPSG:4490), ``"gcj02"`` (Amap overlays: shifted
        coordinates labelled EPSG:4326), ``"bd09"``, or any EPSG code / pyproj input, e.g.
        ``4549`` for CGCS2000 / 3-degree Gauss-Kruger CM 120E.
    force
        Replace existing outputs; without it an existing target is an :class:`InputError`
        (raised before anything is written).

    Returns
    -------
    Format name -> every file written (``info`` -> ``export.json``).
    """
    fmts = _check_formats(formats)
    system = parse_coord_system(crs)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        msg = "the export folder is a file"
        raise InputError(msg, file=out, fix="give a folder path")
    layers = result_layers(result)
    tables = {name: _plain_table(t) for name, t in result_tables(result).items()}
    _check_crs(layers)
    if not force:
        for target in _targets(out, fmts, layers, list(tables)):
            check_target(target, force=False)
    out.mkdir(parents=True, exist_ok=True)
    label = system_name(system)
    written: dict[str, list[Path]] = {}

    for fmt in fmts:
        files: list[Path] = []
        if fmt == "gpkg":
            target = out / GPKG_NAME
            with atomic_path(target, force=force) as tmp:
                for name, gdf in layers.items():
                    if gdf.empty:
                        _write_empty_gpkg_layer(gdf, tmp, name, system)
                        log.info(
                            "%s: layer '%s' is empty (written with its schema)", target.name, name
                        )
                    else:
                        write_table(gdf, tmp, crs=system, layer=name)
                for name, table in tables.items():  # attribute tables, no geometry
                    pyogrio.write_dataframe(table, tmp, layer=name, driver="GPKG")
            files.append(target)
        else:
            for name, gdf in layers.items():
                path = out / fmt / f"{name}{_SUFFIX[fmt]}"
                if gdf.empty and fmt in ("geojson", "shp"):
                    files += _write_empty_vector(gdf, path, fmt, name, system, force=force)
                    log.info("layer '%s' is empty: %s written with its schema", name, path.name)
                    continue
                res = write_table(gdf, path, crs=system, force=force, layer=name)
                files += list(res.files)
            for name, table in tables.items():
                if fmt not in _TABLE_FORMATS:
                    log.info("table '%s' has no geometry: no %s file written", name, fmt)
                    continue
                path = out / fmt / f"{name}{_SUFFIX[fmt]}"
                _write_table(table, path, fmt, force=force)
                files.append(path)
        written[fmt] = files

    info = {
        "title": result.title,
        "synthetic": result.synthetic,
        "crs": label,
        "crs_label": system_crs(system).to_string(),
        "offset_coordinates": label in ("gcj02", "bd09"),
        "layers": {name: len(gdf) for name, gdf in layers.items()},
        "tables": {name: len(t) for name, t in tables.items()},
        "geometry_bounds_wgs84": _bounds(layers),
        "sources": list(result.sources),
        "files": {fmt: [str(p.relative_to(out)) for p in paths] for fmt, paths in written.items()},
    }
    info_path = out / "export.json"
    with atomic_path(info_path, force=True) as tmp:
        tmp.write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
    written["info"] = [info_path]
    log.info("exported %d layers as %s in %s to %s", len(layers), ", ".join(fmts), label, out)
    return written


def _bounds(layers: dict[str, gpd.GeoDataFrame]) -> list[float] | None:
    boxes = [
        shapely.total_bounds(np.asarray(g.to_crs(4326).geometry.array))
        for g in layers.values()
        if not g.empty
    ]
    boxes = [b for b in boxes if np.isfinite(b).all()]
    if not boxes:
        return None
    b = np.array(boxes)
    return [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())]
