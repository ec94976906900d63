"""Residents from OpenStreetMap buildings when no census points exist (dasymetric allocation).

District statistics give population per 街道 (or 社区), not per building.  This module spreads
each area's total over its residential buildings in proportion to their floor area (footprint
times floors), the usual dasymetric assumption that people live where residential floor space
is.  Totals are met exactly: integer largest-remainder allocation, so a 街道 of 41,236 people
gets 41,236 in its buildings, never 41,235.9.  Target groups (60+, 18-35) are allocated the same
way from shares, per building never above its population.

What counts as residential:

* ``building`` = apartments, residential, dormitory, house, detached, semidetached_house,
  terrace, bungalow;
* ``building=yes`` (untyped) inside a ``landuse=residential`` compound (小区): Chinese OSM
  mapping often tags only the compound;
* a ``landuse=residential`` compound with no such building inside stands for itself, with floor
  area = compound area x ``compound_far`` (a typical 容积率).

Floors come from ``building:levels`` (or ``height`` / 3 m); otherwise from a default per building
type.  These defaults and the compound plot ratio are rough priors for a Chinese inner city; they
only set relative weights within an area, and every unit records where its floors came from
(``levels_source``).  Data © OpenStreetMap contributors (ODbL).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS

from layers.errors import InputError
from layers.io import read_table
from layers.osm.reader import OSM_SUFFIXES, OsmArea, read_osm
from layers.validate import check_not_empty, closest, find_column

log = logging.getLogger(__name__)

#: Default floors per residential building type (rough priors for a Chinese inner city: 6-7
#: storey 多层 walk-ups dominate the old compounds; houses are rare).
DEFAULT_LEVELS: Final[Mapping[str, int]] = {
    "apartments": 6,
    "residential": 6,
    "dormitory": 5,
    "house": 3,
    "detached": 3,
    "semidetached_house": 3,
    "terrace": 3,
    "bungalow": 1,
    "yes": 6,  # untyped buildings, counted only inside residential compounds
}
#: Floor area / land area of a residential compound with no mapped buildings (容积率).
COMPOUND_FAR: Final = 1.6
#: Buildings smaller than this are sheds, kiosks or guard houses.
MIN_FOOTPRINT_M2: Final = 20.0
#: Storey height used when only ``height`` is tagged.
STOREY_HEIGHT_M: Final = 3.0
ATTRIBUTION: Final = "© OpenStreetMap contributors (ODbL 1.0)"

_LEVEL_ALIASES: Final = ("levels", "floors", "层数", "楼层数", "地上层数", "楼层")
_AREA_ALIASES: Final = ("name", "名称", "街道", "街道名称", "社区", "社区名称", "name:zh")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


# =================================================================================== reading


def _area_names(
    areas: gpd.GeoDataFrame, area_col: str | None, totals: Mapping[str, int]
) -> tuple[str, pd.Series]:
    """The areas' name column and their stripped names, checked against the totals."""
    check_not_empty(areas, what="areas layer")
    name_c = find_column(
        areas.columns,
        area_col or "area",
        () if area_col else _AREA_ALIASES,
        required=True,
        option="area_col",
    )
    assert name_c is not None
    names = areas[name_c].astype(str).str.strip()
    _check_totals(totals, names.to_numpy())
    return name_c, names


def read_residential_osm(
    source: str | PathLike[str],
    *,
    aoi: shapely.Geometry | None = None,
) -> gpd.GeoDataFrame:
    """Residential building and compound polygons from an OSM file or a polygon layer.

    Parameters
    ----------
    source
        ``.osm.pbf`` / ``.osm`` (read with pyosmium's area assembler), or any polygon file
        :func:`layers.io.read_table` reads (e.g. an OSM export with ``building``,
        ``building:levels``, ``landuse`` and ``name`` columns, or a city building-footprint
        layer with a floors column such as ``层数``, taken as all residential).
    aoi
        WGS84 polygon; features whose representative point is outside it are dropped.

    Returns
    -------
    Polygons in WGS84 with ``osm_id`` (``w123``/``r45`` or a row id), ``name``, ``building``
    (``""`` for compounds), ``landuse``, ``levels_tag`` (raw text) and ``height_tag``.
    """
    p = Path(source)
    features = _read_features(p, aoi)
    if features.empty:
        msg = "no residential buildings or compounds found"
        raise InputError(
            msg,
            file=p,
            fix="use an extract that covers the areas and has building=* or landuse=residential",
        )
    return features.reset_index(drop=True)


