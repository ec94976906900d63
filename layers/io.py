"""Reading and writing layers in the formats planners and GIS teams exchange.

Every reader returns a GeoDataFrame in WGS84 with a fresh ``RangeIndex`` (row ``i`` is data row
``i + 1`` in messages), whatever the file's format, encoding or coordinate system; every writer
goes through :mod:`layers.atomic`, so an interrupted export never leaves half a file.

Formats: GeoJSON, GeoPackage (several layers), Shapefile, GeoParquet, CSV and XLSX.  Tables
without a geometry column need coordinate columns (``lon/lat``, ``lng/lat``,
``longitude/latitude``, ``x/y``, ``经度/纬度``, ``东经/北纬``) or WKT in a ``geometry`` column.
Chinese text is read from UTF-8 (with or without BOM) and GBK/GB18030, which is what Excel and
ArcGIS on Chinese Windows produce; Shapefiles honour their ``.cpg``.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io as _io
import logging
import re
import shutil
import tempfile
import unicodedata
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Final

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from layers.atomic import atomic_path, check_target
from layers.crs import (
    CoordSystem,
    from_wgs84,
    is_offset_system,
    parse_coord_system,
    system_crs,
    system_name,
    to_wgs84,
)
from layers.errors import InputError
from layers.validate import (
    COORD_PAIRS,
    WKT_COLUMNS,
    check_coordinates,
    check_file,
    check_geometries,
    check_lonlat_columns,
    check_not_empty,
    closest,
    find_coordinate_columns,
    sibling,
)

log = logging.getLogger(__name__)

#: Suffix -> format name.  ``.json`` is read as GeoJSON.
FORMATS: Final[dict[str, str]] = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".shp": "Shapefile",
    ".parquet": "GeoParquet",
    ".geoparquet": "GeoParquet",
    ".csv": "CSV",
    ".xlsx": "XLSX",
}
_DRIVERS: Final = {"GeoJSON": "GeoJSON", "GeoPackage": "GPKG", "Shapefile": "ESRI Shapefile"}
_SHP_PARTS: Final = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml")
_DBF_NAME_BYTES: Final = 10
_XLSX_MAX_ROWS: Final = 1_048_575
_TEXT_ENCODINGS: Final = ("utf-8", "gb18030")  # GB18030 is a superset of GBK and GB2312
#: The fix shown for an input with several layers when the caller does not say which input.
_LAYER_OPTION: Final = (
    "--residents-layer, --areas-layer, --communities-layer, --candidates-layer NAME or "
    "--layer-sheet KIND=NAME (plan: residents_layer, streets_layer, communities_layer, "
    'candidates_layer, or layer = "NAME" in a [layers] entry)'
)


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_table` wrote.

    Attributes
    ----------
    path
        The main file.
    format
        Format name (``GeoPackage``, ``Shapefile``...).
    layer
        GeoPackage layer or XLSX sheet written, else ``None``.
    crs
        The coordinate system of the written coordinates (``wgs84``, ``gcj02``, ``EPSG:4549``).
    field_map
        Original column -> written field name, for every column (Shapefile names are cut to
        10 bytes; other formats keep names unchanged).
    files
        Every file created or replaced.
    """

    path: Path
    format: str
    layer: str | None
    crs: str
    field_map: dict[str, str] = field(default_factory=dict)
    files: tuple[Path, ...] = ()


def table_format(path: str | PathLike[str]) -> str:
    """The format name for ``path``'s suffix (``InputError`` for unsupported suffixes)."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        msg = f"unsupported file type '{p.suffix or '(none)'}'"
        raise InputError(msg, file=p, fix=f"use one of {', '.join(FORMATS)}")
    return fmt


def list_layers(path: str | PathLike[str]) -> list[str]:
    """Names of the layers (GeoPackage: spatial layers; XLSX: sheets; else the file's stem)."""
    p = check_file(path, suffixes=FORMATS)
    fmt = FORMATS[p.suffix.lower()]
    if fmt == "XLSX":
        return _xlsx_sheets(p)
    if fmt == "GeoPackage":
        return [name for name, _geom in _ogr_layers(p, fmt) if _geom]
    return [p.stem]


# =================================================================================== reading


#: Library warnings that say nothing about the data (openpyxl's styles and extensions it does
#: not read): logged at debug level only.
_NOISE: Final = (
    "contains no default style",
    "extension is not supported",
    "Data Validation",
    "Conditional Formatting",
)


@contextlib.contextmanager
def library_warnings(path: str | PathLike[str]) -> Iterator[None]:
    """Catch the warnings libraries raise while a file is read; log each once, as one line.

    pyogrio, openpyxl and pandas print warnings with their own source lines
    (``UserWarning: Workbook contains no default style, apply openpyxl's default``), which a
    planner cannot act on.  Noise goes to the debug log; anything else becomes one warning
    naming the file.  When the read fails, the :class:`InputError` alone is shown.
    """
    name = Path(path).name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: set[str] = set()
    for w in caught:
        text = " ".join(str(w.message).split())
        if text in seen:
            continue
        seen.add(text)
        if any(n in text for n in _NOISE):
            log.debug("%s: %s: %s", name, w.category.__name__, text)
        else:
            log.warning("%s: while reading: %s", name, text[:200])


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
    layer_option: str = _LAYER_OPTION,
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
    layer_option: str = _LAYER_OPTION,
) -> gpd.GeoDataFrame:
    p = check_file(path, suffixes=FORMATS)
    fmt = FORMATS[p.suffix.lower()]
    named = _parse_system(coords, p)
    general = _parse_system(default_coords, p)
    used_encoding: str | None = None
    chosen_layer: str | None = None
    system: str | CRS | None
    if fmt in ("CSV", "XLSX") or (fmt == "GeoParquet" and not _is_geoparquet(p)):
        if fmt == "CSV":
            frame, used_encoding = _read_csv(p, encoding)
        elif fmt == "XLSX":
            chosen_layer = _choose_sheet(p, layer, layer_option)
            frame = _read_xlsx(p, chosen_layer)
        else:
            frame = _read_plain_parquet(p)
        check_not_empty(frame, file=p)
        system, source = (named, "coords") if named is not None else (general, "default_coords")
        gdf = _frame_to_gdf(frame, p, system)
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
            gdf = _read_geoparquet(p)
        else:
            chosen_layer = _choose_layer(p, fmt, layer, layer_option)
            gdf, used_encoding = _read_ogr(p, fmt, chosen_layer, encoding)
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


