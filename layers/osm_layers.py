"""Old home of :mod:`layers.osm.facilities`, kept so ``from layers.osm_layers import ...`` works."""

from layers.osm.facilities import (
    OSM_PROXY_SOURCE,
    facilities_from_osm,
    is_osm_proxy,
    load_tag_table,
)

__all__ = ["OSM_PROXY_SOURCE", "facilities_from_osm", "is_osm_proxy", "load_tag_table"]
