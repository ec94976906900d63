"""Prepare a study on real streets from OSM alone: residents, facility layers, areas and a plan.

For districts that have no census points or facility lists at hand (or to try the tool), this
writes the inputs a ``run`` needs: residents allocated dasymetrically over OSM residential
buildings to given (or assumed) 街道 totals, facility layers from OSM tags (mostly proxies, said
so), the 街道 polygons, and a ``plan.toml`` that ties them to the OSM street file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import geopandas as gpd
import pandas as pd

from layers.atomic import atomic_dir
from layers.errors import InputError
from layers.io import read_table, write_table
from layers.osm_layers import facilities_from_osm
from layers.osm_residents import residents_from_osm

log = logging.getLogger(__name__)

#: Shangcheng (new, 2021) about 1.4 M people on ~122 km^2 (DESIGN.md "Scale"): an assumption
#: used only when no totals are given, and written into the plan as such.
DEFAULT_DENSITY_PER_KM2 = 11_500.0
DEFAULT_SHARES: Mapping[str, float] = {"elderly": 0.23, "youth": 0.22}


@dataclass(frozen=True)
class PreparedStudy:
    """Files written by :func:`prepare_from_osm`."""

    folder: Path
    plan: Path
    residents: Path
    streets: Path
    facilities: dict[str, Path]
    totals_assumed: bool


def _read_totals(path: Path) -> dict[str, int]:
    frame = pd.read_csv(path, encoding="utf-8-sig")
    cols = list(frame.columns)
    if len(cols) < 2:
        msg = "totals need two columns: area name and population"
        raise InputError(msg, file=path, fix="write a CSV with header 街道,人口")
    names = frame[cols[0]].astype(str).str.strip()
    values = pd.to_numeric(frame[cols[1]], errors="coerce")
    bad = values.isna() | (values < 0)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0]) + 1
        msg = "population is missing or negative"
        raise InputError(
            msg, file=path, row=row, column=str(cols[1]), fix="give a whole number of people"
        )
    return dict(zip(names, values.round().astype(int), strict=True))


def prepare_from_osm(
    osm_file: str | PathLike[str],
    areas_file: str | PathLike[str],
    out_dir: str | PathLike[str],
    *,
    area_where: tuple[str, str] | None = None,
    area_name_col: str = "name",
    totals_csv: str | PathLike[str] | None = None,
    density_per_km2: float = DEFAULT_DENSITY_PER_KM2,
    shares: Mapping[str, float] = DEFAULT_SHARES,
    unit: str = "compound",
    force: bool = False,
) -> PreparedStudy:
    """Write residents, facility layers, 街道 and ``plan.toml`` for a study from OSM.

    Parameters
    ----------
    osm_file
        ``.osm.pbf``/``.osm`` with streets, buildings and POIs.
    areas_file
        街道 polygons (any format :func:`layers.io.read_table` reads).
    area_where
        ``(column, value)`` keeping only some polygons (e.g. ``in_new_shangcheng_2021=true``).
    totals_csv
        Population per 街道 (two columns: name, people).  Without it every 街道 gets
        ``density_per_km2`` x its area: an assumption, written into the plan title.
    shares
        Target-group shares of the population.
    unit
        ``compound`` (one resident unit per 小区, faster) or ``building``.
    """
    osm = Path(osm_file).resolve()
    areas = read_table(areas_file)
    if area_where is not None:
        col, value = area_where
        if col not in areas.columns:
            msg = f"no column '{col}' to filter on"
            raise InputError(
                msg,
                file=areas_file,
                column=col,
                fix=f"use one of {', '.join(map(str, areas.columns))}",
            )
        keep = areas[col].astype(str).str.lower() == str(value).lower()
        areas = areas[keep.to_numpy()]
        if areas.empty:
            msg = f"no area has {col} = {value}"
            raise InputError(msg, file=areas_file, column=col, fix="check the value")
    if area_name_col not in areas.columns:
        msg = f"no area name column '{area_name_col}'"
        raise InputError(msg, file=areas_file, fix="pass --area-name-col")
    streets = gpd.GeoDataFrame(
        {"name": areas[area_name_col].astype(str).to_numpy()},
        geometry=areas.geometry.to_numpy(),
        crs=4326,
    )
    assumed = totals_csv is None
    if totals_csv is not None:
        totals = _read_totals(Path(totals_csv))
    else:
        km2 = streets.to_crs(streets.estimate_utm_crs()).area / 1e6
        totals = {n: round(a * density_per_km2) for n, a in zip(streets["name"], km2, strict=True)}
    residents = residents_from_osm(osm, streets, totals, shares=dict(shares), unit=unit)
    facilities = facilities_from_osm(osm, aoi=streets.union_all().buffer(0.01))
    out = Path(out_dir)
    with atomic_dir(out, force=force) as work:
        write_table(residents, work / "residents.gpkg", force=True)
        write_table(streets, work / "streets.geojson", force=True)
        fac_paths = {}
        for kind, gdf in facilities.items():
            if gdf.empty:
                log.warning("%s: no OSM feature matches its tags; layer left out", kind)
                continue
            write_table(gdf, work / f"{kind}.geojson", force=True)
            fac_paths[kind] = out / f"{kind}.geojson"
        title = "上城区15分钟公共服务圈（OSM数据" + ("，人口按平均密度假设）" if assumed else "）")
        lines = [
            f'title = "{title}"',
            f'network = "{osm.as_posix()}"',
            'residents = "residents.gpkg"',
            'streets = "streets.geojson"',
            "",
            "[layers]",
            *[f'{k} = "{k}.geojson"' for k in fac_paths],
        ]
        (work / "plan.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return PreparedStudy(
        out, out / "plan.toml", out / "residents.gpkg", out / "streets.geojson", fac_paths, assumed
    )