def _read_features(p: Path, aoi: shapely.Geometry | None) -> gpd.GeoDataFrame:
    if p.name.lower().endswith(OSM_SUFFIXES):
        features = _read_osm_file(p)
    else:
        features = _read_polygon_layer(p)
    features = features[np.asarray(features.geom_type.isin(["Polygon", "MultiPolygon"]))]
    if aoi is not None and len(features):
        xy = shapely.get_coordinates(np.asarray(features.representative_point().array))
        features = features[shapely.contains_xy(aoi, xy[:, 0], xy[:, 1])]
    return features.reset_index(drop=True)


def _read_osm_file(p: Path) -> gpd.GeoDataFrame:
    rows: list[tuple[str, str, str, str, str, str, bytes]] = []
    for area in read_osm(
        p,
        areas=True,
        keys=("building", "landuse"),
        where=lambda tags: (
            (tags.get("building", "") or "") in DEFAULT_LEVELS
            or tags.get("landuse") == "residential"
        ),
        tags=("name", "building", "landuse", "building:levels", "height"),
    ):
        assert isinstance(area, OsmArea)
        tags = area.tags
        rows.append(
            (
                area.id,
                tags.get("name", ""),
                tags.get("building", ""),
                tags.get("landuse", ""),
                tags.get("building:levels", ""),
                tags.get("height", ""),
                area.wkb,
            )
        )
    cols = ["osm_id", "name", "building", "landuse", "levels_tag", "height_tag"]
    frame = pd.DataFrame([r[:6] for r in rows], columns=cols)
    geoms = shapely.from_wkb([r[6] for r in rows]) if rows else np.array([], dtype=object)
    gdf = gpd.GeoDataFrame(frame, geometry=geoms, crs=4326)
    gdf["geometry"] = shapely.make_valid(np.asarray(gdf.geometry.array))
    return gdf


def _read_polygon_layer(p: Path) -> gpd.GeoDataFrame:
    raw = read_table(p)
    cols = list(raw.columns)
    building_c = find_column(cols, "building", (), required=False)
    landuse_c = find_column(cols, "landuse", (), required=False)
    levels_c = find_column(cols, "building:levels", _LEVEL_ALIASES, required=False)
    height_c = find_column(cols, "height", ("高度", "建筑高度"), required=False)
    name_c = find_column(cols, "name", ("名称", "name:zh"), required=False)
    n = len(raw)

    def text(col: str | None) -> pd.Series:
        if col is None:
            return pd.Series([""] * n, index=raw.index, dtype=object)
        return raw[col].map(lambda v: "" if pd.isna(v) else str(v).strip())

    if building_c is None and landuse_c is None:
        log.info(
            "%s: no building/landuse columns; every polygon taken as a residential building", p.name
        )
        building = pd.Series(["residential"] * n, index=raw.index, dtype=object)
    else:
        building = text(building_c)
    landuse = text(landuse_c)
    if "osm_id" in raw.columns and "osm_type" in raw.columns:
        ids = raw["osm_type"].astype(str).str[0] + raw["osm_id"].map(_int_text)
    elif "osm_id" in raw.columns:
        ids = "o" + raw["osm_id"].map(_int_text)
    else:
        ids = pd.Series([f"b{i + 1}" for i in range(n)], index=raw.index)
    gdf = gpd.GeoDataFrame(
        {
            "osm_id": ids,
            "name": text(name_c),
            "building": building,
            "landuse": landuse,
            "levels_tag": text(levels_c),
            "height_tag": text(height_c),
        },
        geometry=raw.geometry.to_numpy(),
        crs=4326,
    )
    keep = gdf["building"].isin(list(DEFAULT_LEVELS)) | (gdf["landuse"] == "residential")
    return gdf[keep.to_numpy()]


