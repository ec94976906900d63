"""The layer model: facilities, residents, areas and candidate sites with the columns analysis uses.

Users' tables name things in many ways (``名称``, ``人口``, ``床位数``, ``经度``...).  These readers
recognise the common names, check the values (through :mod:`layers.validate`) and return frames
with the schema of :mod:`coverage.result`, so nothing downstream looks at raw headers:

========== ==============================================================================
facilities ``facility_id`` (str), ``kind``, ``name`` (str), ``capacity`` (float, NaN unknown)
residents  ``resident_id`` (str), ``name``, ``population`` (int) and group columns
           (``elderly``, ``youth``... int, never above ``population``)
areas      ``area`` (name), ``level`` (``street``/``community``), ``parent`` (str)
candidates ``site_id`` (str), ``name``, ``capacity``
========== ==============================================================================

The schema columns come first; every other column the user gave is kept after them (a column
whose name clashes with a schema column is kept as ``<name>_input``).  Missing ids are generated
from the row number (``canteen-0007``), so the same file always gives the same ids.  All frames
are in WGS84.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from layers.crs import CoordSystem, parse_coord_system, resolve_system, to_wgs84
from layers.errors import InputError
from layers.io import read_table
from layers.spec import LayerSpec, load_layer_table
from layers.validate import (
    check_capacity,
    check_coordinates,
    check_counts,
    check_geometries,
    check_group_not_above,
    check_kind,
    check_not_empty,
    check_unique_ids,
    find_column,
)

log = logging.getLogger(__name__)

Source: TypeAlias = str | PathLike[str] | gpd.GeoDataFrame

FACILITY_COLUMNS = ("facility_id", "kind", "name", "capacity")
RESIDENT_COLUMNS = ("resident_id", "name", "population")
AREA_COLUMNS = ("area", "level", "parent")
CANDIDATE_COLUMNS = ("site_id", "name", "capacity")
AREA_LEVELS = ("street", "community")

DEFAULT_GROUP_COLS: Mapping[str, str] = {"elderly": "elderly", "youth": "youth"}

ID_ALIASES = ("id", "编号", "序号", "代码", "code", "objectid")
NAME_ALIASES = (
    "name",
    "名称",
    "名字",
    "机构名称",
    "站点名称",
    "设施名称",
    "单位名称",
    "小区名称",
    "小区",
    "name:zh",
    "title",
)
CAPACITY_ALIASES = (
    "capacity",
    "容量",
    "床位",
    "床位数",
    "座位",
    "座位数",
    "餐位",
    "餐位数",
    "房间",
    "房间数",
    "beds",
    "seats",
    "rooms",
)
POPULATION_ALIASES = (
    "population",
    "pop",
    "人口",
    "人口数",
    "总人口",
    "常住人口",
    "户籍人口",
    "居住人口",
    "居民数",
)
GROUP_ALIASES: Mapping[str, tuple[str, ...]] = {
    "elderly": (
        "老年人口",
        "老年人",
        "老人",
        "60岁以上",
        "60岁及以上",
        "60岁以上人口",
        "60岁及以上人口",
        "pop60",
        "pop_60plus",
    ),
    "youth": ("青年", "青年人口", "青年人数", "18-35岁", "18-35岁人口", "pop18_35"),
}
AREA_NAME_ALIASES: Mapping[str, tuple[str, ...]] = {
    "street": ("name", "名称", "街道", "街道名称", "乡镇街道", "镇街", "name:zh"),
    "community": ("name", "名称", "社区", "社区名称", "村社区", "name:zh"),
}
PARENT_ALIASES = ("parent", "所属街道", "街道", "街道名称", "乡镇街道")

#: How the user names a column of each input, on the command line and in the plan file:
#: input -> (flag prefix, plan table).  Facility kinds use ``--layer-columns KIND:``.
_COLUMN_FLAGS: Mapping[str, tuple[str, str]] = {
    "residents": ("--residents-columns ", "[residents_columns]"),
    "street": ("--areas-columns ", "[streets_columns]"),
    "community": ("--communities-columns ", "[communities_columns]"),
    "candidates": ("--candidates-columns ", "[candidates_columns]"),
}
#: How the user names the GeoPackage layer or XLSX sheet of each input.
_LAYER_FLAGS: Mapping[str, str] = {
    "residents": "--residents-layer NAME (plan: residents_layer)",
    "street": "--areas-layer NAME (plan: streets_layer)",
    "community": "--communities-layer NAME (plan: communities_layer)",
    "candidates": "--candidates-layer NAME (plan: candidates_layer)",
}


def column_option(which: str, key: str) -> str:
    """How to name the column ``key`` of input ``which``, as a fix shows it.

    ``which`` is ``residents``, ``street``, ``community``, ``candidates`` or a facility kind;
    the text contains ``{col}`` where the column's name goes
    (``--residents-columns population={col} (plan: [residents_columns] population)``).
    """
    flag, table = _COLUMN_FLAGS.get(
        which, (f"--layer-columns {which}:", f"columns in [layers] {which}")
    )
    return f"{flag}{key}={{col}} (plan: {key} in {table})"


def layer_option(which: str) -> str:
    """How to name the GeoPackage layer or XLSX sheet of input ``which`` (for fixes)."""
    return _LAYER_FLAGS.get(
        which, f'--layer-sheet {which}=NAME (plan: layer = "NAME" in [layers] {which})'
    )


# ------------------------------------------------------------------------------ loading


def _load(
    source: Source,
    *,
    coords: CoordSystem | None,
    default_coords: CoordSystem | None = None,
    layer: str | None,
    encoding: str | None,
    which: str,
) -> tuple[gpd.GeoDataFrame, str | None]:
    """A WGS84 frame and the file name for messages (``None`` for in-memory frames).

    ``coords`` (declared for this input) overrides a frame's or file's own CRS;
    ``default_coords`` (the run's general declaration) is used only when there is none, as for
    :func:`layers.io.read_table`.
    """
    if isinstance(source, gpd.GeoDataFrame):
        check_not_empty(source)
        gdf = check_geometries(source)
        named = parse_coord_system(coords) if coords is not None else None
        general = parse_coord_system(default_coords) if default_coords is not None else None
        system, _why = resolve_system(gdf.crs, "the layer", named=named, general=general)
        check_coordinates(gdf, system)
        if system is None:
            msg = "the GeoDataFrame has no CRS: set it, or pass coords= (wgs84, gcj02, bd09...)"
            raise ValueError(msg)
        already = (
            isinstance(system, str)
            and system == "wgs84"
            and gdf.crs is not None
            and CRS(gdf.crs).to_epsg() == 4326
        )
        if not already:
            gdf = to_wgs84(gdf, system)
        return gdf.reset_index(drop=True), None
    gdf = read_table(
        source,
        layer=layer,
        coords=coords,
        default_coords=default_coords,
        encoding=encoding,
        layer_option=layer_option(which),
    )
    return gdf, str(Path(source))


def _column(
    gdf: pd.DataFrame,
    explicit: str | None,
    wanted: str,
    aliases: Sequence[str],
    *,
    file: str | None,
    option: str,
) -> str | None:
    """The user's column for ``wanted``: the explicit one (must exist) or a recognised alias.

    ``option`` says how to name it (:func:`column_option`).
    """
    if explicit is not None:
        return find_column(
            gdf.columns, explicit, (), file=file, required=True, option=option, given=True
        )
    return find_column(gdf.columns, wanted, aliases, file=file, required=False)


def _ids(
    gdf: pd.DataFrame, col: str | None, prefix: str, *, file: str | None, out_col: str
) -> pd.Series:
    """Ids as text; empty cells get ``<prefix><row>`` so reruns give the same ids."""
    n = len(gdf)
    width = max(4, len(str(n)))
    generated = pd.Series([f"{prefix}{i + 1:0{width}d}" for i in range(n)], index=gdf.index)
    if col is None:
        return generated
    raw = gdf[col]
    text = raw.map(_id_text)
    missing = text.isna()
    if missing.any():
        log.info("%s: %d empty %s values generated", file or "layer", int(missing.sum()), col)
    ids = text.where(~missing, generated).astype(str)
    check_unique_ids(pd.DataFrame({col: ids}), col, file=file)
    return ids.rename(out_col)


def _id_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _names(gdf: pd.DataFrame, col: str | None) -> pd.Series:
    if col is None:
        return pd.Series([""] * len(gdf), index=gdf.index, dtype=object)
    s = gdf[col]
    return s.astype(object).where(s.notna(), "").astype(str).str.strip()


def _assemble(
    gdf: gpd.GeoDataFrame,
    schema: dict[str, pd.Series | np.ndarray | str],
    used: Sequence[str | None],
) -> gpd.GeoDataFrame:
    """Schema columns first, then the user's other columns (clashing names get ``_input``)."""
    geom_name = gdf.geometry.name
    rest = [c for c in gdf.columns if c != geom_name and c not in {u for u in used if u}]
    data: dict[str, object] = {}
    for key, values in schema.items():
        data[key] = values
    for c in rest:
        name = str(c)
        while name in data or name == "geometry":
            name = f"{name}_input"
        data[name] = gdf[c].to_numpy()
    frame = pd.DataFrame(data, index=gdf.index)
    return gpd.GeoDataFrame(frame, geometry=gdf.geometry.to_numpy(), crs=gdf.crs).reset_index(
        drop=True
    )


def _as_points(gdf: gpd.GeoDataFrame, *, file: str | None, what: str) -> gpd.GeoDataFrame:
    """Lines and polygons (a building outline, a site) become one point inside each.

    :meth:`~geopandas.GeoSeries.representative_point` is used rather than the centroid because
    it is guaranteed to lie inside the shape (the centroid of an L-shaped building or of a
    MultiPolygon can fall outside it, on another street).  MultiPoints are left for
    :func:`_explode_multipoints`: each of their points is a facility of its own.
    """
    kinds = gdf.geom_type
    not_points = ~kinds.isin(["Point", "MultiPoint"])
    if not not_points.any():
        return gdf
    log.warning(
        "%s: %d %s given as %s; each is represented by one point inside it "
        "(representative point, not the centroid)",
        file or what,
        int(not_points.sum()),
        what,
        "/".join(sorted(set(kinds[not_points]))),
    )
    out = gdf.copy()
    out.loc[not_points, out.geometry.name] = gdf.geometry[not_points].representative_point()
    return out


def _explode_multipoints(
    gdf: gpd.GeoDataFrame, id_col: str, *, file: str | None, what: str, one: str
) -> gpd.GeoDataFrame:
    """One row per point of each MultiPoint: ten stations in one feature are ten facilities.

    Counting a MultiPoint as one facility at one point would drop all but one of its sites
    from the coverage.  The parts keep the feature's attributes; ids get ``-1``, ``-2``...
    suffixes and a known capacity is split evenly between the parts, so the layer's total
    capacity is unchanged.  A MultiPoint of a single point is simply that point.
    """
    geoms = np.asarray(gdf.geometry.array)
    multi = np.flatnonzero(shapely.get_type_id(geoms) == shapely.GeometryType.MULTIPOINT)
    if not multi.size:
        return gdf
    parts, owner = shapely.get_parts(geoms, return_index=True)
    counts = np.bincount(owner, minlength=len(gdf))
    out = gdf.iloc[owner].reset_index(drop=True)
    out[out.geometry.name] = gpd.GeoSeries(parts, crs=gdf.crs)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    split = counts[owner] > 1
    ids = out[id_col].astype(str).to_numpy(dtype=object)
    ids[split] = [f"{i}-{k + 1}" for i, k in zip(ids[split], rank[split], strict=True)]
    out[id_col] = ids
    if "capacity" in out.columns:
        out["capacity"] = out["capacity"].to_numpy(dtype=np.float64) / counts[owner]
    rows = [int(r) + 1 for r in multi if counts[r] > 1]
    if rows:
        log.warning(
            "%s: %d %s given as MultiPoint (rows %s) hold %d points; each point is counted as "
            "one %s (ids suffixed -1, -2...; a capacity is split evenly between the points)",
            file or what,
            len(rows),
            what,
            ", ".join(map(str, rows[:5])) + (" ..." if len(rows) > 5 else ""),
            int(counts[multi].sum()),
            one,
        )
    check_unique_ids(out, id_col, file=file)
    return out


# ---------------------------------------------------------------------------- facilities


def read_facilities(
    source: Source,
    kind: str,
    *,
    coords: CoordSystem | None = None,
    default_coords: CoordSystem | None = None,
    id_col: str | None = None,
    name_col: str | None = None,
    capacity_col: str | None = None,
    layer: str | None = None,
    encoding: str | None = None,
    specs: Mapping[str, LayerSpec] | None = None,
) -> gpd.GeoDataFrame:
    """Read one facility layer (a kind of the layer table: built-in or user-defined).

    Parameters
    ----------
    source
        A file :func:`layers.io.read_table` reads, or a GeoDataFrame.
    kind
        The layer kind; must be a section of the layer table (``specs``, default
        ``data/layers.toml``).
    coords, default_coords, layer, encoding
        As for :func:`layers.io.read_table`: ``coords`` is this input's own declaration and
        overrides the file's CRS; ``default_coords`` applies only to inputs without a CRS.
    id_col, name_col, capacity_col
        The user's columns; by default recognised among common names (``编号``, ``名称``,
        ``床位数``...).  A named column must exist.

    Returns
    -------
    Points with ``facility_id``, ``kind``, ``name``, ``capacity`` first.  Polygon facilities
    (a building outline) are reduced to a point inside them.
    """
    table = specs if specs is not None else load_layer_table()
    check_kind(kind, table, file=None if isinstance(source, gpd.GeoDataFrame) else source)
    return _point_sites(
        source,
        which=kind,
        id_out="facility_id",
        id_prefix=f"{kind}-",
        kind=kind,
        what=("facilities", "facility"),
        load={"coords": coords, "default_coords": default_coords, "layer": layer,
              "encoding": encoding},
        columns=(id_col, name_col, capacity_col),
    )  # fmt: skip


def read_candidates(
    source: Source,
    *,
    coords: CoordSystem | None = None,
    default_coords: CoordSystem | None = None,
    id_col: str | None = None,
    name_col: str | None = None,
    capacity_col: str | None = None,
    layer: str | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read candidate sites (vacant premises, planned 邻里中心...) for new facilities.

    Returns points with ``site_id``, ``name``, ``capacity`` (NaN when unknown) first.
    """
    return _point_sites(
        source,
        which="candidates",
        id_out="site_id",
        id_prefix="site-",
        kind=None,
        what=("candidate sites", "candidate site"),
        load={"coords": coords, "default_coords": default_coords, "layer": layer,
              "encoding": encoding},
        columns=(id_col, name_col, capacity_col),
    )  # fmt: skip


def _point_sites(
    source: Source,
    *,
    which: str,
    id_out: str,
    id_prefix: str,
    kind: str | None,
    what: tuple[str, str],
    load: dict[str, Any],
    columns: tuple[str | None, str | None, str | None],
) -> gpd.GeoDataFrame:
    """Facilities and candidate sites alike: points with an id, a name and a capacity.

    ``kind`` is the facility layer's (its rows carry it), ``None`` for candidate sites;
    ``what`` names the rows in messages (plural, singular).
    """
    gdf, file = _load(source, which=which, **load)
    gdf = _as_points(gdf, file=file, what=what[0])
    opt = functools.partial(column_option, which)
    id_col, name_col, capacity_col = columns
    id_c = _column(gdf, id_col, id_out, ID_ALIASES, file=file, option=opt("id"))
    name_c = _column(gdf, name_col, "name", NAME_ALIASES, file=file, option=opt("name"))
    cap_c = _column(
        gdf, capacity_col, "capacity", CAPACITY_ALIASES, file=file, option=opt("capacity")
    )
    capacity = check_capacity(gdf, cap_c, file=file) if cap_c else np.full(len(gdf), np.nan)
    schema: dict[str, Any] = {id_out: _ids(gdf, id_c, id_prefix, file=file, out_col=id_out)}
    if kind is not None:
        schema["kind"] = kind
    schema["name"] = _names(gdf, name_c)
    schema["capacity"] = capacity.astype(np.float64)
    out = _assemble(gdf, schema, [id_c, name_c, cap_c])
    return _explode_multipoints(out, id_out, file=file, what=what[0], one=what[1])


# ----------------------------------------------------------------------------- residents


def read_residents(
    source: Source,
    *,
    coords: CoordSystem | None = None,
    default_coords: CoordSystem | None = None,
    population_col: str = "population",
    group_cols: Mapping[str, str] = DEFAULT_GROUP_COLS,
    id_col: str | None = None,
    name_col: str | None = None,
    layer: str | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read residents: points (buildings, compounds) or polygons (blocks, grid cells).

    Parameters
    ----------
    population_col
        Column with the head count.  The default also recognises ``人口``, ``常住人口``, ``pop``...
    group_cols
        Target-group column (output name) -> the user's column, e.g.
        ``{"elderly": "60岁以上", "youth": "青年"}``.  A group whose column is named explicitly
        (differs from the output name) must exist; the default ``elderly``/``youth`` columns
        are also found under common Chinese names and are left out when absent (a layer that
        needs one then fails in :func:`layers.validate.check_group_columns`).

    Returns
    -------
    ``resident_id``, ``name``, ``population`` and the group columns first (whole numbers,
    int64), then the user's other columns.  Polygons keep their geometry; see
    :func:`resident_points`.
    """
    gdf, file = _load(
        source,
        coords=coords,
        default_coords=default_coords,
        layer=layer,
        encoding=encoding,
        which="residents",
    )
    opt = functools.partial(column_option, "residents")
    aliases = POPULATION_ALIASES if population_col == "population" else ()
    pop_c = find_column(
        gdf.columns,
        population_col,
        aliases,
        file=file,
        required=True,
        option=opt("population"),
        given=population_col != "population",
    )
    assert pop_c is not None  # required=True raises instead
    population = check_counts(gdf, pop_c, file=file, label="population")
    id_c = _column(gdf, id_col, "resident_id", ID_ALIASES, file=file, option=opt("id"))
    name_c = _column(gdf, name_col, "name", NAME_ALIASES, file=file, option=opt("name"))
    schema: dict[str, pd.Series | np.ndarray | str] = {
        "resident_id": _ids(gdf, id_c, "R", file=file, out_col="resident_id"),
        "name": _names(gdf, name_c),
        "population": population.astype(np.int64),
    }
    used: list[str | None] = [id_c, name_c, pop_c]
    for group, col in group_cols.items():
        explicit = col != group
        found = find_column(
            gdf.columns,
            col,
            () if explicit else GROUP_ALIASES.get(group, ()),
            file=file,
            required=explicit,
            option=opt(group),
            given=explicit,
        )
        if found is None:
            log.info("%s: no '%s' column", file or "residents", group)
            continue
        values = check_counts(gdf, found, file=file, label=group)
        check_group_not_above(values, population, group_col=found, population_col=pop_c, file=file)
        schema[group] = values.astype(np.int64)
        used.append(found)
    return _assemble(gdf, schema, used)


def resident_points(residents: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Residents as points: polygons are replaced by a point guaranteed inside them.

    Used for routing (a resident unit starts its walk from one point); the input keeps its
    polygons for maps.
    """
    out = residents.copy()
    geoms = residents.geometry
    not_points = np.asarray(geoms.geom_type != "Point")
    if not_points.any():
        out[out.geometry.name] = geoms.where(~not_points, geoms.representative_point())
    return out


# --------------------------------------------------------------------------------- areas


def read_areas(
    source: Source,
    *,
    name_col: str | None = None,
    level: str = "street",
    parent_col: str | None = None,
    coords: CoordSystem | None = None,
    default_coords: CoordSystem | None = None,
    layer: str | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read reporting areas: 街道 (``level="street"``) or 社区 (``level="community"``) polygons.

    Names are required (a report row without a name is useless) and unique within their
    parent.  ``parent`` is the 街道 of a 社区 (from ``parent_col``, or a recognised
    ``所属街道``/``街道`` column), ``""`` otherwise.
    """
    if level not in AREA_LEVELS:
        msg = f"unknown area level '{level}': use one of {', '.join(AREA_LEVELS)}"
        raise ValueError(msg)
    gdf, file = _load(
        source,
        coords=coords,
        default_coords=default_coords,
        layer=layer,
        encoding=encoding,
        which=level,
    )
    gdf = check_geometries(gdf, file=file, allowed=("Polygon", "MultiPolygon"), what="area")
    opt = functools.partial(column_option, level)
    name_c = find_column(
        gdf.columns,
        name_col or "area",
        () if name_col else AREA_NAME_ALIASES[level],
        file=file,
        required=False,
    )
    if name_c is None and name_col is None:
        name_c = _only_name_column(gdf, file=file, level=level)
    if name_c is None:
        name_c = find_column(
            gdf.columns,
            name_col or "area",
            () if name_col else AREA_NAME_ALIASES[level],
            file=file,
            required=True,
            option=opt("name"),
            given=name_col is not None,
        )
    assert name_c is not None
    names = _names(gdf, name_c)
    empty = np.flatnonzero(names.to_numpy() == "")
    if empty.size:
        msg = "area name is empty"
        raise InputError(
            msg, file=file, row=int(empty[0]) + 1, column=name_c, fix="name every area"
        )
    parent_c = None
    if parent_col is not None or level == "community":
        parent_c = _column(
            gdf, parent_col, "parent", PARENT_ALIASES, file=file, option=opt("parent")
        )
        if parent_c == name_c:
            parent_c = None
    parents = _names(gdf, parent_c)
    shown = [f"{p} {n}" if p else n for p, n in zip(parents, names, strict=True)]
    check_unique_ids(pd.DataFrame({name_c: shown}), name_c, file=file, label="area name")
    schema = {"area": names, "level": level, "parent": parents}
    out = _assemble(gdf, schema, [name_c, parent_c])
    pairs = area_overlaps(out)
    for a, b, share in pairs[:_MAX_OVERLAPS_LOGGED]:
        log.warning(
            "%s: areas '%s' and '%s' overlap (%.1f%% of the smaller one); a resident in the "
            "overlap counts in only one of them",
            file or "areas",
            a,
            b,
            100 * share,
        )
    if len(pairs) > _MAX_OVERLAPS_LOGGED:
        log.warning(
            "%s: %d more pairs of areas overlap", file or "areas", len(pairs) - _MAX_OVERLAPS_LOGGED
        )
    out.attrs["overlaps"] = pairs
    return out


def _only_name_column(gdf: gpd.GeoDataFrame, *, file: str | None, level: str) -> str | None:
    """The one text column that names every area, when no known name column exists.

    A 街道 file from a city platform may call its name column anything (``area_name``, ``JDMC``).
    A column of text with a distinct, non-empty value for every polygon can only be the name
    when it is the only such column; it is used, and the log says which.  With none or
    several, ``None`` (the caller then asks the user to name it).
    """
    found = []
    for col in gdf.columns:
        if col == gdf.geometry.name:
            continue
        values = gdf[col]
        if not all(isinstance(v, str) for v in values):
            continue
        text = values.str.strip()
        if (text != "").all() and text.is_unique:
            found.append(str(col))
    if len(found) != 1:
        return None
    log.warning(
        "%s: no %s name column (name, 名称, %s...); using '%s', the only text column with a "
        "distinct name for every polygon (name it with %s)",
        file or "areas",
        "街道" if level == "street" else "社区",
        "街道" if level == "street" else "社区",
        found[0],
        column_option(level, "name").format(col=found[0]),
    )
    return found[0]


#: Overlaps smaller than this share of the smaller polygon are digitising slivers, not news.
AREA_OVERLAP_MIN_SHARE = 0.01
_MAX_OVERLAPS_LOGGED = 10


def area_overlaps(
    areas: gpd.GeoDataFrame, *, min_share: float = AREA_OVERLAP_MIN_SHARE
) -> list[tuple[str, str, float]]:
    """Pairs of areas that overlap by more than a sliver, with the overlap's share.

    Real 街道/社区 files have slivers along shared borders, so only overlaps above
    ``min_share`` of the smaller polygon's area (measured in the local UTM zone, not in square
    degrees) count.  A resident in an overlap is assigned to one of the two areas only, so a
    real overlap changes both areas' numbers; it is reported rather than refused.

    Parameters
    ----------
    areas
        Areas as read by :func:`read_areas` (``area`` and ``parent`` columns, any CRS).
    min_share
        Smallest overlap reported, as a share of the smaller polygon's area.

    Returns
    -------
    ``(name_a, name_b, share)`` in file order, names as ``"parent area"`` for 社区 with a
    parent; largest share first.
    """
    if len(areas) < 2:
        return []
    metric = areas.to_crs(areas.estimate_utm_crs()) if areas.crs is not None else areas
    geoms = np.asarray(metric.geometry.array)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if not left.size:
        return []
    shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(smaller > 0, shared / smaller, 0.0)
    hit = np.flatnonzero(share > min_share)
    parents = areas["parent"].astype(str).to_numpy() if "parent" in areas else None
    names = areas["area"].astype(str).to_numpy()
    shown = (
        [f"{p} {n}" if p else n for p, n in zip(parents, names, strict=True)]
        if (parents is not None)
        else list(names)
    )
    order = hit[np.argsort(-share[hit], kind="stable")]
    return [(shown[left[k]], shown[right[k]], float(share[k])) for k in order]