_DISPLAY: Final = {"wgs84": "WGS84", "gcj02": "GCJ-02", "bd09": "BD-09", "cgcs2000": "CGCS2000"}


def crs_label(system: CoordSystem) -> str:
    """``EPSG:4326`` for a CRS with a code, ``GCJ-02`` for the offset systems (for messages)."""
    parsed = parse_coord_system(system)
    if isinstance(parsed, str):
        return f"EPSG:{_EPSG_LABEL[parsed]}" if parsed in _EPSG_LABEL else _DISPLAY[parsed]
    return system_name(parsed)


_EPSG_LABEL: Final = {"wgs84": 4326, "cgcs2000": 4490}


def resolve_system(
    crs: object,
    where: str,
    *,
    named: str | CRS | None,
    general: str | CRS | None,
) -> tuple[str | CRS | None, str]:
    """The system a layer's coordinates are in, and why (``coords``/``default_coords``/``file``).

    ``crs`` is the layer's own label (``None`` when it has none).  The input's own declaration
    (``named``) wins over the label, with a warning since it contradicts the file; the run's
    general declaration (``general``) fills in only for a layer without a label.  Returns
    ``(None, "file")`` for an unlabelled layer with no declaration.
    """
    declared = None if crs is None else parse_coord_system(CRS.from_user_input(crs))
    if named is not None:
        if declared is not None and not _same_system(declared, named):
            log.warning(
                "%s declares %s; treated as %s because this input was declared coords=%s",
                where,
                crs_label(declared),
                _DISPLAY.get(str(named), system_name(named)),
                system_name(named),
            )
        return named, "coords"
    if declared is not None:
        if general is not None and not _same_system(declared, general):
            log.info(
                "%s declares %s; the general coords=%s is for tables without a coordinate "
                "system, so it is not applied here (declare this input to override its label)",
                where,
                crs_label(declared),
                system_name(general),
            )
        return declared, "file"
    if general is not None:
        log.info(
            "%s declares no coordinate system; read as %s (coords=%s)",
            where,
            _DISPLAY.get(str(general), system_name(general)),
            system_name(general),
        )
        return general, "default_coords"
    return None, "file"


def _same_system(a: str | CRS, b: str | CRS) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return bool(a == b)


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


# ---------------------------------------------------------------------------- OGR formats


@functools.cache
def no_sidecar_files() -> None:
    """Stop GDAL writing ``.aux.xml`` files beside the files it opens.

    GDAL's persistent auxiliary metadata (PAM) drops ``areas.gpkg.aux.xml`` into the user's own
    folder when it merely reads a GeoPackage with dataset metadata; a reader must never write
    next to its inputs, and outputs must be the same set every time.  Set once per process, at
    the first read or write (never at import).
    """
    pyogrio.set_gdal_config_options({"GDAL_PAM_ENABLED": "NO"})


def _ogr_layers(p: Path, fmt: str) -> list[tuple[str, str | None]]:
    no_sidecar_files()
    try:
        raw = pyogrio.list_layers(p)
    except Exception as exc:  # GDAL raises several error types for unreadable files
        raise _unreadable(p, fmt, exc) from None
    return [(str(name), None if geom is None else str(geom)) for name, geom in raw]


def _unreadable(p: Path, fmt: str, exc: BaseException) -> InputError:
    text = str(exc).replace(f"'{p}'", "the file").replace(str(p), "the file")
    detail = " ".join(text.split(";")[0].split())[:160].rstrip(".")
    msg = f"cannot be read as {fmt} ({detail})"
    return InputError(msg, file=p, fix=f"check that it really is a {fmt} file, or export it again")


def _choose_layer(p: Path, fmt: str, layer: str | None, option: str) -> str | None:
    layers = _ogr_layers(p, fmt)
    spatial = [name for name, geom in layers if geom]
    names = [name for name, _ in layers]
    if layer is not None:
        if layer in names:
            return layer
        hit = closest(layer, names)
        hint = f"did you mean '{hit}'? " if hit else ""
        msg = f"has no layer '{layer}'"
        raise InputError(
            msg, file=p, fix=f"{hint}the layers are: {', '.join(names)}; name one with {option}"
        )
    if fmt != "GeoPackage":
        return None
    if len(spatial) == 1:
        return spatial[0]
    if not spatial:
        msg = "the GeoPackage has no layer with geometries"
        raise InputError(msg, file=p, fix="export a spatial layer")
    msg = f"the GeoPackage holds {len(spatial)} layers: {', '.join(spatial)}"
    raise InputError(msg, file=p, fix=f"choose one with {option}")