def _int_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# ====================================================================================== units


def parse_levels(text: str) -> float | None:
    """Floors from ``building:levels`` text (``"6"``, ``"6;7"``, ``"地上6层"``), else ``None``."""
    m = _NUMBER.search(text or "")
    if not m:
        return None
    value = float(m.group())
    return value if 0 < value <= 200 else None


def residential_units(
    features: gpd.GeoDataFrame,
    *,
    unit: str = "building",
    default_levels: Mapping[str, int] = DEFAULT_LEVELS,
    compound_far: float = COMPOUND_FAR,
    min_footprint_m2: float = MIN_FOOTPRINT_M2,
) -> gpd.GeoDataFrame:
    """Turn buildings and compounds into non-overlapping resident units with a floor area.

    Buildings inside a compound are the units (they carry the compound's name in
    ``compound``); a compound without residential buildings is a unit itself.  Untyped
    ``building=yes`` counts only inside a compound.  With ``unit="compound"`` the buildings of
    each compound are merged into one unit (the compound polygon, summed floor area): fewer,
    larger units for district-wide runs.

    Returns polygons (WGS84) with ``osm_id``, ``name``, ``compound``, ``building``, ``levels``,
    ``levels_source`` (``tag``/``height``/``default``/``compound``), ``footprint_m2`` and
    ``floor_area_m2``.
    """
    if unit not in ("building", "compound"):
        msg = f"unknown unit '{unit}': use unit='building' or unit='compound'"
        raise ValueError(msg)
    if compound_far <= 0:
        msg = f"compound_far must be positive (a plot ratio such as 1.6), got {compound_far}"
        raise ValueError(msg)
    check_not_empty(features, what="building layer")
    metric = _metric_crs(features)
    feats = features.reset_index(drop=True)
    is_compound = np.asarray((feats["building"] == "") & (feats["landuse"] == "residential"))
    compounds = feats[is_compound].reset_index(drop=True)
    buildings = feats[~is_compound & np.asarray(feats["building"] != "")].reset_index(drop=True)
    b_metric = buildings.to_crs(metric)
    footprint = np.asarray(b_metric.area, dtype=np.float64)
    big = footprint >= min_footprint_m2
    buildings, b_metric, footprint = buildings[big], b_metric[big], footprint[big]
    # which compound each building lies in (by a point inside it)
    pts = gpd.GeoDataFrame(geometry=b_metric.representative_point(), crs=metric)
    c_metric = compounds.to_crs(metric)
    hit = gpd.sjoin(pts, c_metric[["geometry"]], how="left", predicate="within")
    hit = hit[~hit.index.duplicated(keep="first")]
    comp_idx = hit["index_right"].reindex(pts.index).to_numpy()
    in_comp = ~pd.isna(comp_idx)
    generic = np.asarray(buildings["building"] == "yes")
    keep = ~generic | in_comp
    buildings = buildings[keep].reset_index(drop=True)
    footprint = footprint[keep]
    comp_idx = comp_idx[keep]
    in_comp = in_comp[keep]
    levels, source = _levels(buildings, default_levels)
    comp_names = compounds["name"].to_numpy()
    comp_of = np.array(
        [comp_names[int(i)] if ok else "" for i, ok in zip(comp_idx, in_comp, strict=True)],
        dtype=object,
    )
    b_units = gpd.GeoDataFrame(
        {
            "osm_id": buildings["osm_id"].to_numpy(),
            "name": [
                f"{c} {n}".strip() if c and n and not str(n).startswith(c) else (n or c)
                for c, n in zip(comp_of, buildings["name"].to_numpy(), strict=True)
            ],
            "compound": comp_of,
            "building": buildings["building"].to_numpy(),
            "levels": levels,
            "levels_source": source,
            "footprint_m2": footprint,
            "floor_area_m2": footprint * levels,
        },
        geometry=buildings.geometry.to_numpy(),
        crs=features.crs,
    )
    used = np.zeros(len(compounds), dtype=bool)
    used[comp_idx[in_comp].astype(int)] = True
    c_area = np.asarray(c_metric.area, dtype=np.float64)
    empty = ~used & (c_area >= min_footprint_m2)
    c_units = _compound_units(compounds[empty], c_area[empty], compound_far, "compound")
    if unit == "compound" and used.any():
        owner = comp_idx[in_comp].astype(int)
        sums = pd.Series(b_units["floor_area_m2"].to_numpy()[in_comp]).groupby(owner).sum()
        owners = sums.index.to_numpy()
        merged = _compound_units(compounds.iloc[owners], c_area[owners], 0.0, "buildings")
        merged["floor_area_m2"] = sums.to_numpy()
        merged["building"] = "compound"
        b_units = pd.concat([b_units[~in_comp], merged], ignore_index=True)
    units = pd.concat([b_units, c_units], ignore_index=True)
    return gpd.GeoDataFrame(units, geometry="geometry", crs=features.crs)


