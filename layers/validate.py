"""Every check of user input, in one place, each failing with a one-line :class:`InputError`.

Readers (:mod:`layers.io`) and the layer model (:mod:`layers.model`) call these functions; nothing
else decides what counts as bad input, so the wording stays consistent and every message names
the file, the row (1-based, header excluded) or column, and the fix.  Rows are counted by
position, never by index label, so they match what a user sees in a spreadsheet or GIS table.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS

from layers.crs import CHINA_BOX, CHINESE_SYSTEMS, CoordSystem, in_china, system_name
from layers.errors import InputError

log = logging.getLogger(__name__)

FileRef = str | PathLike[str] | None

#: Column pairs recognised as point coordinates, in order of preference (lower-case).
COORD_PAIRS: tuple[tuple[str, str], ...] = (
    ("lon", "lat"),
    ("lng", "lat"),
    ("longitude", "latitude"),
    ("long", "lat"),
    ("经度", "纬度"),
    ("东经", "北纬"),
    ("point_x", "point_y"),
    ("x", "y"),
)
#: Column names recognised as WKT geometry text (lower-case).
WKT_COLUMNS: tuple[str, ...] = ("geometry", "wkt", "geom", "the_geom")

_POLYGONAL = frozenset({"Polygon", "MultiPolygon"})
_MAX_LISTED = 5


def _key(name: object) -> str:
    return "".join(str(name).strip().lower().split())


def closest(name: str, options: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The option most like ``name`` (case-insensitive), or ``None`` if nothing is close."""
    opts = [str(o) for o in options]
    by_key = {_key(o): o for o in opts}
    hit = difflib.get_close_matches(_key(name), list(by_key), n=1, cutoff=cutoff)
    return by_key[hit[0]] if hit else None


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    hit = closest(name, options)
    return f"did you mean '{hit}'? " if hit else ""


def _listing(values: Sequence[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:_MAX_LISTED])
    return shown + (f" (and {len(values) - _MAX_LISTED} more)" if len(values) > _MAX_LISTED else "")


def _rows_text(positions: NDArray[np.intp]) -> str:
    """' (N rows in all: 3, 8, ...)' when several rows share a problem."""
    if len(positions) <= 1:
        return ""
    return f" ({len(positions)} rows in all: {_listing([int(p) + 1 for p in positions])})"


def _reject_rows(
    rows: NDArray[np.intp], problem: str, *, file: FileRef, column: str, fix: str
) -> None:
    """Raise for the first of ``rows`` (0-based positions), saying how many share the problem."""
    if rows.size:
        msg = f"{problem}{_rows_text(rows)}"
        raise InputError(msg, file=file, row=int(rows[0]) + 1, column=column, fix=fix)


def _numbers(
    frame: pd.DataFrame, column: str, *, label: str, file: FileRef, fix: str
) -> NDArray[np.float64]:
    """A column as floats (empty cells NaN); text that is not a number is rejected by row."""
    raw = frame[column]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    text = np.flatnonzero(np.isnan(num) & raw.notna().to_numpy())
    if text.size:
        _reject_rows(
            text,
            f"{label} {raw.iloc[int(text[0])]!r} is not a number",
            file=file,
            column=column,
            fix=fix,
        )
    return num


def _reject_negative(num: NDArray[np.float64], label: str, *, file: FileRef, column: str) -> None:
    neg = np.flatnonzero(num < 0)
    if neg.size:
        _reject_rows(
            neg,
            f"{label} is negative ({num[int(neg[0])]:g})",
            file=file,
            column=column,
            fix="correct the value",
        )


# --------------------------------------------------------------------------------- columns