def _read_ogr(
    p: Path, fmt: str, layer: str | None, encoding: str | None
) -> tuple[gpd.GeoDataFrame, str | None]:
    used = encoding
    dbf = sibling(p, ".dbf") if fmt == "Shapefile" else None
    source = "the encoding passed"
    if fmt == "Shapefile" and encoding is None:
        cpg = sibling(p, ".cpg")
        if cpg is not None:
            encoding = _cpg_encoding(cpg, p)
            used = (
                cpg.read_bytes().decode("ascii", errors="replace").strip()
            )  # as the user wrote it
            source = cpg.name
            log.info("%s: text encoding %s (%s) from %s", p.name, used, encoding, cpg.name)
        elif dbf is not None:
            used = _dbf_text_encoding(dbf, p)
            if used is None:
                msg = "cannot tell the text encoding of the .dbf (neither UTF-8 nor GBK)"
                raise InputError(
                    msg, file=p, fix=f"add {p.stem}.cpg naming the encoding, or pass encoding="
                )
            log.info("%s: no .cpg file; text decoded as %s", p.name, used.upper())
            encoding = used
    no_sidecar_files()
    try:
        gdf = pyogrio.read_dataframe(p, layer=layer, encoding=encoding)
    except UnicodeDecodeError:
        row = _dbf_first_undecodable(dbf, encoding or "utf-8") if dbf is not None else None
        msg = f"text is not in the encoding {used or 'UTF-8'} named by {source}"
        raise InputError(
            msg,
            file=p,
            row=row,
            fix=f"write the right encoding (UTF-8 or GBK) in {p.stem}.cpg or pass the encoding "
            "(--encoding), or re-save the layer as UTF-8",
        ) from None
    except Exception as exc:
        raise _unreadable(p, fmt, exc) from None
    if fmt == "Shapefile":
        gdf = _restore_field_names(gdf, p)
    return gdf, used


#: Code pages written in .cpg files by ArcGIS, QGIS and GDAL -> Python codecs.
_CODE_PAGES: Final = {"65001": "utf-8", "936": "gb18030", "950": "big5"}
_GB_FAMILY: Final = frozenset({"gbk", "gb2312", "gb18030", "cp936", "hz"})


def _cpg_encoding(cpg: Path, p: Path) -> str:
    """The Python codec named by a Shapefile's ``.cpg`` (``UTF-8``, ``936``, ``ANSI 936``...).

    GDAL reads an unknown name as Latin-1 and a code page number such as ``65001`` not at
    all, which garbles every Chinese name without a word; so the name is resolved here and an
    unknown one is an error.  GBK and GB2312 are read as GB18030, their superset.
    """
    text = cpg.read_bytes().decode("ascii", errors="replace").strip()
    key = text.upper().removeprefix("ANSI").strip().replace(" ", "")
    codec: str | None = None
    if key in _CODE_PAGES:
        codec = _CODE_PAGES[key]
    elif key.startswith("8859") and key[4:].strip("_-").isdigit():
        codec = f"iso8859-{key[4:].strip('_-')}"
    elif key.isdigit():
        codec = f"cp{key}"
    elif key:
        codec = key
    try:
        name = codecs.lookup(codec).name if codec else None
    except LookupError:
        name = None
    if name is None:
        shown = text[:40] or "(nothing)"
        msg = f"{cpg.name} names an unknown text encoding '{shown}'"
        raise InputError(
            msg,
            file=p,
            fix=f"write UTF-8 or GBK in {cpg.name} (whichever the .dbf really is), "
            "or pass the encoding (--encoding)",
        )
    return "gb18030" if name in _GB_FAMILY else name


def _restore_field_names(gdf: gpd.GeoDataFrame, p: Path) -> gpd.GeoDataFrame:
    """Undo the 10-byte cut of field names using the ``<name>_fields.csv`` written beside it."""
    mapping_file = p.with_name(f"{p.stem}_fields.csv")
    if not mapping_file.exists():
        return gdf
    try:
        table = pd.read_csv(mapping_file, dtype=str, encoding="utf-8-sig")
        back = dict(zip(table["shapefile_field"], table["field"], strict=True))
    except (KeyError, ValueError, pd.errors.ParserError):
        log.warning("%s: ignoring unreadable field-name mapping %s", p.name, mapping_file.name)
        return gdf
    rename = {c: back[c] for c in gdf.columns if c in back and back[c] != c}
    if rename:
        log.info("%s: %d field names restored from %s", p.name, len(rename), mapping_file.name)
    return gdf.rename(columns=rename)


def _dbf_text(dbf: Path) -> tuple[list[bytes], list[bytes]]:
    """A DBF's field names and, per record, the bytes of its character fields.

    Only character ('C') fields are kept: numeric and date fields are ASCII anyway, and the
    header's binary parts would make every decoding fail.
    """
    data = dbf.read_bytes()
    if len(data) < 32:
        return [], []
    n_records = int.from_bytes(data[4:8], "little")
    header_len = int.from_bytes(data[8:10], "little")
    record_len = int.from_bytes(data[10:12], "little")
    names: list[bytes] = []
    char_fields: list[tuple[int, int]] = []
    offset = 1  # deletion flag
    pos = 32
    while pos + 32 <= min(header_len, len(data)) and data[pos] != 0x0D:
        desc = data[pos : pos + 32]
        names.append(desc[:11].split(b"\0", 1)[0])
        length = desc[16]
        if chr(desc[11]) == "C":
            char_fields.append((offset, length))
        offset += length
        pos += 32
    body = data[header_len : header_len + n_records * record_len]
    if record_len <= 0 or not char_fields:
        return names, []
    n = len(body) // record_len
    table = np.frombuffer(body[: n * record_len], dtype=np.uint8).reshape(n, record_len)
    cols = np.concatenate([np.arange(start, start + length) for start, length in char_fields])
    records = table[:, cols]
    return names, [bytes(r) for r in records]