def _compound_units(
    compounds: gpd.GeoDataFrame, area_m2: NDArray[np.float64], far: float, source: str
) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "osm_id": compounds["osm_id"].to_numpy(),
            "name": compounds["name"].to_numpy(),
            "compound": compounds["name"].to_numpy(),
            "building": "",
            "levels": np.full(len(compounds), np.nan),
            "levels_source": source,
            "footprint_m2": area_m2,
            "floor_area_m2": area_m2 * far,
        },
        geometry=compounds.geometry.to_numpy(),
        crs=compounds.crs,
    )


def _levels(
    buildings: pd.DataFrame, default_levels: Mapping[str, int]
) -> tuple[NDArray[np.float64], NDArray[np.object_]]:
    levels = np.empty(len(buildings), dtype=np.float64)
    source = np.empty(len(buildings), dtype=object)
    tags = buildings["levels_tag"].to_numpy()
    heights = buildings["height_tag"].to_numpy()
    kinds = buildings["building"].to_numpy()
    fallback = max(default_levels.values()) if default_levels else 1
    for i, (lv, h, kind) in enumerate(zip(tags, heights, kinds, strict=True)):
        parsed = parse_levels(str(lv))
        if parsed is not None:
            levels[i], source[i] = parsed, "tag"
            continue
        height = parse_levels(str(h))
        if height is not None:
            levels[i], source[i] = max(1.0, round(height / STOREY_HEIGHT_M)), "height"
            continue
        levels[i], source[i] = float(default_levels.get(str(kind), fallback)), "default"
    return levels, source


def _metric_crs(gdf: gpd.GeoDataFrame) -> CRS:
    crs = gdf.estimate_utm_crs()
    return CRS.from_user_input(crs)


# ================================================================================= allocation