def find_column(
    columns: Iterable[object],
    wanted: str,
    aliases: Sequence[str] = (),
    *,
    file: FileRef = None,
    required: bool = True,
    option: str | None = None,
    given: bool = False,
) -> str | None:
    """The actual name of the column meaning ``wanted``, matched case- and space-insensitively.

    ``wanted`` is tried first, then each alias (e.g. ``人口`` for ``population``).  When nothing
    matches and ``required``, the error suggests the closest existing column (a misspelling such
    as ``populaton``) and how to name the column explicitly: ``option`` is the flag or plan key
    with ``{col}`` where the column goes (``--residents-columns population={col}``), never a
    Python keyword.  ``given`` says the name came from the user, so the fix is to check it.
    """
    cols = [str(c) for c in columns if str(c) != "geometry"]
    by_key: dict[str, str] = {}
    for c in cols:
        by_key.setdefault(_key(c), c)
    for name in (wanted, *aliases):
        if _key(name) in by_key:
            return by_key[_key(name)]
    if not required:
        return None
    hit = None
    for name in (wanted, *aliases):
        hit = closest(name, cols, cutoff=0.75)
        if hit:
            break
    if given:
        fix = (
            f"did you mean '{hit}'? write {option.format(col=hit)}"
            if hit and option
            else "check the column name given"
            + (f" with {option.format(col=wanted)}" if option else "")
        )
    elif hit:
        fix = f"rename '{hit}' to '{wanted}'" + (
            f" or name it with {option.format(col=hit)}" if option else ""
        )
    else:
        fix = f"add a '{wanted}' column" + (
            f" or name yours with {option.format(col='COLUMN')}" if option else ""
        )
    msg = f"missing column '{wanted}'"
    raise InputError(msg, file=file, column=wanted, fix=f"{fix}; the columns are: {_listing(cols)}")


def find_coordinate_columns(
    columns: Iterable[object], *, file: FileRef = None
) -> tuple[str, str] | None:
    """The (longitude, latitude) columns of a point table, or ``None`` when there is a WKT column.

    Raises when neither is found, naming the recognised headers and suggesting the closest
    one for a misspelt header (``longtitude`` -> ``longitude``).
    """
    cols = [str(c) for c in columns]
    by_key = {_key(c): c for c in cols}
    for lon, lat in COORD_PAIRS:
        if lon in by_key and lat in by_key:
            return by_key[lon], by_key[lat]
    if any(w in by_key for w in WKT_COLUMNS):
        return None
    singles = [n for pair in COORD_PAIRS for n in pair]
    for lon, lat in COORD_PAIRS:
        if lon in by_key or lat in by_key:
            have, missing = (lon, lat) if lon in by_key else (lat, lon)
            hit = closest(missing, cols)
            fix = (
                f"rename '{hit}' to '{missing}'"
                if hit and _key(hit) not in singles
                else f"add the '{missing}' column"
            )
            msg = f"found coordinate column '{by_key[have]}' but no '{missing}' column"
            raise InputError(msg, file=file, column=missing, fix=fix)
    suggestions = []
    for c in cols:
        hit = closest(c, singles, cutoff=0.7)
        if hit:
            suggestions.append(f"'{c}' -> '{hit}'")
    hint = f"rename {', '.join(suggestions)}; " if suggestions else ""
    msg = "no coordinate columns found"
    raise InputError(
        msg,
        file=file,
        fix=f"{hint}name them lon/lat, lng/lat, longitude/latitude, x/y, 经度/纬度 or 东经/北纬, "
        "or give WKT in a 'geometry' column",
    )


# ------------------------------------------------------------------------------- emptiness


def check_not_empty(frame: pd.DataFrame, *, file: FileRef = None, what: str = "layer") -> None:
    """An empty layer is always a mistake (wrong sheet, wrong filter, header only)."""
    if len(frame) == 0:
        msg = f"the {what} has no rows"
        raise InputError(msg, file=file, fix="check that the right file, layer or sheet was given")


# ------------------------------------------------------------------------------ geometries