def _dbf_text_encoding(dbf: Path, p: Path) -> str | None:
    """Guess the encoding of a DBF's text (no ``.cpg``): UTF-8, else GB18030 for all of it.

    A DBF that is UTF-8 except for some records is an error naming the first of them.
    """
    names, records = _dbf_text(dbf)
    bad = _mixed_utf8(records)
    if bad is not None:
        msg = "the .dbf text is UTF-8 except this record, which is in another encoding (GBK?)"
        raise InputError(
            msg,
            file=p,
            row=bad + 1,
            fix="correct that record in a GIS and save the layer again as UTF-8",
        )
    blob = b"\n".join(names + records)
    for enc in _TEXT_ENCODINGS:
        try:
            blob.decode(enc)
        except UnicodeDecodeError:
            continue
        return enc
    return None


def _dbf_first_undecodable(dbf: Path, encoding: str) -> int | None:
    """1-based number of the first record whose text is not in ``encoding`` (``None``: none)."""
    try:
        _names, records = _dbf_text(dbf)
        codecs.lookup(encoding)
    except (LookupError, OSError):
        return None
    for number, record in enumerate(records, start=1):
        try:
            record.decode(encoding)
        except UnicodeDecodeError:
            return number
    return None


# ------------------------------------------------------------------------------- parquet


def _is_geoparquet(p: Path) -> bool:
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(p).metadata or {}
    except Exception as exc:
        raise _unreadable(p, "GeoParquet", exc) from None
    return b"geo" in meta


def _read_geoparquet(p: Path) -> gpd.GeoDataFrame:
    try:
        return gpd.read_parquet(p)
    except Exception as exc:
        raise _unreadable(p, "GeoParquet", exc) from None


def _read_plain_parquet(p: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(p)
    except Exception as exc:
        raise _unreadable(p, "Parquet", exc) from None


# ---------------------------------------------------------------------------- CSV and XLSX


def _decode(raw: bytes, p: Path, encoding: str | None) -> tuple[str, str]:
    """The file's text: UTF-8 (with or without BOM), else GB18030 (GBK) for the whole file.

    A file that is UTF-8 except for some rows (a row pasted from a GBK file) is an error
    naming the first such row: decoding it all as GB18030 would garble every UTF-8 name, and
    decoding it as UTF-8 with replacement would garble the odd rows, both without a word.
    """
    if encoding is not None:
        try:
            return raw.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            msg = f"cannot decode the text as {encoding} ({type(exc).__name__})"
            raise InputError(
                msg, file=p, fix="pass the right encoding, or leave it out to detect it"
            ) from None
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    bad_row = _csv_mixed_row(raw)
    if bad_row is not None:
        where = "the header" if bad_row == 0 else "this row"
        msg = f"the file is UTF-8 except {where}, which is in another encoding (GBK?)"
        raise InputError(
            msg,
            file=p,
            row=bad_row or None,
            fix="re-save the file as UTF-8 (Excel: 'CSV UTF-8'), or retype that row",
        )
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        msg = "the text is neither UTF-8 nor GBK/GB18030"
        raise InputError(
            msg, file=p, fix="save the table as 'CSV UTF-8' or pass encoding="
        ) from None
    log.info("%s: not UTF-8; decoded as GB18030 (GBK)", p.name)
    return text, "gb18030"


_CJK = re.compile("[\u3400-\u9fff]")


def _mixed_utf8(chunks: list[bytes]) -> int | None:
    """Index of the first chunk that is not UTF-8 when the others are, else ``None``.

    GBK text is almost never valid UTF-8 by accident (2 of 3,700 Hangzhou OSM names, as
    Latin or Cyrillic letters, never as Chinese characters), so a chunk that decodes as UTF-8
    into Chinese characters, or a majority of valid UTF-8 chunks, means the file is UTF-8 and
    the chunks that fail are the odd ones out.
    """
    bad: list[int] = []
    good = 0
    chinese = False
    for i, chunk in enumerate(chunks):
        if chunk.isascii():
            continue
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(i)
            continue
        good += 1
        chinese = chinese or bool(_CJK.search(text))
    if bad and (chinese or good > len(bad)):
        return bad[0]
    return None


def _csv_mixed_row(raw: bytes) -> int | None:
    """The first data row (1-based; 0 for the header) that breaks an otherwise UTF-8 CSV."""
    text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    try:
        rows = [r for r in csv.reader(_io.StringIO(text)) if any(c.strip() for c in r)]
        chunks = [",".join(r).encode("utf-8", errors="surrogateescape") for r in rows]
    except csv.Error:
        chunks = [line for line in raw.splitlines() if line.strip()]
    return _mixed_utf8(chunks)


def _read_csv(p: Path, encoding: str | None) -> tuple[pd.DataFrame, str]:
    """Read a CSV table; a row with more fields than the header is an error naming the row.

    The separator is sniffed from the header (``,`` ``;`` tab or ``|``: European Excel writes
    ``;``, some platforms tabs).  pandas' C parser does the work; only when it rejects the
    layout does the csv module re-read the text to find the offending row (and to accept
    trailing empty cells, which Excel sometimes writes).  The header is read as an ordinary
    row, so pandas never turns surplus leading fields into an index and shifts values into the
    wrong columns; a title row above it is skipped (see :func:`_find_header`).
    """
    text, used = _decode(p.read_bytes(), p, encoding)
    if not text.strip():
        msg = "the file holds no table (only blank text)"
        raise InputError(msg, file=p, fix="export the table again")
    sep = _sniff_separator(text, p)
    try:
        raw = pd.read_csv(
            _io.StringIO(text),
            header=None,
            sep=sep,
            dtype=object,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
        )
    except pd.errors.ParserError:
        raw = pd.DataFrame(_csv_rows(text, p, sep), dtype=object)
    return _table_body(raw, p), used


_SEPARATORS: Final = (",", ";", "\t", "|")
_SEPARATOR_NAMES: Final = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "'|'"}