def largest_remainder(weights: ArrayLike, total: int) -> NDArray[np.int64]:
    """Split the integer ``total`` in proportion to ``weights``; the parts sum to ``total``.

    Each part is the floor of its exact quota, plus one for the largest remainders (ties to
    the earlier index, so the result is deterministic).  Integer weights are handled in exact
    integer arithmetic, so a part never exceeds its weight when ``total <= sum(weights)``.
    """
    w = np.asarray(weights)
    total = int(total)
    if total < 0:
        msg = f"cannot allocate a negative total ({total})"
        raise ValueError(msg)
    n = len(w)
    if n == 0 or total == 0:
        if total and n == 0:
            msg = "cannot allocate a positive total to no units"
            raise ValueError(msg)
        return np.zeros(n, dtype=np.int64)
    if np.issubdtype(w.dtype, np.integer):
        wi = w.astype(object)  # Python ints: no overflow in total * weight
        denom = int(sum(wi))
        if denom <= 0:
            msg = "weights sum to zero"
            raise ValueError(msg)
        num = [total * int(x) for x in wi]
        base = np.array([q // denom for q in num], dtype=np.int64)
        rem = np.array([q % denom for q in num], dtype=np.float64) / denom
    else:
        wf = w.astype(np.float64)
        denom_f = float(wf.sum())
        if not np.isfinite(denom_f) or denom_f <= 0 or (wf < 0).any():
            msg = "weights must be finite, non-negative and not all zero"
            raise ValueError(msg)
        wf = wf / wf.max()  # scale first: total / sum(subnormal weights) would overflow
        quota = wf * (total / float(wf.sum()))
        base = np.floor(quota).astype(np.int64)
        rem = quota - base
    short = total - int(base.sum())
    order = np.argsort(-rem, kind="stable")
    if short > 0:
        base[order[:short]] += 1
    elif short < 0:  # floating-point excess: take back from the smallest remainders
        for i in order[::-1]:
            if short == 0:
                break
            if base[i] > 0:
                base[i] -= 1
                short += 1
    return base


def allocate_population(
    units: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    totals: Mapping[str, int],
    *,
    shares: Mapping[str, float] | Mapping[str, Mapping[str, float]] | None = None,
    area_col: str | None = None,
) -> gpd.GeoDataFrame:
    """Give each unit its share of its area's total by floor area (exact integer totals).

    Parameters
    ----------
    units
        From :func:`residential_units` (needs ``floor_area_m2``).
    areas
        Area polygons (WGS84) with a name column (``area``, ``name``, ``名称``, ``街道``...).
    totals
        Area name -> population.  Only these areas are populated; units elsewhere are left out.
    shares
        Target-group shares, either one for all areas (``{"elderly": 0.24, "youth": 0.21}``)
        or per area (``{"湖滨街道": {"elderly": 0.31}, ...}``).  Each area's group total is
        its population times the share, rounded, then split over the units by population.
    area_col
        Name column of ``areas``; recognised when not given.

    Returns
    -------
    Points (a representative point of each unit) with ``resident_id``, ``name``,
    ``population`` and the group columns (int64), ``area``, then the unit's details.
    """
    _, names = _area_names(areas, area_col, totals)
    area_names = names.to_numpy()
    group_shares = _group_shares(shares, totals)
    wanted = np.isin(area_names, list(totals))
    zones = gpd.GeoDataFrame(
        {"area": area_names[wanted]}, geometry=areas.geometry.to_numpy()[wanted], crs=areas.crs
    ).to_crs(4326)
    points = units.to_crs(4326).representative_point()
    joined = gpd.sjoin(
        gpd.GeoDataFrame(geometry=points, crs=4326), zones, how="left", predicate="within"
    )
    joined = joined[~joined.index.duplicated(keep="first")]
    unit_area = joined["area"].reindex(points.index).to_numpy()
    inside = ~pd.isna(unit_area)
    if (~inside).any():
        log.info(
            "%d of %d units lie outside the areas with totals", int((~inside).sum()), len(units)
        )
    sel = units[inside].copy()
    sel["area"] = unit_area[inside].astype(str)
    sel = sel.reset_index(drop=True)
    population = np.zeros(len(sel), dtype=np.int64)
    groups = {g: np.zeros(len(sel), dtype=np.int64) for g in _group_names(group_shares)}
    floor_area = sel["floor_area_m2"].to_numpy(dtype=np.float64)
    for name, total in totals.items():
        idx = np.flatnonzero(sel["area"].to_numpy() == name)
        if int(total) > 0 and (idx.size == 0 or floor_area[idx].sum() <= 0):
            msg = (
                f"area '{name}' has a population total ({int(total)}) but no residential buildings"
            )
            raise InputError(
                msg,
                fix="use an OSM extract covering this area, or give census points for it",
            )
        if idx.size == 0:
            continue
        population[idx] = largest_remainder(floor_area[idx], int(total))
        for group, share in group_shares.get(name, {}).items():
            group_total = round(share * int(total))
            groups[group][idx] = largest_remainder(population[idx], group_total)
    out = pd.DataFrame(
        {
            "resident_id": sel["osm_id"].astype(str).to_numpy(),
            "name": sel["name"].astype(str).to_numpy(),
            "population": population,
            **groups,
            "area": sel["area"].to_numpy(),
        }
    )
    details = sel.drop(columns=["osm_id", "name", "area", sel.geometry.name])
    out = pd.concat([out, details.reset_index(drop=True)], axis=1)
    result = gpd.GeoDataFrame(
        out, geometry=sel.to_crs(4326).representative_point().to_numpy(), crs=4326
    )
    result.attrs["sources"] = (ATTRIBUTION,)
    return result


def _check_totals(totals: Mapping[str, int], area_names: NDArray[np.object_]) -> None:
    if not totals:
        msg = "no population totals given: give the population of each area (name -> total)"
        raise ValueError(msg)
    known = [str(a) for a in area_names]
    for name, total in totals.items():
        if name not in known:
            hit = closest(name, known)
            hint = f"did you mean '{hit}'? " if hit else ""
            msg = f"population total given for unknown area '{name}'; {hint}the areas are: "
            raise ValueError(msg + ", ".join(known[:12]))
        value = float(total)
        if not np.isfinite(value) or value < 0 or not value.is_integer():
            msg = f"population total of '{name}' must be a whole number >= 0, got {total!r}"
            raise ValueError(msg)


def _group_shares(
    shares: Mapping[str, float] | Mapping[str, Mapping[str, float]] | None,
    totals: Mapping[str, int],
) -> dict[str, dict[str, float]]:
    """Per-area group shares, checked to lie in [0, 1]."""
    if not shares:
        return {}
    per_area: dict[str, dict[str, float]] = {}
    flat: dict[str, float] = {}
    for key, value in shares.items():
        if isinstance(value, Mapping):
            if key not in totals:
                hit = closest(key, list(totals))
                hint = f"did you mean '{hit}'? " if hit else ""
                msg = f"shares given for area '{key}' which has no total; {hint}"
                raise ValueError(msg + "give shares only for areas with totals")
            per_area[key] = {str(g): float(s) for g, s in value.items()}
        else:
            flat[str(key)] = float(value)
    if flat:
        for area in totals:
            per_area[area] = {**flat, **per_area.get(area, {})}
    for area, table in per_area.items():
        for group, share in table.items():
            if not 0.0 <= share <= 1.0:
                msg = (
                    f"share of '{group}' in '{area}' must be between 0 and 1 (0.24 for 24%), "
                    f"got {share}"
                )
                raise ValueError(msg)
    return per_area


def _group_names(per_area: Mapping[str, Mapping[str, float]]) -> list[str]:
    names: list[str] = []
    for table in per_area.values():
        for g in table:
            if g not in names:
                names.append(g)
    return names


# ================================================================================= one call


def residents_from_osm(
    source: str | PathLike[str],
    areas: gpd.GeoDataFrame,
    totals: Mapping[str, int],
    *,
    shares: Mapping[str, float] | Mapping[str, Mapping[str, float]] | None = None,
    area_col: str | None = None,
    unit: str = "building",
    default_levels: Mapping[str, int] = DEFAULT_LEVELS,
    compound_far: float = COMPOUND_FAR,
) -> gpd.GeoDataFrame:
    """Residents for the areas in ``totals``, derived from OSM buildings (see module notes).

    Reads only what lies in those areas, builds the units and allocates the totals exactly.
    The result follows the residents schema (``resident_id``, ``name``, ``population``, group
    columns, ``area``) with one point per building or compound.
    """
    name_c, area_names = _area_names(areas, area_col, totals)
    wgs = areas.to_crs(4326) if areas.crs is not None else areas
    aoi = shapely.union_all(
        np.asarray(wgs.geometry.array)[area_names.isin(list(totals)).to_numpy()]
    )
    features = _read_features(Path(source), aoi)
    if features.empty:
        populated = [name for name, total in totals.items() if int(total) > 0]
        if populated:
            name = populated[0]
            msg = (
                f"area '{name}' has a population total ({int(totals[name])}) but no residential "
                "buildings"
            )
            raise InputError(
                msg, file=source, fix="use an OSM extract covering this area, or give census points"
            )
    units = residential_units(
        features, unit=unit, default_levels=default_levels, compound_far=compound_far
    )
    return allocate_population(units, wgs, totals, shares=shares, area_col=name_c)
