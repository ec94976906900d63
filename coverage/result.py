"""The analysis result, filled by ``coverage`` and only read by maps, report and exports.

All frames are in WGS84 (EPSG:4326) so that renderers and writers never reproject by accident;
analysis happens in the network's metric CRS before they are built.  Unreachable or unsnapped
minutes are ``inf`` in memory (writers turn them into empty/NULL values).

Schema
------
facilities (GeoDataFrame, Point)
    ``facility_id`` (str), ``kind`` (str), ``name`` (str), ``capacity`` (float, NaN if unknown),
    ``snapped`` (bool), ``access_m`` (float, straight leg to the street), ``demand_load``
    (2SFCA: decay-weighted target population in the catchment; NaN when the layer has no
    capacities), ``load_ratio`` (demand_load / capacity, > 1 = over-subscribed; NaN when the
    capacity is unknown).
residents (GeoDataFrame, Point: the resident unit's point, e.g. a compound centroid)
    ``resident_id`` (str), ``name`` (str), ``population`` (float) and every target-group column
    used by a layer (``elderly``, ``youth``, ...), ``area`` (str, 街道 name or "" if outside all),
    ``community`` (str, 社区 name or ""), ``snapped`` (bool);
    per kind K: ``minutes_K`` (float, inf when unreachable), ``facility_K`` (str, nearest
    facility id, "" when none), ``covered_K`` (bool, within K's headline minutes);
    ``layers_covered`` (int, how many layers are within their headline minutes);
    ``minutes_after_K`` for layers with suggestions (minutes once the suggested sites open).
service_areas (GeoDataFrame, Polygon/MultiPolygon)
    ``kind``, ``minutes`` (float), ``facility_id`` ("" for the dissolved union of the layer).
gaps (GeoDataFrame, Polygon: zone outline)
    ``kind``, ``gap_id`` (int, 1 = worst), ``uncovered_population`` (target group),
    ``residents`` (count of units), ``area`` (街道 the zone mostly lies in), ``area_km2``,
    ``nearest_facility`` (str), ``nearest_facility_minutes`` (float).
areas (GeoDataFrame, Polygon)
    ``area`` (str name), ``level`` ("street" for 街道, "community" for 社区, "hex" for H3),
    ``parent`` (str, 街道 of a 社区, "" otherwise); per kind K: ``coverage_K`` (rate at the
    headline minutes, NaN when the area has no target population), ``population_K``.
metrics (DataFrame, long)
    ``kind``, ``target_group``, ``minutes``, ``level`` ("district", "street", "community",
    "hex"), ``area`` ("" for the district), ``population``, ``covered_population``,
    ``coverage_rate`` (NaN when population is 0), ``mean_minutes``, ``p90_minutes``
    (population-weighted, over reachable residents), ``unsnapped``, ``unreachable``
    (counts of resident units).
equity (DataFrame, one row per kind)
    ``kind``, ``gini``, ``cv``, ``worst_area``, ``worst_rate``, ``best_area``, ``best_rate``,
    ``best_worst_gap`` (rates at the headline minutes across 街道).
streets (GeoDataFrame, LineString; optional)
    The walkable streets of the network with, per kind K, ``minutes_K``: walking minutes from
    the nearest facility to the street's middle (for drawing the network; never a number).
suggestions (GeoDataFrame, Point)
    ``kind``, ``rank`` (1 = chosen first), ``site_id`` (str), ``name`` (str), ``model`` (str),
    ``added_population`` (newly covered target population, marginal in the order chosen),
    ``coverage_rate_after`` (district rate after adding sites 1..rank).
metrics_after (DataFrame)
    The ``metrics`` table of each layer with suggestions, recomputed after adding the suggested
    sites (scenario comparison: same schema, same rows as that layer's ``metrics``).
targets (DataFrame, one row per planning target; empty without targets)
    ``label``, ``layer``, ``scope``, ``measure``, ``minutes``, ``threshold``, ``status``
    ("met"/"not met"), ``value`` (district value, or the worst unit's), ``units_met``,
    ``units_total``, ``shortfall_population``, ``shortfall_sites``, ``sites_needed`` (fewest new
    sites meeting every coverage target of the layer at once; NaN when it cannot be met),
    ``reason`` (why not, when no candidate can meet it).
target_units (DataFrame, one row per target and 街道/社区, worst first)
    ``target`` (row of ``targets``), ``label``, ``layer``, ``scope``, ``unit``, ``value``,
    ``met``, ``shortfall_population``, ``shortfall_sites``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from geo.network import BuildReport
from layers.spec import LayerSpec


@dataclass(frozen=True)
class SuggestionRun:
    """What the optimizer said for one layer (the table rows live in ``suggestions``)."""

    kind: str
    model: str
    coverage_rate_before: float
    coverage_rate_after: float
    optimal: bool
    gap: float
    status: str
    curve: tuple[tuple[int, float], ...] = ()  # (number of sites, coverage rate) for 0..p
    unreachable_population: float = 0.0  # target population no candidate can reach
    # before/after coverage per 街道 (or H3 cell) from the solver's own accounting
    # (columns area, population, coverage_rate_before, coverage_rate_after); None without areas
    per_area: pd.DataFrame | None = None


@dataclass(frozen=True)
class DataChecks:
    """What the inputs did to the numbers, shown to the reader instead of passing silently.

    Facilities beyond the snapping limit are in ``StudyResult.facilities`` (``snapped`` False);
    this holds what has no other place in the tables.
    """

    max_snap_m: float = 300.0  # points farther than this from any street are left out
    residents_outside_areas: int = 0  # resident units inside no 街道 polygon (district row only)
    population_outside_areas: float = 0.0
    area_overlaps: tuple[tuple[str, str, float], ...] = ()  # (area, area, share of the smaller)
    network_warnings: tuple[str, ...] = ()  # e.g. a drive network with almost no footways
    footpath_share: float | None = None  # footways/paths/steps share of the tagged street length
    osm_proxy_layers: tuple[str, ...] = ()  # layers built from OSM tags, not real facility lists


@dataclass(frozen=True)
class StudyResult:
    """Everything a map, report or export needs, computed once."""

    title: str
    specs: dict[str, LayerSpec]
    facilities: gpd.GeoDataFrame
    residents: gpd.GeoDataFrame
    service_areas: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    metrics: pd.DataFrame
    equity: pd.DataFrame
    suggestions: gpd.GeoDataFrame
    suggestion_runs: dict[str, SuggestionRun] = field(default_factory=dict)
    metrics_after: pd.DataFrame = field(default_factory=pd.DataFrame)
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)
    target_units: pd.DataFrame = field(default_factory=pd.DataFrame)
    synthetic: bool = False  # True for the demo district: every output says so
    sources: tuple[str, ...] = ()  # data source lines for the method section (OSM attribution)
    checks: DataChecks = field(default_factory=DataChecks)
    streets: gpd.GeoDataFrame | None = None  # walk network (LineString) with ``minutes_K``
    completeness: pd.DataFrame = field(default_factory=pd.DataFrame)  # layers within reach
    network: BuildReport | None = None  # what building the walk network kept and dropped
    timings_s: Mapping[str, float] = field(default_factory=dict)  # seconds per stage

    def unsnapped_facilities(self, kind: str) -> gpd.GeoDataFrame:
        """Facilities of ``kind`` too far from any street to serve anyone (never routed)."""
        f = self.facilities
        return f[(f["kind"] == kind) & ~f["snapped"].astype(bool)]

    def headline(self, kind: str) -> pd.Series:
        """The district row of ``metrics`` at the layer's headline minutes."""
        spec = self.specs[kind]
        m = self.metrics
        rows = m[
            (m["kind"] == kind) & (m["level"] == "district") & (m["minutes"] == spec.headline_min)
        ]
        return rows.iloc[0]
