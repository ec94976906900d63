"""The column lists of the result's tables, in one place.

Summary, report, exports and tests read these names from here, so a column is added or renamed
once.  The meaning of each column is documented in :mod:`coverage.result`.
"""

from __future__ import annotations

from typing import Final

#: The long ``metrics`` table (and ``metrics_after``).
METRIC_COLUMNS: Final[tuple[str, ...]] = (
    "kind",
    "target_group",
    "minutes",
    "level",
    "area",
    "population",
    "covered_population",
    "coverage_rate",
    "mean_minutes",
    "p90_minutes",
    "unsnapped",
    "unreachable",
)

#: One row per layer: how evenly coverage is spread over the 街道.
EQUITY_COLUMNS: Final[tuple[str, ...]] = (
    "kind",
    "gini",
    "gini_weighted",
    "cv",
    "worst_area",
    "worst_rate",
    "best_area",
    "best_rate",
    "best_worst_gap",
)

#: Gap zones, worst first per layer (plus the zone outline).
GAP_COLUMNS: Final[tuple[str, ...]] = (
    "kind",
    "gap_id",
    "uncovered_population",
    "residents",
    "area",
    "area_km2",
    "nearest_facility",
    "nearest_facility_minutes",
)

#: Facilities of every layer (plus the point).
FACILITY_COLUMNS: Final[tuple[str, ...]] = (
    "facility_id",
    "kind",
    "name",
    "capacity",
    "snapped",
    "access_m",
    "demand_load",
    "load_ratio",
)

#: Suggested sites in the order chosen (plus the point).
SUGGESTION_COLUMNS: Final[tuple[str, ...]] = (
    "kind",
    "rank",
    "site_id",
    "name",
    "street",
    "area",
    "community",
    "model",
    "added_population",
    "coverage_rate_after",
)

#: Service-area polygons: the dissolved layer (``facility_id`` "") or one facility.
SERVICE_AREA_COLUMNS: Final[tuple[str, ...]] = ("kind", "minutes", "facility_id")
