"""Residents summed to H3 hexagons, per layer, so that a city-sized map stays small and fast.

A map drawing every resident point grows with the residents (a 1M-resident study wrote a
569 MB page that no browser opens).  Above a few tens of thousands of points the reader cannot
tell points apart anyway; equal-sized hexagons holding the target population, the share of it
within the layer's goal and its mean walking minutes carry the same message in a page whose size
depends on the area, not on the residents.  The numbers are computed here, from the result's
resident table, so that the map only draws them (``maps`` computes nothing).

The resolution is picked by the number of occupied cells: the finest of resolutions 10 to 7
(average edges of 76, 201, 531 and 1,406 m, so 130 m to 2.4 km across) whose cells stay within
``max_cells``.  A district of 300 km² gets resolution 9 (block scale); a 3,600 km² city gets
resolution 8.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from coverage.hexgrid import cell_polygons, point_cells
from layers.spec import LayerSpec

log = logging.getLogger(__name__)

#: Candidate H3 resolutions, finest first (10: 0.015 km², 9: 0.1 km², 8: 0.74 km², 7: 5.2 km²).
RESOLUTIONS: tuple[int, ...] = (10, 9, 8, 7)
#: Default ceiling on the number of occupied cells drawn per layer.
MAX_CELLS: int = 20_000


@dataclass(frozen=True)
class ResidentHexes:
    """Residents summed per H3 cell and layer.

    Attributes
    ----------
    resolution
        The H3 resolution of the cells.
    edge_m
        The average hexagon edge at that resolution, in metres (for the legend).
    cells
        One row per occupied cell, sorted by id, in EPSG:4326: ``cell`` (H3 id) and the
        hexagon polygon.
    table
        One row per layer and occupied cell (every cell for every layer, in ``cells`` order):
        ``kind``, ``cell``, ``residents`` (resident units), ``population`` (the layer's target
        group), ``covered_population`` (within the layer's headline minutes, ``covered_K``),
        ``covered_share`` (NaN when the cell holds no target population) and ``mean_minutes``
        (population-weighted over reachable residents, NaN when none).
    """

    resolution: int
    edge_m: float
    cells: gpd.GeoDataFrame
    table: pd.DataFrame

    def layer(self, kind: str) -> pd.DataFrame:
        """The rows of one layer, in ``cells`` order."""
        return self.table[self.table["kind"] == kind].reset_index(drop=True)


def choose_resolution(
    cells_finest: np.ndarray,
    *,
    max_cells: int = MAX_CELLS,
    resolutions: tuple[int, ...] = RESOLUTIONS,
) -> int:
    """The finest resolution whose occupied cells number at most ``max_cells``.

    ``cells_finest`` are the points' cells at ``resolutions[0]``; coarser cells are their
    parents, so each point is indexed once.  The coarsest candidate is returned when even it
    has too many cells.
    """
    uniq = pd.unique(cells_finest)
    for res in resolutions:
        n = len({h3.cell_to_parent(c, res) for c in uniq}) if res != resolutions[0] else len(uniq)
        if n <= max_cells:
            return res
    return resolutions[-1]


def resident_hexes(
    residents: gpd.GeoDataFrame,
    specs: Mapping[str, LayerSpec],
    *,
    resolution: int | None = None,
    max_cells: int = MAX_CELLS,
) -> ResidentHexes:
    """Sum every layer's residents per H3 cell (see :class:`ResidentHexes`).

    Parameters
    ----------
    residents
        The result's resident table (points, with ``minutes_K`` / ``covered_K`` per layer).
        Residents without geometry are left out (and logged).
    specs
        The layers; those without ``minutes_K`` in the table are skipped.
    resolution
        H3 resolution; by default the finest of :data:`RESOLUTIONS` with at most ``max_cells``
        occupied cells.
    max_cells
        Ceiling on the occupied cells when the resolution is chosen.

    Returns
    -------
    ResidentHexes
    """
    res = residents
    if res.crs is not None and CRS(res.crs).to_epsg() != 4326:
        res = res.to_crs(4326)
    geoms = np.asarray(res.geometry.array, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not ok.all():
        log.warning(
            "%d resident(s) without geometry are left out of the hexagons", int((~ok).sum())
        )
        res = res[ok]
        geoms = geoms[ok]
    lon = shapely.get_x(geoms)
    lat = shapely.get_y(geoms)
    if resolution is None:
        finest = point_cells(lon, lat, resolution=RESOLUTIONS[0])
        resolution = choose_resolution(finest, max_cells=max_cells)
        if resolution == RESOLUTIONS[0]:
            point_cell = finest
        else:
            parents = {c: h3.cell_to_parent(c, resolution) for c in pd.unique(finest)}
            point_cell = np.array([parents[c] for c in finest], dtype=object)
    else:
        point_cell = point_cells(lon, lat, resolution=resolution)
    codes, ids = pd.factorize(point_cell, sort=True)
    ids = [str(c) for c in ids]
    n_cells = len(ids)
    cells = gpd.GeoDataFrame(
        {"cell": pd.Series(ids, dtype=object)},
        geometry=gpd.GeoSeries(cell_polygons(ids), crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    units = np.bincount(codes, minlength=n_cells).astype(np.int64)
    frames = []
    for kind, spec in specs.items():
        if f"minutes_{kind}" not in res:
            continue
        group = spec.target_group if spec.target_group in res else "population"
        weight = res[group].to_numpy(dtype=float)
        weight = np.where(np.isfinite(weight), weight, 0.0)
        minutes = res[f"minutes_{kind}"].to_numpy(dtype=float)
        covered = res[f"covered_{kind}"].to_numpy(dtype=bool)
        reach = np.isfinite(minutes)
        pop = np.bincount(codes, weights=weight, minlength=n_cells)
        cov = np.bincount(codes, weights=np.where(covered, weight, 0.0), minlength=n_cells)
        w_reach = np.where(reach, weight, 0.0)
        pop_reach = np.bincount(codes, weights=w_reach, minlength=n_cells)
        sum_min = np.bincount(
            codes, weights=np.where(reach, minutes, 0.0) * w_reach, minlength=n_cells
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(pop > 0, cov / pop, np.nan)
            mean = np.where(pop_reach > 0, sum_min / pop_reach, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "kind": kind,
                    "cell": ids,
                    "residents": units,
                    "population": pop,
                    "covered_population": cov,
                    "covered_share": share,
                    "mean_minutes": mean,
                }
            )
        )
    columns = [
        "kind",
        "cell",
        "residents",
        "population",
        "covered_population",
        "covered_share",
        "mean_minutes",
    ]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    edge_m = float(h3.average_hexagon_edge_length(resolution, unit="m"))
    log.info(
        "residents in hexagons: %d unit(s) in %d H3 cell(s) at resolution %d (edge ~%.0f m)",
        len(res),
        n_cells,
        resolution,
        edge_m,
    )
    return ResidentHexes(resolution=resolution, edge_m=edge_m, cells=cells, table=table)
