"""A walk network for the fixture result (``StudyResult.streets``), built from its own geometry.

A grid of street segments about 200 m long over the fixture's two 街道; each layer's minutes at
a segment's middle follow the fixture's rule (straight metres to the nearest facility of the
kind, times the detour factor, over the layer's walking speed), and a small island in the
north-east corner is unreachable for every layer.  The map only draws these numbers.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString

from coverage.result import StudyResult
from tests.fixtures_result import DETOUR, METRIC, WGS84

STEP_DEG = 0.002
ISLAND = (120.2095, 30.2775)  # segments whose middle is east and north of this are cut off


def street_grid() -> list[LineString]:
    """Segments between neighbouring nodes of a regular grid over the fixture's 街道."""
    lons = np.round(np.arange(120.186, 120.2141, STEP_DEG), 6)
    lats = np.round(np.arange(30.259, 30.2811, STEP_DEG), 6)
    lines = []
    for lat in lats:
        lines += [LineString([(a, lat), (b, lat)]) for a, b in itertools.pairwise(lons)]
    for lon in lons:
        lines += [LineString([(lon, a), (lon, b)]) for a, b in itertools.pairwise(lats)]
    return lines


def with_streets(result: StudyResult) -> StudyResult:
    """``result`` with a street network carrying every layer's minutes."""
    streets = gpd.GeoDataFrame(geometry=street_grid(), crs=WGS84)
    mid = shapely.line_interpolate_point(np.asarray(streets.geometry.array), 0.5, normalized=True)
    x, y = shapely.get_x(mid), shapely.get_y(mid)
    island = (x > ISLAND[0]) & (y > ISLAND[1])
    mid_m = gpd.GeoSeries(mid, crs=WGS84).to_crs(METRIC)
    fac_m = result.facilities.to_crs(METRIC)
    for kind, spec in result.specs.items():
        f = fac_m[fac_m["kind"] == kind]
        d = np.hypot(
            mid_m.x.to_numpy()[:, None] - f.geometry.x.to_numpy()[None, :],
            mid_m.y.to_numpy()[:, None] - f.geometry.y.to_numpy()[None, :],
        )
        minutes = d.min(axis=1) * DETOUR / spec.metres_per_minute
        minutes[island] = np.inf
        streets[f"minutes_{kind}"] = minutes
    return replace(result, streets=streets)
