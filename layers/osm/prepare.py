"""Prepare a study on real streets from OSM alone: residents, facility layers, areas and a plan.

For districts that have no census points or facility lists at hand (or to try the tool), this
writes the inputs a ``run`` needs: residents allocated dasymetrically over OSM residential
buildings to given (or assumed) 街道 totals, facility layers from OSM tags (mostly proxies, said
so), the 街道 polygons, and a ``plan.toml`` that ties them to the OSM street file.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import geopandas as gpd
import pandas as pd

from layers.atomic import atomic_dir
from layers.errors import InputError
from layers.io import read_table, write_table
from layers.osm.facilities import facilities_from_osm
from layers.osm.residents import residents_from_osm
from layers.tomlfile import decode_text
from layers.validate import closest

log = logging.getLogger(__name__)

#: Shangcheng (new, 2021) about 1.4 M people on ~122 km^2 (DESIGN.md "Scale"): an assumption
#: used only when no totals are given, and written into the plan as such.
DEFAULT_DENSITY_PER_KM2 = 11_500.0
DEFAULT_SHARES: Mapping[str, float] = {"elderly": 0.23, "youth": 0.22}
#: People per km2 above which a 街道 total is refused as a typo or a wrong unit: the densest
#: urban districts in the world hold about 50,000-100,000 per km2.
MAX_DENSITY_PER_KM2 = 150_000.0


@dataclass(frozen=True)
class PreparedStudy:
    """Files written by :func:`prepare_from_osm`."""

    folder: Path
    plan: Path
    residents: Path
    streets: Path
    facilities: dict[str, Path]
    totals_assumed: bool


def _read_totals(path: Path, *, area_km2: Mapping[str, float]) -> dict[str, int]:
    """Population per 街道 from ``--totals``: a CSV of name and people, one row per 街道.

    UTF-8 or GBK (as Excel on Chinese Windows saves it; decoded with a warning, see
    :func:`layers.tomlfile.decode_text`).  Every row must name a 街道 of ``--areas`` once, with a
    whole, plausible number of people: a fraction or a density above
    :data:`MAX_DENSITY_PER_KM2` is almost surely another unit (万人) or a typo, and a 街道
    left out would silently get no residents.
    """
    what = "totals CSV (--totals)"
    if not path.is_file():
        msg = f"{what} not found" if not path.exists() else f"{what} is not a file"
        raise InputError(msg, file=path, fix="check the path given with --totals")
    text = decode_text(path.read_bytes(), file=path, what=what)
    fix_layout = "write a CSV with header 街道,人口 and one row per 街道, and pass it with --totals"
    if not text.strip():
        msg = f"{what} is empty"
        raise InputError(msg, file=path, fix=fix_layout)
    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        msg = f"{what} is not a well-formed CSV table ({str(exc).strip()})"
        raise InputError(msg, file=path, fix=fix_layout) from None
    cols = [str(c) for c in frame.columns]
    if len(cols) < 2:
        msg = "totals need two columns: area name and population"
        raise InputError(msg, file=path, fix=fix_layout)
    if frame.empty:
        msg = f"{what} has a header but no rows"
        raise InputError(msg, file=path, fix=fix_layout)
    name_col, value_col = cols[0], cols[1]
    known = list(area_km2)
    totals: dict[str, int] = {}
    for row, (raw_name, raw_value) in enumerate(
        zip(frame[name_col], frame[value_col], strict=True), start=1
    ):
        name = str(raw_name).strip()
        if not name:
            msg = "the area name is empty"
            raise InputError(
                msg, file=path, row=row, column=name_col, fix="name the 街道 in --totals"
            )
        if name in totals:
            msg = f"'{name}' appears twice"
            raise InputError(
                msg, file=path, row=row, column=name_col, fix="keep one row per 街道 in --totals"
            )
        if name not in area_km2:
            near = closest(name, known)
            hint = f"did you mean '{near}'? " if near else ""
            msg = f"'{name}' is not a 街道 of --areas"
            raise InputError(
                msg,
                file=path,
                row=row,
                column=name_col,
                fix=f"{hint}in --totals use the 街道 names of --areas: {', '.join(known[:12])}",
            )
        people = _people(str(raw_value).strip().replace(",", ""))
        if people is None:
            msg = f"population '{raw_value}' is not a whole number of people >= 0"
            raise InputError(
                msg,
                file=path,
                row=row,
                column=value_col,
                fix="give --totals in people, not 万人, as whole numbers (e.g. 52000)",
            )
        km2 = area_km2[name]
        if km2 > 0 and people / km2 > MAX_DENSITY_PER_KM2:
            msg = (
                f"population {people} on {km2:.2f} km2 is {people / km2:,.0f} people per km2, "
                f"above any real district ({MAX_DENSITY_PER_KM2:,.0f})"
            )
            raise InputError(
                msg,
                file=path,
                row=row,
                column=value_col,
                fix="check the figure and its unit in --totals",
            )
        totals[name] = people
    missing = [n for n in known if n not in totals]
    if missing:
        msg = f"no population for {len(missing)} 街道 of --areas: {', '.join(missing[:12])}"
        raise InputError(
            msg,
            file=path,
            fix="add a row for each to --totals, or keep only the 街道 you have with --area-where",
        )
    return totals


def _people(text: str) -> int | None:
    """A whole, finite, non-negative number of people (``52000`` or ``52000.0``), else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0 or not value.is_integer():
        return None
    return int(value)


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
                fix=f"in --area-where use one of {', '.join(map(str, areas.columns))}",
            )
        keep = areas[col].astype(str).str.lower() == str(value).lower()
        areas = areas[keep.to_numpy()]
        if areas.empty:
            msg = f"no area has {col} = {value}"
            raise InputError(
                msg, file=areas_file, column=col, fix="check the value of --area-where"
            )
    if area_name_col not in areas.columns:
        msg = f"no area name column '{area_name_col}'"
        raise InputError(msg, file=areas_file, fix="pass --area-name-col")
    streets = gpd.GeoDataFrame(
        {"name": areas[area_name_col].astype(str).to_numpy()},
        geometry=areas.geometry.to_numpy(),
        crs=4326,
    )
    assumed = totals_csv is None
    km2 = streets.to_crs(streets.estimate_utm_crs()).area / 1e6
    area_km2 = dict(zip(streets["name"].str.strip(), km2.to_numpy(dtype=float), strict=True))
    if totals_csv is not None:
        totals = _read_totals(Path(totals_csv), area_km2=area_km2)
    else:
        if not (math.isfinite(density_per_km2) and 0 < density_per_km2 <= MAX_DENSITY_PER_KM2):
            msg = f"--density {density_per_km2:g} is not a plausible number of people per km2"
            raise InputError(
                msg, fix=f"pass --density between 1 and {MAX_DENSITY_PER_KM2:.0f}, or --totals"
            )
        totals = {n: round(a * density_per_km2) for n, a in area_km2.items()}
    residents = residents_from_osm(osm, streets, totals, shares=dict(shares), unit=unit)
    facilities = facilities_from_osm(osm, aoi=streets.union_all().buffer(0.01))
    out = Path(out_dir)
    with atomic_dir(out, force=force, inputs=(osm, areas_file, totals_csv)) as work:
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