def _sniff_separator(text: str, p: Path) -> str:
    """The CSV separator: the one of ``, ; tab |`` that splits the header into most columns.

    :class:`csv.Sniffer` proposes one from the first lines; it is kept only when it splits the
    header line (the first line holding any separator, so a title line is passed over) at
    least as finely as the comma, so ordinary comma files never change reading.
    """
    lines = [ln for ln in text.splitlines()[:_HEADER_SCAN_ROWS] if ln.strip()]
    header = next((ln for ln in lines if any(c in ln for c in _SEPARATORS)), "")
    if not header:
        return ","

    def fields(sep: str) -> int:
        try:
            return len(next(csv.reader([header], delimiter=sep)))
        except (csv.Error, StopIteration):
            return 0

    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(_SEPARATORS)).delimiter
    except csv.Error:
        sniffed = ","
    best = max(_SEPARATORS, key=lambda c: (fields(c), c == ","))
    sep = sniffed if sniffed in _SEPARATORS and fields(sniffed) >= fields(best) else best
    if sep != "," and fields(sep) > 1:
        log.info("%s: columns separated by %s", p.name, _SEPARATOR_NAMES[sep])
        return sep
    return ","


def _csv_rows(text: str, p: Path, sep: str = ",") -> list[list[str | None]]:
    try:
        rows = [
            r
            for r in csv.reader(_io.StringIO(text), delimiter=sep, skipinitialspace=True)
            if any(r)
        ]
    except csv.Error as exc:
        msg = f"is not a well-formed CSV table ({exc})"
        raise InputError(msg, file=p, fix="check the quotes in the file") from None
    head, n_header = _find_header([list(r) for r in rows[: _HEADER_SCAN_ROWS * 5]])
    width = max(len(r) for r in rows[head : head + n_header])
    for number, row in enumerate(rows[head + n_header :], start=1):
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            msg = (
                f"is not a well-formed CSV table: the row has {len(row)} fields "
                f"but the header has {width}"
            )
            raise InputError(
                msg,
                file=p,
                row=number,
                fix=f"check the separators ({_SEPARATOR_NAMES[sep]}) and quotes in that row",
            )
    return [[c.strip() or None for c in (r + [""] * width)[:width]] for r in rows]


def _table_body(raw: pd.DataFrame, p: Path) -> pd.DataFrame:
    """The data rows of a raw CSV/XLSX grid under its header, with typed columns."""
    raw = raw.dropna(how="all").reset_index(drop=True)  # Excel's formatted-but-empty rows
    if raw.empty:
        return pd.DataFrame()
    grid = raw.to_numpy(dtype=object)
    head, n_header = _find_header([list(r) for r in grid[: _HEADER_SCAN_ROWS * 5]])
    if n_header == 2:
        header = _joined_header(list(grid[head]), list(grid[head + 1]))
        log.warning(
            "%s: two-row header (rows %d and %d) joined into column names: %s",
            p.name,
            head + 1,
            head + 2,
            ", ".join(h for h in header if h),
        )
    else:
        header = ["" if _blank(h) else str(h).strip() for h in grid[head]]
    if head:
        log.warning(
            "%s: the header is row %d; the %s above it (%s) skipped as a title",
            p.name,
            head + 1,
            "row" if head == 1 else f"{head} rows",
            " ".join(str(c).strip() for c in grid[0] if not _blank(c))[:60],
        )
    body = raw.iloc[head + n_header :].reset_index(drop=True)
    keep = [bool(h) or body[c].notna().any() for h, c in zip(header, body.columns, strict=True)]
    body = body.loc[:, keep]
    header = [h for h, k in zip(header, keep, strict=True) if k]
    seen: set[str] = set()
    for k, name in enumerate(header):
        if not name:
            header[k] = name = f"column_{k + 1}"
        if name in seen:
            msg = f"column '{name}' appears twice in the header"
            if head or n_header == 2:
                msg += f" (row {head + n_header} of the sheet)"
            raise InputError(msg, file=p, column=name, fix="give every column its own name")
        seen.add(name)
    body.columns = header
    return _infer_types(body, p)


def _xlsx_sheets(p: Path) -> list[str]:
    try:
        with pd.ExcelFile(p, engine="openpyxl") as book:
            return [str(s) for s in book.sheet_names]
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise _unreadable(p, "XLSX workbook", exc) from None


