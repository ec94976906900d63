"""Reading and writing one layer file: choose the format family, settle the coordinates.

Every reader returns a GeoDataFrame in WGS84 with a fresh ``RangeIndex`` (row ``i`` is data row
``i + 1`` in messages), whatever the file's format, encoding or coordinate system; every writer
goes through :mod:`layers.atomic`, so an interrupted export never leaves half a file.  The
format families themselves live beside this module (:mod:`layers.io.ogr`,
:mod:`layers.io.tables`, :mod:`layers.io.parquet`).
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from layers.crs import (
    CoordSystem,
    from_wgs84,
    is_offset_system,
    parse_coord_system,
    resolve_system,
    system_name,
    to_wgs84,
)
from layers.errors import InputError
from layers.io.files import (
    FORMATS,
    LAYER_OPTION,
    WriteResult,
    check_file,
    library_warnings,
    no_sidecar_files,
    table_format,
)
from layers.io.ogr import (
    choose_layer,
    ogr_layers,
    read_ogr,
    write_geojson,
    write_gpkg,
    write_shapefile,
)
from layers.io.parquet import is_geoparquet, read_geoparquet, read_plain_parquet, write_geoparquet
from layers.io.tables import (
    choose_sheet,
    frame_to_gdf,
    read_csv,
    read_xlsx,
    sheet_name,
    write_sheet,
    xlsx_sheets,
)
from layers.validate import (
    check_coordinates,
    check_geometries,
    check_not_empty,
)

log = logging.getLogger(__name__)


def list_layers(path: str | PathLike[str]) -> list[str]:
    """Names of the layers (GeoPackage: spatial layers; XLSX: sheets; else the file's stem)."""
    p = check_file(path, suffixes=FORMATS)
    fmt = FORMATS[p.suffix.lower()]
    if fmt == "XLSX":
        return xlsx_sheets(p)
    if fmt == "GeoPackage":
        return [name for name, _geom in ogr_layers(p, fmt) if _geom]
    return [p.stem]


def _parse_system(coords: CoordSystem | None, p: Path) -> str | CRS | None:
    if coords is None:
        return None
    try:
        return parse_coord_system(coords)
    except InputError as exc:
        raise InputError(exc.problem, file=p, fix=exc.fix) from None


def read_table(
    path: str | PathLike[str],
    *,
    layer: str | None = None,
    coords: CoordSystem | None = None,
    default_coords: CoordSystem | None = None,
    encoding: str | None = None,
    layer_option: str = LAYER_OPTION,
) -> gpd.GeoDataFrame:
    """Read a layer file into a GeoDataFrame in WGS84 (EPSG:4326).

    Parameters
    ----------
    path
        GeoJSON, GeoPackage, Shapefile, GeoParquet, CSV or XLSX.
    layer
        GeoPackage layer or XLSX sheet; needed only when the file holds several.
    coords
        The coordinate system the user declared for *this* input (``--coords residents=gcj02``,
        a plan layer's ``coords``).  It wins over the file's own CRS label, because Amap
        exports are GCJ-02 labelled EPSG:4326, and a warning says that the label was
        overridden.  GCJ-02 and BD-09 are converted to WGS84 here, once.
    default_coords
        The run's general declaration (a bare ``--coords gcj02``, the plan's top-level
        ``coords``).  It applies only to inputs that carry no CRS of their own: CSV, XLSX,
        plain Parquet, or a vector file without one.  A GeoJSON or a GeoPackage that declares
        WGS84 keeps it: shifting it by the GCJ-02 offset would move every feature ~0.5 km.
    encoding
        Text encoding; by default a Shapefile's ``.cpg`` is honoured and otherwise UTF-8 then
        GB18030/GBK are tried (the choice is logged).
    layer_option
        How the user names ``layer`` for this input (``--areas-layer NAME (plan:
        streets_layer)``), shown in the fix when the file holds several layers or sheets.

    Notes
    -----
    Office tables are read as offices write them: the header row is found below a title row
    (and a two-row merged header is joined, ``人口_60岁以上``), a CSV's separator may be ``,``
    ``;`` tab or ``|``, and numbers may carry thousands separators (``1,164``), full-width
    digits (``１２３４``) or a count unit used down the whole column (``1234人``).  Each of these
    is logged.  Library warnings raised while reading (openpyxl's "no default style", GDAL
    notes) never reach the terminal raw: the ones that matter become one log line.

    Returns
    -------
    A new GeoDataFrame with a ``RangeIndex``, its geometry column named ``geometry`` and
    ``attrs`` ``source``, ``layer``, ``encoding``, ``coords`` (the system the coordinates were
    read in) and ``coords_from`` (``"coords"``, ``"default_coords"``, ``"file"`` or
    ``"assumed"``) recording what was read.

    Raises
    ------
    InputError
        For a missing, empty, unreadable or unsupported file, an ambiguous or unknown layer,
        missing coordinate columns, bad coordinates or geometries (see :mod:`layers.validate`).
    """
    with library_warnings(path):
        return _read_table(
            path,
            layer=layer,
            coords=coords,
            default_coords=default_coords,
            encoding=encoding,
            layer_option=layer_option,
        )


def _read_table(
    path: str | PathLike[str],
    *,
    layer: str | None = None,
    coords: CoordSystem | None = None,
    default_coords: CoordSystem | None = None,
    encoding: str | None = None,
    layer_option: str = LAYER_OPTION,
) -> gpd.GeoDataFrame:
    p = check_file(path, suffixes=FORMATS)
    fmt = FORMATS[p.suffix.lower()]
    named = _parse_system(coords, p)
    general = _parse_system(default_coords, p)
    used_encoding: str | None = None
    chosen_layer: str | None = None
    system: str | CRS | None
    if fmt in ("CSV", "XLSX") or (fmt == "GeoParquet" and not is_geoparquet(p)):
        if fmt == "CSV":
            frame, used_encoding = read_csv(p, encoding)
        elif fmt == "XLSX":
            chosen_layer = choose_sheet(p, layer, layer_option)
            frame = read_xlsx(p, chosen_layer)
        else:
            frame = read_plain_parquet(p)
        check_not_empty(frame, file=p)
        system, source = (named, "coords") if named is not None else (general, "default_coords")
        gdf = frame_to_gdf(frame, p, system)
        if system is None:
            log.warning(
                "%s: no coordinate system declared; assuming WGS84. Points from Amap/Tencent are "
                "GCJ-02 and from Baidu BD-09: declare them (coords=gcj02 / bd09) or they land "
                "~0.5 km off",
                p.name,
            )
            system, source = "wgs84", "assumed"
    else:
        if fmt == "GeoParquet":
            gdf = read_geoparquet(p)
        else:
            chosen_layer = choose_layer(p, fmt, layer, layer_option)
            gdf, used_encoding = read_ogr(p, fmt, chosen_layer, encoding)
        check_not_empty(gdf, file=p)
        system, source = _vector_system(gdf, p, named=named, general=general)
    gdf = _normalise_geometry_column(gdf)
    gdf = check_geometries(gdf, file=p)
    projected = gdf.crs is not None and not CRS(gdf.crs).is_geographic
    if projected and is_offset_system(system):
        msg = f"the file is in a projected CRS ({CRS(gdf.crs).name}) but coords={system}"
        raise InputError(msg, file=p, fix="drop coords to trust the file, or re-export it")
    check_coordinates(gdf, system, file=p)
    out = to_wgs84(gdf, system).reset_index(drop=True)
    out.attrs = {
        "source": str(p),
        "layer": chosen_layer,
        "encoding": used_encoding,
        "coords": system_name(system),
        "coords_from": source,
    }
    return out


def _vector_system(
    gdf: gpd.GeoDataFrame, p: Path, *, named: str | CRS | None, general: str | CRS | None
) -> tuple[str | CRS, str]:
    system, source = resolve_system(gdf.crs, p.name, named=named, general=general)
    if system is None:
        return _file_system(gdf, p), "assumed"
    return system, source


def _file_system(gdf: gpd.GeoDataFrame, p: Path) -> str | CRS:
    """The file's own CRS; a file without one is WGS84 only if its numbers look like degrees."""
    if gdf.crs is not None:
        return parse_coord_system(CRS.from_user_input(gdf.crs))
    minx, miny, maxx, maxy = gdf.total_bounds
    if -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90:
        log.warning("%s: the file declares no coordinate system; assuming WGS84", p.name)
        return "wgs84"
    msg = "the file declares no coordinate system and its coordinates are not degrees"
    raise InputError(
        msg,
        file=p,
        fix="add the .prj file, or declare coords (e.g. EPSG:4549 for CGCS2000 3-degree zone 40)",
    )


def _normalise_geometry_column(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if gdf.geometry.name != "geometry" and "geometry" not in gdf.columns:
        gdf = gdf.rename_geometry("geometry")
    return gdf


def write_table(
    gdf: gpd.GeoDataFrame,
    path: str | PathLike[str],
    *,
    crs: CoordSystem = "wgs84",
    force: bool = False,
    layer: str | None = None,
) -> WriteResult:
    """Write a layer to GeoJSON, GeoPackage, Shapefile, GeoParquet, CSV or XLSX.

    Parameters
    ----------
    gdf
        The layer (any CRS; it is converted).  Not modified.
    path
        Output file; the suffix chooses the format.
    crs
        Coordinate system of the output: ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09`` or a
        projected EPSG/WKT.  GCJ-02/BD-09 files are labelled EPSG:4326 (they have no code).
    force
        Replace an existing file (or, for a GeoPackage, an existing layer of that name).  A new
        layer is added to an existing GeoPackage without ``force``.
    layer
        GeoPackage layer or XLSX sheet name (default: the file's stem / ``data``).

    Notes
    -----
    Infinite values (unreachable minutes) are written as empty/NULL.  Point layers go to
    CSV/XLSX as ``lon``/``lat`` columns (``x``/``y`` when projected), other shapes as WKT in a
    ``geometry`` column.  Shapefile field names are cut to 10 bytes and made unique; the
    mapping is returned and, when anything was renamed, saved as ``<name>_fields.csv``.
    """
    no_sidecar_files()
    p = Path(path)
    fmt = table_format(p)
    system = parse_coord_system(crs)
    if gdf.crs is None:
        msg = "the layer to write has no coordinate system; set its CRS (EPSG:4326) first"
        raise ValueError(msg)
    out = _plain_attributes(from_wgs84(gdf, system))
    label = system_name(system)
    if is_offset_system(system):
        log.info("%s: coordinates written in %s, labelled EPSG:4326", p.name, label)
    identity = {str(c): str(c) for c in out.columns if c != out.geometry.name}
    if fmt == "GeoPackage":
        name = layer or p.stem
        write_gpkg(out, p, name, force=force)
        return WriteResult(p, fmt, name, label, identity, (p,))
    if fmt == "Shapefile":
        mapping, files = write_shapefile(out, p, force=force)
        return WriteResult(p, fmt, None, label, mapping, files)
    if fmt in ("CSV", "XLSX"):
        sheet = sheet_name(layer or "data") if fmt == "XLSX" else None
        write_sheet(out, p, system, sheet=sheet, force=force)
        return WriteResult(p, fmt, sheet, label, identity, (p,))
    if fmt == "GeoParquet":
        write_geoparquet(out, p, force=force)
    else:
        write_geojson(out, p, force=force)
    return WriteResult(p, fmt, None, label, identity, (p,))


def _plain_attributes(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy writers can take: inf -> NaN (NULL), extra geometry columns -> WKT text."""
    out = gdf.copy()
    for col in out.columns:
        if col == out.geometry.name:
            continue
        s = out[col]
        if isinstance(s, gpd.GeoSeries) or isinstance(s.dtype, gpd.array.GeometryDtype):
            out[col] = shapely.to_wkt(np.asarray(s.array), rounding_precision=-1)
        elif pd.api.types.is_float_dtype(s.dtype):
            out[col] = s.where(np.isfinite(s.to_numpy(dtype=np.float64)))
    return out
