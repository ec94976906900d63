"""Studies on real streets from OpenStreetMap alone (``prepare-osm``).

::

    reader      the one pyosmium reader: nodes, ways with node locations, areas as polygons
    residents   residents spread over residential buildings by floor area (exact totals)
    facilities  facility layers from OSM tags (proxies, flagged), is_osm_proxy()
    prepare     prepare_from_osm(): residents, facilities, 街道 and plan.toml in one folder

``reader`` imports nothing of the project but :mod:`layers.errors`, so :mod:`geo` reads its
walk network through it too.  Importing this package loads none of the modules.
"""