def _choose_sheet(p: Path, sheet: str | None, option: str) -> str:
    sheets = _xlsx_sheets(p)
    if sheet is not None:
        if sheet in sheets:
            return sheet
        hit = closest(sheet, sheets)
        hint = f"did you mean '{hit}'? " if hit else ""
        msg = f"has no sheet '{sheet}'"
        raise InputError(
            msg, file=p, fix=f"{hint}the sheets are: {', '.join(sheets)}; name one with {option}"
        )
    if len(sheets) == 1:
        return sheets[0]
    with pd.ExcelFile(p, engine="openpyxl") as book:
        filled = [s for s in sheets if not pd.read_excel(book, sheet_name=s, nrows=1).empty]
    if len(filled) == 1:
        return filled[0]
    if not filled:
        return sheets[0]  # reported as an empty layer
    msg = f"the workbook has {len(filled)} sheets with data: {', '.join(filled)}"
    raise InputError(msg, file=p, fix=f"choose one with {option}")


def _read_xlsx(p: Path, sheet: str) -> pd.DataFrame:
    try:
        raw = pd.read_excel(p, sheet_name=sheet, engine="openpyxl", header=None)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise _unreadable(p, "XLSX workbook", exc) from None
    return _table_body(raw, p)


# ------------------------------------------------------------------ header rows and numbers

_HEADER_SCAN_ROWS: Final = 10
_WKT_START = re.compile(r"^\s*(multi)?(point|linestring|polygon)\b|^\s*geometrycollection\b", re.I)


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _is_label(value: object) -> bool:
    """Text that can be a column name: not a number (in any office spelling), not WKT."""
    if not isinstance(value, str) or not value.strip():
        return False
    return _office_number(value) is None and not _WKT_START.match(value)