def check_geometries(
    gdf: gpd.GeoDataFrame,
    *,
    file: FileRef = None,
    allowed: Iterable[str] | None = None,
    what: str = "layer",
) -> gpd.GeoDataFrame:
    """Reject missing/empty geometries and wrong types; repair invalid ones when it is safe.

    A repair is safe when :func:`shapely.make_valid` keeps the geometry's dimension and leaves
    something non-empty (a bow-tie polygon becomes two triangles).  A polygon that collapses
    to a line, or a line to a point, is not repaired silently: it is an error naming the row.
    Returns a new frame when anything was repaired (the input is never modified).
    """
    geoms = np.asarray(gdf.geometry.array)
    missing = np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if missing.size:
        first = int(missing[0])
        msg = f"geometry is missing or empty{_rows_text(missing)}"
        raise InputError(
            msg, file=file, row=first + 1, fix="give every feature a location or delete the row"
        )
    if allowed is not None:
        allowed_set = set(allowed)
        names = np.asarray(gdf.geom_type)
        bad = np.flatnonzero(~np.isin(names, list(allowed_set)))
        if bad.size:
            first = int(bad[0])
            msg = (
                f"{what} needs {' or '.join(sorted(allowed_set))} geometries, "
                f"found {names[first]}{_rows_text(bad)}"
            )
            raise InputError(
                msg,
                file=file,
                row=first + 1,
                fix=f"give {what}s as {' or '.join(sorted(allowed_set))}",
            )
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if not invalid.size:
        return gdf
    fixed = geoms.copy()
    for pos in invalid:
        before = geoms[pos]
        reason = shapely.is_valid_reason(before)
        after = _safe_repair(before)
        if after is None:
            msg = f"invalid geometry ({reason}) that cannot be repaired without changing its type"
            raise InputError(
                msg,
                file=file,
                row=int(pos) + 1,
                fix="fix the geometry in a GIS (e.g. QGIS 'Fix geometries') or delete the row",
            )
        fixed[pos] = after
    log.warning(
        "%s: repaired %d invalid geometr%s with shapely.make_valid (rows %s); check them",
        file or what,
        len(invalid),
        "y" if len(invalid) == 1 else "ies",
        _listing([int(p) + 1 for p in invalid]),
    )
    out = gdf.copy()
    out[out.geometry.name] = gpd.GeoSeries(fixed, index=gdf.index, crs=gdf.crs)
    return out


def _safe_repair(geom: shapely.Geometry) -> shapely.Geometry | None:
    dim = shapely.get_dimensions(geom)
    repaired = shapely.make_valid(geom)
    if repaired.geom_type == "GeometryCollection":
        parts = [g for g in shapely.get_parts(repaired) if shapely.get_dimensions(g) == dim]
        if not parts:
            return None
        repaired = shapely.union_all(parts)
    if repaired.is_empty or shapely.get_dimensions(repaired) != dim:
        return None
    if dim == 2 and repaired.area <= 0:
        return None
    return repaired


def check_coordinates(
    gdf: gpd.GeoDataFrame, system: CoordSystem | None, *, file: FileRef = None
) -> None:
    """Check the coordinates of a longitude-latitude layer, before any conversion.

    NaN and out-of-range coordinates, swapped latitude/longitude (a point that is only in
    China when its coordinates are swapped) and, for a Chinese system (GCJ-02, BD-09,
    CGCS2000), features outside China are errors naming the row.  Projected layers are
    checked for NaN only.
    """
    geoms = np.asarray(gdf.geometry.array)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    bad = np.flatnonzero(~np.isfinite(coords).all(axis=1))
    if bad.size:
        rows = np.unique(owner[bad])
        msg = f"coordinates are NaN or infinite{_rows_text(rows)}"
        raise InputError(msg, file=file, row=int(rows[0]) + 1, fix="correct or delete the row")
    if not _is_geographic(gdf.crs, system):
        return
    b = shapely.bounds(geoms)
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    _check_lonlat_values(cx, cy, system, file=file, lon_col=None, lat_col=None, bounds=b)


def _is_geographic(crs: Any, system: CoordSystem | None) -> bool:
    if isinstance(system, str):
        return True  # the four named systems are all longitude-latitude
    if isinstance(system, CRS):
        return bool(system.is_geographic)
    return crs is None or bool(CRS.from_user_input(crs).is_geographic)


