"""Facility layers from OpenStreetMap tags, for studies on real streets without facility lists.

The tag table (``data/osm_tags.toml``) says which tags stand for each kind; most are proxies,
since OSM maps almost none of the four kinds in Hangzhou, and every layer built here says so in
its ``source`` column.  Areas (closed ways) become their centroid.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely

from layers.errors import InputError
from layers.osm.reader import OsmNode, OsmWay, read_osm

if TYPE_CHECKING:
    import osmium

log = logging.getLogger(__name__)

DEFAULT_TAGS = Path(__file__).resolve().parents[2] / "data" / "osm_tags.toml"
#: The ``source`` of every facility built here; outputs of a study using them say so.
OSM_PROXY_SOURCE = "OpenStreetMap tag proxy (ODbL; data/osm_tags.toml)"
_OLD_SOURCE = "OpenStreetMap (ODbL)"  # written by earlier versions of prepare-osm


def is_osm_proxy(facilities: gpd.GeoDataFrame) -> bool:
    """True when a facility layer was built from OSM tags by ``prepare-osm``, not a real list."""
    if "source" not in facilities.columns or len(facilities) == 0:
        return False
    src = facilities["source"].astype(str)
    return bool(src.isin([OSM_PROXY_SOURCE, _OLD_SOURCE]).all())


def load_tag_table(path: str | PathLike[str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """Kind -> list of (key, value) filters; value ``*`` matches any value."""
    p = Path(path) if path is not None else DEFAULT_TAGS
    with p.open("rb") as fh:
        table = tomllib.load(fh)
    out: dict[str, list[tuple[str, str]]] = {}
    for kind, entry in table.items():
        filters = []
        for text in entry.get("tags", []):
            key, sep, value = str(text).partition("=")
            if not sep or not key:
                msg = f"tag filter '{text}' of [{kind}] is not key=value"
                raise InputError(msg, file=p, fix='write e.g. "amenity=community_centre"')
            filters.append((key.strip(), value.strip()))
        out[kind] = filters
    return out


def facilities_from_osm(
    source: str | PathLike[str],
    *,
    tags: Mapping[str, list[tuple[str, str]]] | None = None,
    aoi: shapely.Geometry | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """One facility layer per kind from the tagged nodes and closed ways of an OSM file.

    Returns frames in the facility schema (``facility_id`` = ``n123``/``w45``, ``kind``,
    ``name``, ``capacity`` NaN, ``source``) in WGS84, clipped to ``aoi`` when given.
    """
    table = tags if tags is not None else load_tag_table()
    rows: dict[str, list[dict[str, object]]] = {k: [] for k in table}

    def match(obj_tags: Mapping[str, str] | osmium.osm.TagList) -> list[str]:
        kinds = []
        for kind, filters in table.items():
            for key, value in filters:
                v = obj_tags.get(key)
                if v is not None and (value == "*" or v == value):
                    kinds.append(kind)
                    break
        return kinds

    keys = sorted({key for filters in table.values() for key, _ in filters})
    for obj in read_osm(
        source,
        nodes=True,
        ways=True,
        keys=keys,
        where=lambda raw: bool(match(raw)),
        tags=(*keys, "name:zh", "name"),
    ):
        if isinstance(obj, OsmNode):
            lon, lat, oid = obj.lon, obj.lat, f"n{obj.id}"
        elif isinstance(obj, OsmWay):
            locs = obj.located()
            if not locs:
                continue
            arr = np.asarray(locs)
            geom = shapely.Polygon(arr) if len(arr) >= 4 and obj.closed else None
            c = (
                geom.centroid
                if geom is not None and geom.is_valid
                else shapely.Point(arr.mean(axis=0))
            )
            lon, lat, oid = c.x, c.y, f"w{obj.id}"
        else:
            continue
        name = obj.tags.get("name:zh") or obj.tags.get("name") or ""
        for kind in match(obj.tags):
            rows[kind].append(
                {
                    "facility_id": oid,
                    "kind": kind,
                    "name": name,
                    "capacity": np.nan,
                    "source": OSM_PROXY_SOURCE,
                    "geometry": shapely.Point(lon, lat),
                }
            )
    out = {}
    for kind, items in rows.items():
        gdf = gpd.GeoDataFrame(
            items or None,
            columns=["facility_id", "kind", "name", "capacity", "source", "geometry"],
            geometry="geometry",
            crs=4326,
        )
        if aoi is not None and len(gdf):
            gdf = gdf[gdf.geometry.within(aoi)]
        out[kind] = gdf.reset_index(drop=True)
        log.info("%s: %d features from OSM tags", kind, len(gdf))
    return out
