"""Street networks and routing: the walk network, snapping, shortest walks, service areas.

Modules, one concern each::

    walkfilter    which OSM ways people walk on (one filter for every source), street names
    load          load_network(): .osm.pbf / .osm / GraphML -> WalkNetwork, cached on disk;
                  study_extent() and walking_halo_m() for the clip
    network       WalkNetwork: frozen arrays (nodes, edges, lengths, geometries, names)
    snap          snap_points(): nearest point on the nearest walkable edge; street names
    routing       nearest_distances(): ONE multi-source Dijkstra with exact partial edges;
                  reachable_pairs() in batches, never a dense matrix
    service_area  service-area polygons from reached street pieces (never hulls)

Public API (imported lazily)::

    from geo import load_network, snap_points, nearest_distances
    net = load_network("westlake_10km.osm.pbf")            # WalkNetwork, metric CRS
    fac = snap_points(net, net.project_lonlat(lon, lat))    # Snapped
    near = nearest_distances(net, fac, residents_snapped)   # metres per resident, inf = none

Nothing here knows about facility kinds or coverage: that is :mod:`coverage`.
"""

from __future__ import annotations

from layers.lazy import lazy_exports

__all__ = [
    "WalkNetwork",
    "load_network",
    "nearest_distances",
    "reachable_pairs",
    "service_areas",
    "snap_points",
]

_WHERE = {
    "WalkNetwork": "geo.network",
    "load_network": "geo.load",
    "nearest_distances": "geo.routing",
    "reachable_pairs": "geo.routing",
    "service_areas": "geo.service_area",
    "snap_points": "geo.snap",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