def check_lonlat_columns(
    frame: pd.DataFrame,
    lon_col: str,
    lat_col: str,
    system: CoordSystem | None,
    *,
    file: FileRef = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Parse and check the coordinate columns of a point table; return them as floats.

    Text that is not a number, empty cells, swapped columns, values out of range or outside
    China (for a Chinese system) are errors naming the row and the column.  Values that look
    like projected metres when longitude/latitude were expected ask for the CRS.
    """
    out = []
    for col in (lon_col, lat_col):
        num = _numbers(
            frame,
            col,
            label="coordinate",
            file=file,
            fix="write decimal degrees such as 120.1551 (no degree signs or letters)",
        )
        _reject_infinite(num, "coordinate", file=file, column=col)
        _reject_rows(
            np.flatnonzero(np.isnan(num)),
            "coordinate is empty",
            file=file,
            column=col,
            fix="fill it or delete the row",
        )
        out.append(num)
    lon, lat = out
    if _is_geographic(None, system):
        _check_lonlat_values(lon, lat, system, file=file, lon_col=lon_col, lat_col=lat_col)
    return lon, lat


def _check_lonlat_values(
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    system: CoordSystem | None,
    *,
    file: FileRef,
    lon_col: str | None,
    lat_col: str | None,
    bounds: NDArray[np.float64] | None = None,
) -> None:
    sysname = system_name(system) if system is not None else "longitude/latitude"
    here = np.asarray(in_china(lon, lat))
    swapped = np.flatnonzero(~here & np.asarray(in_china(lat, lon)))
    big = np.flatnonzero((np.abs(lon) > 1000) | (np.abs(lat) > 1000))
    if big.size and swapped.size == 0:
        first = int(big[0])
        msg = (
            f"coordinates ({lon[first]:.1f}, {lat[first]:.1f}) look like projected metres, "
            f"not {sysname} degrees"
        )
        raise InputError(
            msg,
            file=file,
            row=first + 1,
            fix="declare the projected CRS (e.g. coords=EPSG:4549 for CGCS2000 3-degree zone 40)",
        )
    if swapped.size:
        first = int(swapped[0])
        where = (
            f"'{lon_col}' holds latitudes and '{lat_col}' longitudes"
            if lon_col
            else ("x holds latitudes and y longitudes")
        )
        msg = (
            f"longitude and latitude look swapped ({lon[first]:.6g}, {lat[first]:.6g} is only "
            f"in China when swapped): {where}{_rows_text(swapped)}"
        )
        raise InputError(
            msg,
            file=file,
            row=first + 1,
            column=lon_col,
            fix="swap the two columns (longitude is about 73-135 in China, latitude 18-54)",
        )
    for values, col, limit, label in (
        (lon, lon_col, 180.0, "longitude"),
        (lat, lat_col, 90.0, "latitude"),
    ):
        bad = np.flatnonzero(np.abs(values) > limit)
        if bad.size:
            first = int(bad[0])
            msg = f"{label} {values[first]:.6g} is outside [-{limit:g}, {limit:g}]{_rows_text(bad)}"
            raise InputError(msg, file=file, row=first + 1, column=col, fix="correct the value")
    if system is not None and isinstance(system, str) and system in CHINESE_SYSTEMS:
        if bounds is not None:
            x0, y0, x1, y1 = CHINA_BOX
            touches = (
                (bounds[:, 2] >= x0)
                & (bounds[:, 0] <= x1)
                & (bounds[:, 3] >= y0)
                & (bounds[:, 1] <= y1)
            )
            outside = np.flatnonzero(~touches)
        else:
            outside = np.flatnonzero(~here)
        if outside.size:
            first = int(outside[0])
            msg = (
                f"({lon[first]:.6g}, {lat[first]:.6g}) is outside China but the layer was "
                f"declared {sysname}, which is only used in China{_rows_text(outside)}"
            )
            raise InputError(
                msg,
                file=file,
                row=first + 1,
                column=lon_col,
                fix="check the coordinates, or declare the right system (wgs84 or an EPSG code)",
            )


# ------------------------------------------------------------------------- numbers and ids


def check_unique_ids(
    frame: pd.DataFrame, column: str, *, file: FileRef = None, label: str = "id"
) -> None:
    """Ids (or names used as keys) must be unique: results are joined back by them."""
    values = frame[column].astype(str).to_numpy()
    seen: dict[str, int] = {}
    for pos, v in enumerate(values):
        if v in seen:
            msg = f"duplicate {label} '{v}' in rows {seen[v] + 1} and {pos + 1}"
            raise InputError(
                msg, file=file, row=pos + 1, column=column, fix=f"make every {label} unique"
            )
        seen[v] = pos


#: More people than this in one resident point or polygon is a typo or a unit mistake (the
#: most populous 街道 in China have a few hundred thousand people; a whole city is one feature
#: only in a wrong file).
MAX_PEOPLE_PER_FEATURE = 5_000_000


def _reject_infinite(num: NDArray[np.float64], label: str, *, file: FileRef, column: str) -> None:
    _reject_rows(
        np.flatnonzero(np.isinf(num)),
        f"{label} is infinite",
        file=file,
        column=column,
        fix="write a finite number",
    )


def check_counts(
    frame: pd.DataFrame,
    column: str,
    *,
    file: FileRef = None,
    label: str | None = None,
    allow_missing: bool = False,
    max_count: float = MAX_PEOPLE_PER_FEATURE,
) -> NDArray[np.float64]:
    """Parse a head-count column (population, elderly, ...): numbers, >= 0, whole people.

    A count above ``max_count`` for one feature (``1e12``, a city's total pasted into one row)
    would make that feature outweigh the whole district in every coverage rate, so it is
    rejected with its row rather than averaged in.  Infinite values are rejected (``int64``
    cannot hold them); NaN is "missing" and allowed only where ``allow_missing``.

    Returns the values as float64 (NaN only where ``allow_missing``).
    """
    label = label or column
    num = _numbers(frame, column, label=label, file=file, fix="write a whole number")
    _reject_infinite(num, label, file=file, column=column)
    if not allow_missing:
        _reject_rows(
            np.flatnonzero(np.isnan(num)),
            f"{label} is empty",
            file=file,
            column=column,
            fix="fill it (0 if nobody) or delete the row",
        )
    _reject_negative(num, label, file=file, column=column)
    with np.errstate(invalid="ignore"):
        huge = np.flatnonzero(num > max_count)
        frac = np.flatnonzero(np.isfinite(num) & (np.abs(num - np.round(num)) > 1e-9))
    if huge.size:
        _reject_rows(
            huge,
            f"{label} {num[int(huge[0])]:,.0f} is not plausible for one feature "
            f"(more than {max_count:,.0f} people)",
            file=file,
            column=column,
            fix="correct the value (a typo, or a total pasted into one row?)",
        )
    if frac.size:
        _reject_rows(
            frac,
            f"{label} is not a whole number ({num[int(frac[0])]:g})",
            file=file,
            column=column,
            fix="round it to whole people",
        )
    return num


def check_group_not_above(
    group: NDArray[np.float64],
    population: NDArray[np.float64],
    *,
    group_col: str,
    population_col: str,
    file: FileRef = None,
) -> None:
    """A target group (60+, 18-35) is part of the population, never more."""
    with np.errstate(invalid="ignore"):
        over = np.flatnonzero(group > population)
    if over.size:
        first = int(over[0])
        msg = (
            f"{group_col} ({group[first]:g}) exceeds {population_col} "
            f"({population[first]:g}){_rows_text(over)}"
        )
        raise InputError(
            msg,
            file=file,
            row=first + 1,
            column=group_col,
            fix=f"check both columns: {group_col} counts part of the {population_col}",
        )


def check_capacity(
    frame: pd.DataFrame, column: str, *, file: FileRef = None
) -> NDArray[np.float64]:
    """Capacity (seats, beds, rooms): a non-negative number, or empty for unknown."""
    num = _numbers(
        frame,
        column,
        label="capacity",
        file=file,
        fix="write a number, or leave it empty if unknown",
    )
    _reject_infinite(num, "capacity", file=file, column=column)
    _reject_negative(num, "capacity", file=file, column=column)
    return num


# --------------------------------------------------------------------------- kinds, extent


def check_kind(kind: str, allowed: Iterable[str], *, file: FileRef = None) -> str:
    """``kind`` must be a layer of the layer table (built-in or user-defined)."""
    kinds = list(allowed)
    if kind in kinds:
        return kind
    msg = f"unknown layer kind '{kind}'"
    raise InputError(
        msg,
        file=file,
        fix=f"{_did_you_mean(kind, kinds)}the kinds are {', '.join(kinds)}; "
        "add a new kind as a [section] of the layer table",
    )


def check_group_columns(
    residents: pd.DataFrame,
    groups: Iterable[str],
    *,
    file: FileRef = None,
    needed_by: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Every target group a layer needs (``elderly`` for canteens...) must be a residents column.

    Called right after the residents are read, so a missing column fails in seconds rather
    than after the network build.  ``needed_by`` names the layers serving each group.
    """
    needed_by = needed_by or {}
    cols = [str(c) for c in residents.columns]
    for group in groups:
        if group not in cols:
            needs = f" (needed by {', '.join(needed_by[group])})" if needed_by.get(group) else ""
            hit = closest(group, cols)
            col = hit or "COLUMN"
            msg = f"residents have no '{group}' column{needs}"
            raise InputError(
                msg,
                file=file,
                column=group,
                fix=f"{f'did you mean {hit!r}? ' if hit else ''}name the column with "
                f'--residents-columns {group}={col} (plan: {group} = "{col}" under '
                "[residents_columns]), or add it to the residents file",
            )


def check_overlap(
    gdf: gpd.GeoDataFrame, extent_polygon_wgs84: shapely.Geometry, *, file: FileRef = None
) -> float:
    """The share of features touching the study extent; an error when none does.

    A layer entirely outside the network (another district, GCJ-02 read as WGS84 far away, a
    wrong CRS) would otherwise give empty results that look like a coverage gap.
    """
    if len(gdf) == 0:
        check_not_empty(gdf, file=file)
    wgs = gdf if gdf.crs is None or CRS(gdf.crs).to_epsg() == 4326 else gdf.to_crs(4326)
    hits = np.asarray(wgs.intersects(extent_polygon_wgs84))
    share = float(hits.mean())
    if share == 0.0:
        lb = np.round(wgs.total_bounds, 4).tolist()
        eb = np.round(shapely.bounds(extent_polygon_wgs84), 4).tolist()
        msg = f"no feature lies in the study area (layer bounds {lb}, study area bounds {eb})"
        raise InputError(
            msg,
            file=file,
            fix="check that the layer is for this district and that its coordinate system was "
            "declared correctly (GCJ-02/BD-09 data read as WGS84 is shifted by ~0.5 km)",
        )
    if share < 1.0:
        log.warning(
            "%s: %d of %d features lie outside the study area",
            file or "layer",
            int((~hits).sum()),
            len(hits),
        )
    return share


def pick_named(file: Path, wanted: str, names: list[str], *, noun: str, option: str) -> str:
    """``wanted`` when the file has it (a layer, a sheet); else one line naming the closest.

    ``noun`` is what the names are ("layer", "sheet"); ``option`` the flag that names one.
    """
    if wanted in names:
        return wanted
    hit = closest(wanted, names)
    hint = f"did you mean '{hit}'? " if hit else ""
    msg = f"has no {noun} '{wanted}'"
    raise InputError(
        msg, file=file, fix=f"{hint}the {noun}s are: {', '.join(names)}; name one with {option}"
    )