def _header_like(row: list[object], width: int) -> bool:
    cells = [str(c).strip() for c in row if not _blank(c)]
    return (
        len(cells) >= max(2, -(-width // 2))
        and all(_is_label(c) for c in cells)
        and len(set(cells)) == len(cells)
    )


def _find_header(rows: list[list[object]]) -> tuple[int, int]:
    """Where the header is, and whether it spans two rows: ``(row, 1 or 2)``, 0-based.

    Offices put a title above the header (``上城区助餐点名单（2026年）`` in A1) and merge a
    group name over two columns (``人口`` over ``总数 | 60岁以上``).  The header is the first
    row whose non-empty cells are at least half the table's width, all distinct text and no
    numbers; rows above it are titles.  It spans two rows when the next row is text too and
    has a label under an empty cell of the first (what a merged cell leaves).  A table whose
    first row is not header-like (column names such as ``2020``) keeps its first row.
    """
    if not rows:
        return 0, 1
    width = max(sum(not _blank(c) for c in r) for r in rows)
    head = 0
    if not _header_like(rows[0], width):
        for i in range(1, min(len(rows) - 1, _HEADER_SCAN_ROWS)):
            if _header_like(rows[i], width):
                head = i
                break
    if head + 2 < len(rows):
        top, below = rows[head], rows[head + 1]
        labels = [c for c in below if not _blank(c)]
        merged = any(_blank(t) and not _blank(b) for t, b in zip(top, below, strict=False))
        if (
            merged
            and len(labels) >= 2
            and all(_is_label(c) for c in labels)
            and not all(_is_label(c) or _blank(c) for c in rows[head + 2])
        ):
            return head, 2
    return head, 1


def _joined_header(top: list[object], below: list[object]) -> list[str]:
    """Column names of a two-row header: ``人口_60岁以上`` under a merged ``人口``.

    A merged cell leaves its value in the first column only; an empty top cell whose left
    neighbour carries a group name over a label takes that group name.
    """
    names: list[str] = []
    group: str | None = None
    for t, b in zip(top, below, strict=False):
        t_text = None if _blank(t) else str(t).strip()
        b_text = None if _blank(b) else str(b).strip()
        if t_text is not None:
            group = t_text if b_text is not None else None
        elif b_text is not None and group is not None:
            t_text = group
        else:
            group = None
        if t_text and b_text:
            names.append(t_text if t_text == b_text else f"{t_text}_{b_text}")
        else:
            names.append(t_text or b_text or "")
    return names


_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
#: Count units offices write after numbers (``1234人``, ``12 床``); stripped only when a column's
#: numbers all carry the same one.
_COUNT_UNITS: Final = "人户个床张"
_WITH_UNIT = re.compile(rf"^(.*?\d)\s*([{_COUNT_UNITS}])$")
_LEADING_ZERO = re.compile(r"^[+-]?0\d")
_FLOAT_MARK = re.compile(r"[.eEnN]")
_MAX_NUMBER_CHARS = 15


def _office_number(text: str) -> float | None:
    """``text`` as a number in an office spelling (``1,164``, ``１２３４``, ``1234人``) or None."""
    t = unicodedata.normalize("NFKC", text).strip()
    m = _WITH_UNIT.match(t)
    if m:
        t = m.group(1).strip()
    if _THOUSANDS.match(t):
        t = t.replace(",", "")
    try:
        return float(t)
    except ValueError:
        return None


def _number_texts(text: list[str]) -> tuple[list[str], list[str]]:
    """Office spellings of numbers made plain, and what was changed (for the log).

    Full-width digits become ASCII (NFKC), thousands separators go when every comma in the
    column sits in one (``30,27`` would be a decimal comma: left alone), and a count unit goes
    when every number of the column carries the same one.
    """
    norm = [unicodedata.normalize("NFKC", t).strip() for t in text]
    notes = []
    if norm != text:
        notes.append("full-width digits")
    units = [_WITH_UNIT.match(t) for t in norm]
    found = {m.group(2) for m in units if m}
    if len(found) == 1 and all(units):
        norm = [m.group(1).strip() for m in units if m]
        notes.append(f"unit '{found.pop()}' removed")
    commas = [t for t in norm if "," in t]
    if commas and all(_THOUSANDS.match(t) for t in commas):
        norm = [t.replace(",", "") for t in norm]
        notes.append("thousands separators")
    return norm, notes


def _infer_types(frame: pd.DataFrame, p: Path | None = None) -> pd.DataFrame:
    """Numbers from text columns, keeping codes as text.

    Integers stay integers unless a value is written with a decimal point, so ``1.0`` comes
    back as a float and ``1`` as an integer, as written.  Codes with leading zeros (``001``)
    and digit strings longer than 15 characters (ID numbers a float would round) stay text.
    Text is stripped of surrounding spaces.  Numbers written as offices write them (``1,164``,
    ``１２３４``, ``1234人`` down a whole column) are read as numbers, and the log says so; cells
    that are numbers already (XLSX) are kept as they are.
    """
    out: dict[str, object] = {}
    for col in frame.columns:
        values = frame[col].to_numpy(dtype=object)
        mask = ~pd.isna(values)
        if not mask.any():
            out[col] = np.full(len(values), np.nan)
            continue
        present = values[mask]
        is_text = np.array([isinstance(v, str) for v in present])
        is_number = np.array(
            [isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in present]
        )
        if not (is_text | is_number).all():
            out[col] = frame[col]  # dates, booleans from a workbook: as read
            continue
        raw_text = [str(v).strip() for v in present[is_text]]
        plain, notes = _number_texts(raw_text)
        num_text = pd.to_numeric(np.asarray(plain, dtype=object), errors="coerce")
        numeric = (
            not np.isnan(np.asarray(num_text, dtype=np.float64)).any()
            and not any(_LEADING_ZERO.match(t) for t in plain)
            and max(map(len, plain), default=0) <= _MAX_NUMBER_CHARS
        )
        if numeric:
            num = np.empty(len(present), dtype=np.float64)
            num[is_text] = num_text
            num[is_number] = present[is_number].astype(np.float64)
            whole = not any(_FLOAT_MARK.search(t) for t in plain) and all(
                float(v).is_integer() for v in present[is_number]
            )
            if notes and p is not None:
                log.info("%s: column '%s' read as numbers (%s)", p.name, col, ", ".join(notes))
            if mask.all() and whole:
                out[col] = num.astype(np.int64)
            else:
                full = np.full(len(values), np.nan)
                full[mask] = num
                out[col] = full
        elif mask.all() and is_text.all() and {t.lower() for t in raw_text} <= {"true", "false"}:
            out[col] = np.array([t.lower() == "true" for t in raw_text])
        else:
            stripped = values.copy()
            stripped[mask] = [str(v).strip() if isinstance(v, str) else v for v in present]
            stripped[~mask] = None
            out[col] = pd.Series(stripped, index=frame.index, dtype=object)
    return pd.DataFrame(out, index=frame.index)


def _frame_to_gdf(frame: pd.DataFrame, p: Path, system: str | CRS | None) -> gpd.GeoDataFrame:
    """Points from coordinate columns, or shapes from a WKT column, checked row by row."""
    pair = find_coordinate_columns(frame.columns, file=p)
    crs = system_crs(system) if system is not None else CRS.from_epsg(4326)
    if pair is None:
        wkt_col = next(c for c in frame.columns if str(c).strip().lower() in WKT_COLUMNS)
        text = frame[wkt_col]
        geoms = shapely.from_wkt(text.where(text.notna(), None).to_numpy(), on_invalid="ignore")
        bad = np.flatnonzero(shapely.is_missing(geoms) & text.notna().to_numpy())
        if bad.size:
            first = int(bad[0])
            msg = f"not valid WKT: {str(text.iloc[first])[:40]!r}"
            raise InputError(
                msg,
                file=p,
                row=first + 1,
                column=str(wkt_col),
                fix="write e.g. POINT (120.15 30.27)",
            )
        return gpd.GeoDataFrame(frame.drop(columns=[wkt_col]), geometry=geoms, crs=crs)
    lon_col, lat_col = pair
    lon, lat = check_lonlat_columns(frame, lon_col, lat_col, system, file=p)
    attrs = frame.drop(columns=[lon_col, lat_col])
    return gpd.GeoDataFrame(attrs, geometry=shapely.points(lon, lat), crs=crs)


# =================================================================================== writing


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
        msg = "the layer to write has no coordinate system"
        raise InputError(msg, file=p, fix="set its CRS before writing (it should be EPSG:4326)")
    out = _plain_attributes(from_wgs84(gdf, system))
    label = system_name(system)
    if is_offset_system(system):
        log.info("%s: coordinates written in %s, labelled EPSG:4326", p.name, label)
    identity = {str(c): str(c) for c in out.columns if c != out.geometry.name}
    if fmt == "GeoPackage":
        name = layer or p.stem
        _write_gpkg(out, p, name, force=force)
        return WriteResult(p, fmt, name, label, identity, (p,))
    if fmt == "Shapefile":
        mapping, files = _write_shapefile(out, p, force=force)
        return WriteResult(p, fmt, None, label, mapping, files)
    if fmt in ("CSV", "XLSX"):
        sheet = _sheet_name(layer or "data") if fmt == "XLSX" else None
        table = _to_table(out, system)
        with atomic_path(p, force=force) as tmp:
            if fmt == "CSV":
                table.to_csv(tmp, index=False, encoding="utf-8-sig")
            else:
                if len(table) > _XLSX_MAX_ROWS:
                    msg = f"{len(table)} rows do not fit in an Excel sheet"
                    raise InputError(msg, file=p, fix="write CSV, GeoPackage or GeoParquet")
                table.to_excel(tmp, index=False, sheet_name=sheet, engine="openpyxl")
        return WriteResult(p, fmt, sheet, label, identity, (p,))
    with atomic_path(p, force=force) as tmp:
        if fmt == "GeoParquet":
            out.to_parquet(tmp)
        else:
            # name the layer after the target, not the temporary file (GeoJSON "name" member)
            pyogrio.write_dataframe(out, tmp, layer=p.stem, driver=_DRIVERS[fmt])
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


def _write_gpkg(out: gpd.GeoDataFrame, p: Path, name: str, *, force: bool) -> None:
    if p.exists():
        existing = [n for n, _ in _ogr_layers(p, "GeoPackage")]
        if name in existing and not force:
            msg = f"the GeoPackage already has a layer '{name}'"
            raise InputError(msg, file=p, fix="choose another layer name or pass --force")
        # Copy, add the layer to the copy, then swap it in: readers never see a half-written
        # GeoPackage, and a failure leaves the original untouched.
        with atomic_path(p, force=True) as tmp:
            shutil.copyfile(p, tmp)
            pyogrio.write_dataframe(out, tmp, layer=name, driver="GPKG")
        return
    with atomic_path(p, force=force) as tmp:
        pyogrio.write_dataframe(out, tmp, layer=name, driver="GPKG")


def shapefile_field_names(columns: list[str]) -> dict[str, str]:
    """Map column names to unique DBF field names of at most 10 UTF-8 bytes.

    Names are cut on character boundaries (a Chinese character takes 3 bytes), ``:`` becomes
    ``_`` as GDAL would make it, and clashes, compared case-insensitively as GDAL does, get
    ``_1``, ``_2``... suffixes.
    """
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for col in columns:
        clean = col.replace(":", "_")  # GDAL launders ':' (OSM keys such as name:zh)
        name, k = _cut_bytes(clean, _DBF_NAME_BYTES), 0
        while name.lower() in used:
            k += 1
            suffix = f"_{k}"
            name = _cut_bytes(clean, _DBF_NAME_BYTES - len(suffix)) + suffix
        used.add(name.lower())
        mapping[col] = name
    return mapping


def _cut_bytes(text: str, limit: int) -> str:
    out = ""
    for ch in text:
        if len((out + ch).encode("utf-8")) > limit:
            break
        out += ch
    return out or "f"


def _write_shapefile(
    out: gpd.GeoDataFrame, p: Path, *, force: bool
) -> tuple[dict[str, str], tuple[Path, ...]]:
    kinds = set(out.geom_type.str.replace("Multi", ""))
    if len(kinds) > 1:
        msg = f"a Shapefile holds one geometry type; this layer mixes {', '.join(sorted(kinds))}"
        raise InputError(msg, file=p, fix="write a GeoPackage instead")
    check_target(p, force=force)
    cols = [str(c) for c in out.columns if c != out.geometry.name]
    mapping = shapefile_field_names(cols)
    renamed = {k: v for k, v in mapping.items() if k != v}
    frame = out.rename(columns=mapping)
    p.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{p.stem}.tmp-", dir=p.parent))
    try:
        staged = staging / p.name
        promote = len(set(out.geom_type)) > 1
        pyogrio.write_dataframe(
            frame, staged, driver="ESRI Shapefile", encoding="UTF-8", promote_to_multi=promote
        )
        fields_csv = p.with_name(f"{p.stem}_fields.csv")
        if renamed:  # expected for Shapefiles: said, with the mapping file, not warned
            log.info(
                "%s: %d field names shortened to 10 bytes for the Shapefile; mapping in %s",
                p.name,
                len(renamed),
                fields_csv.name,
            )
            pd.DataFrame(
                {"field": list(mapping), "shapefile_field": list(mapping.values())}
            ).to_csv(staging / fields_csv.name, index=False, encoding="utf-8-sig")
        written = sorted(staging.iterdir())
        new_names = {f.name for f in written}
        for suffix in _SHP_PARTS:  # stale parts of a replaced Shapefile (old spatial index...)
            old = p.with_name(p.stem + suffix)
            if old.exists() and old.name not in new_names:
                old.unlink()
        if fields_csv.exists() and fields_csv.name not in new_names:
            fields_csv.unlink()
        files = []
        for part in written:
            target = p.with_name(part.name)
            with atomic_path(target, force=True) as tmp:
                part.replace(tmp)
            files.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return mapping, tuple(files)


def _sheet_name(name: str) -> str:
    cleaned = re.sub(r"[\[\]:*?/\\]", "_", name)[:31]
    return cleaned or "data"


def _to_table(out: gpd.GeoDataFrame, system: str | CRS) -> pd.DataFrame:
    geoms = np.asarray(out.geometry.array)
    attrs = pd.DataFrame(out.drop(columns=out.geometry.name))
    lower = {str(c).strip().lower() for c in attrs.columns}
    points = len(geoms) > 0 and bool((shapely.get_type_id(geoms) == 0).all())
    clash = any(a in lower or b in lower for a, b in COORD_PAIRS) or bool(lower & set(WKT_COLUMNS))
    if points and not clash:
        projected = isinstance(system, CRS) and not system.is_geographic
        xname, yname = ("x", "y") if projected else ("lon", "lat")
        table = attrs.copy()
        table[xname] = shapely.get_x(geoms)
        table[yname] = shapely.get_y(geoms)
        return table
    table = attrs.copy()
    table["geometry"] = shapely.to_wkt(geoms, rounding_precision=-1)
    return table
