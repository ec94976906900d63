"""Input layers: reading the user's files and plan, checking them, and preparing them from OSM.

Rows, from the ground up; a module imports only from its own row or a lower one, never up::

    ground   errors       InputError: the user's mistake, one line, exit 2 (imports nothing)
             atomic       atomic file and folder writes, --force, locks (imports errors only)
    base     crs          coordinate systems: parse, GCJ-02/BD-09, to/from WGS84, which applies
             osm.reader   the one pyosmium reader of OSM files (geo reads its streets with it)
    checks   validate     every check of input values (columns, coordinates, counts, overlaps)
             tomlfile     TOML and text as users save them (UTF-8, GBK, BOM), strict keys
             spec         the layer table (data/layers.toml): kinds, speeds, thresholds
    formats  io           files by format family: files, ogr (GeoPackage, GeoJSON, Shapefile),
                          tables (CSV, XLSX), parquet; io.api dispatches (read_table, write_table)
    model    model        residents, facilities, areas, candidates: columns, ids, WGS84 points
             plan         plan.toml and flags -> Plan (the plan boundary)
    osm      osm          prepare-osm: residents (dasymetric), facilities (OSM tags), prepare
    output   export       GIS exports of a study result (imports coverage: to move out of layers)

``prepare`` and ``osm_layers`` are the old homes of ``osm.prepare`` and ``osm.facilities``, kept
as re-exports for their importers outside this package.

InputError is raised only at the input and plan boundaries (files, plan, flags); a caller's
misuse of a function here raises ValueError or TypeError.  :mod:`geo`, :mod:`coverage` and
:mod:`maps` may use the ground floor (and ``osm.reader``); nothing here imports them, except
``export``.

Public API (imported lazily, so ``import layers.errors`` stays light)::

    from layers import read_residents, read_facilities, read_areas, read_plan
    residents = read_residents("residents.gpkg", coords="gcj02")   # WGS84 points
    facilities = read_facilities("canteens.csv", kind="canteen")
    gdf = read_table("any.shp"); write_table(gdf, "out.gpkg")
"""

from __future__ import annotations

from layers.lazy import lazy_exports

__all__ = [
    "InputError",
    "LayerSpec",
    "Plan",
    "list_layers",
    "load_layer_table",
    "prepare_from_osm",
    "read_areas",
    "read_candidates",
    "read_facilities",
    "read_plan",
    "read_residents",
    "read_table",
    "write_table",
]

_WHERE = {
    "InputError": "layers.errors",
    "LayerSpec": "layers.spec",
    "Plan": "layers.plan",
    "list_layers": "layers.io",
    "load_layer_table": "layers.spec",
    "prepare_from_osm": "layers.osm.prepare",
    "read_areas": "layers.model",
    "read_candidates": "layers.model",
    "read_facilities": "layers.model",
    "read_plan": "layers.plan",
    "read_residents": "layers.model",
    "read_table": "layers.io",
    "write_table": "layers.io",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
