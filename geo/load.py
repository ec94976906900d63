"""Loading walk networks from files (OSM PBF/XML, GraphML) or online (OSMnx), with a disk cache.

OSM files are read through :mod:`layers.osm.reader`, the project's one pyosmium reader (PBF, XML,
``.osm.bz2``, ``.osm.gz``; node locations resolved for ways; ways split where a clipped extract
lacks a node).  It reads the 3 MB Hangzhou extract in about a second.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyproj
import shapely

from geo.network import WalkNetwork, build_network, network_from_graph
from geo.walkfilter import NAME_TAGS, is_footpath, is_walkable, street_names
from layers.atomic import atomic_path
from layers.errors import InputError
from layers.io.files import check_existing
from layers.osm.reader import OSM_SUFFIXES, OsmWay, read_osm

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)

#: Bump when the network arrays or the walk filter change, so old cache entries are ignored.
CACHE_VERSION = 5
#: What reading a damaged cache entry can raise: a cut-short zip, a cut-short member, an
#: unreadable file, arrays that do not fit together, a missing array or report number.
_UNREADABLE_CACHE = (
    zipfile.BadZipFile,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    pyproj.exceptions.CRSError,
)
#: Metres per degree of latitude (and of longitude at the equator), for sizing extent cells.
_M_PER_DEG = 111_320.0
#: The tags the walk filter reads (:mod:`geo.walkfilter`).
_WALK_TAGS = ("highway", "foot", "access", "service", "area")
GRAPHML_SUFFIXES = (".graphml", ".graphml.gz")


def default_cache_dir() -> Path:
    """``$SERVICECIRCLE_CACHE`` or ``~/.cache/servicecircle/networks``."""
    env = os.environ.get("SERVICECIRCLE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "servicecircle" / "networks"


def _kind_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(GRAPHML_SUFFIXES):
        return "graphml"
    if name.endswith(OSM_SUFFIXES):
        return "osm"
    msg = "unknown network file type"
    raise InputError(
        msg,
        file=path,
        fix="give an .osm.pbf, .osm, .osm.bz2 or .graphml file",
    )


def _check_file(path: Path) -> None:
    check_existing(
        path,
        what="network file",
        name_it="name the file itself",
        empty_fix="download or export it again",
    )


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_osm_ways(
    path: Path,
) -> tuple[dict[int, tuple[float, float]], list[list[int]], list[bool], list[str]]:
    """Walkable ways of an OSM file, the locations of their nodes, which are footpaths, names.

    Ways are split where a referenced node has no location (clipped extracts), never bridged
    across the gap.  The third list says for each way whether it is made for people on foot
    (:func:`geo.walkfilter.is_footpath`), to tell a walking network from a driving one.  The
    fourth is each way's street name (``name:zh``, else ``name``, else ``ref``; ``""`` when
    unnamed), so that places on the network can be told by the street they are on.
    """
    locations: dict[int, tuple[float, float]] = {}
    ways: list[list[int]] = []
    footpath: list[bool] = []
    names: list[str] = []
    for way in read_osm(path, ways=True, keys=("highway",), tags=(*_WALK_TAGS, *NAME_TAGS)):
        assert isinstance(way, OsmWay)
        wtags = {k: way.tags.get(k) for k in _WALK_TAGS}
        if not is_walkable(wtags):
            continue
        foot = is_footpath(wtags)
        found = street_names({k: way.tags.get(k) for k in NAME_TAGS})
        name = found[0] if found else ""
        for ref, loc in zip(way.refs, way.coords, strict=True):
            if loc is not None:
                locations[ref] = loc
        for run in way.runs():
            ways.append(run)
            footpath.append(foot)
            names.append(name)
    if not ways:
        msg = "no walkable streets in this OSM file"
        raise InputError(
            msg,
            file=path,
            fix="use an extract that contains highway=* ways for the study area",
        )
    return locations, ways, footpath, names


def _load_graphml(path: Path) -> Any:
    import osmnx as ox

    try:
        if path.name.lower().endswith(".gz"):
            with tempfile.TemporaryDirectory() as tmp:
                plain = Path(tmp) / path.name[:-3]
                with gzip.open(path, "rb") as src, plain.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                return ox.load_graphml(plain)
        return ox.load_graphml(path)
    except (OSError, ValueError, KeyError, SyntaxError, EOFError) as exc:
        msg = f"not a readable OSMnx GraphML file ({type(exc).__name__})"
        raise InputError(
            msg,
            file=path,
            fix="save the graph with osmnx.save_graphml, or give the OSM file instead",
        ) from None
    except Exception as exc:  # lxml/ElementTree parse errors have no common base
        msg = f"not a readable GraphML file ({str(exc).splitlines()[0][:80]})"
        raise InputError(
            msg,
            file=path,
            fix="save the graph with osmnx.save_graphml, or give the OSM file instead",
        ) from None


def walking_halo_m(speeds_kmh: Iterable[float], max_minutes: float, *, max_snap_m: float) -> float:
    """How far around the study points the network must reach so that the clip changes nothing.

    The longest walk any layer reports against (the fastest speed times the longest minutes:
    thresholds, headline and targets) plus two access legs of ``max_snap_m``.  A walk that long
    from a resident, facility or candidate stays within that distance of it, so with
    ``load_network(aoi_wgs84=study_extent(...), buffer_m=walking_halo_m(...))`` every minute up
    to the horizon, and every snap, is what the whole unclipped network would give.  The two
    legs are slack: the routing cutoff already counts both legs in the walk.

    Parameters
    ----------
    speeds_kmh
        Walking speed of every layer in use.
    max_minutes
        The longest minutes any layer is measured against.
    max_snap_m
        Longest straight access leg from a point to the street.

    Returns
    -------
    float
        The halo in metres.
    """
    speeds = [float(v) for v in speeds_kmh]
    if not speeds or not all(np.isfinite(v) and v > 0 for v in speeds):
        msg = f"speeds must be positive km/h, got {speeds!r}"
        raise ValueError(msg)
    if not (np.isfinite(max_minutes) and max_minutes > 0):
        msg = f"max_minutes must be positive, got {max_minutes!r}"
        raise ValueError(msg)
    if not (np.isfinite(max_snap_m) and max_snap_m >= 0):
        msg = f"max_snap_m must be >= 0, got {max_snap_m!r}"
        raise ValueError(msg)
    return max(speeds) * 1000.0 / 60.0 * float(max_minutes) + 2.0 * float(max_snap_m)


def study_extent(
    geometries_wgs84: Sequence[shapely.Geometry | gpd.GeoSeries | None],
    *,
    halo_m: float,
) -> shapely.Geometry:
    """The area the network is clipped around: every resident, facility and candidate.

    Points are gathered into square cells about ``halo_m`` wide (never below 250 m) and the
    extent is the union of the occupied cells, so a facility far from the residents adds a small
    square rather than stretching one envelope over everything between.  Lines and polygons (for
    example area boundaries) add their envelope.  The extent covers every point; pass the halo
    to :func:`load_network` as ``buffer_m`` to reach around it.

    Parameters
    ----------
    geometries_wgs84
        Layers in lon/lat (GeoSeries are converted to EPSG:4326 when they say another CRS), or
        single geometries; ``None`` and empty geometries are skipped.
    halo_m
        The walking halo of :func:`walking_halo_m`: sets the cell size only.

    Returns
    -------
    shapely.Geometry
        A (Multi)Polygon in lon/lat.
    """
    import geopandas as gpd

    pts: list[np.ndarray] = []
    boxes: list[shapely.Geometry] = []
    for layer in geometries_wgs84:
        if layer is None:
            continue
        if isinstance(layer, gpd.GeoSeries):
            if layer.crs is not None and not layer.crs.equals(pyproj.CRS.from_epsg(4326)):
                layer = layer.to_crs(4326)
            geoms = np.asarray(layer.values, dtype=object)
        else:
            geoms = np.atleast_1d(np.asarray(layer, dtype=object))
        geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
        kind = shapely.get_type_id(geoms)
        pointlike = (kind == 0) | (kind == 4)  # Point, MultiPoint
        if pointlike.any():
            pts.append(shapely.get_coordinates(geoms[pointlike]))
        boxes.extend(shapely.envelope(geoms[~pointlike]).tolist())
    xy = np.vstack(pts) if pts else np.zeros((0, 2))
    xy = xy[np.isfinite(xy).all(axis=1)]
    if not len(xy) and not boxes:
        msg = "study_extent needs at least one geometry"
        raise ValueError(msg)
    if len(xy):
        lat_max = float(np.max(np.abs(xy[:, 1])))
        cell_m = max(float(halo_m), 250.0)
        dlat = cell_m / _M_PER_DEG
        dlon = cell_m / (_M_PER_DEG * max(np.cos(np.radians(min(lat_max, 89.0))), 1e-3))
        cells = np.unique(np.floor(xy / [dlon, dlat]).astype(np.int64), axis=0)
        boxes.extend(
            shapely.box(
                cells[:, 0] * dlon,
                cells[:, 1] * dlat,
                (cells[:, 0] + 1) * dlon,
                (cells[:, 1] + 1) * dlat,
            ).tolist()
        )
    return shapely.union_all(boxes)


def load_network(
    source: str | Path,
    *,
    aoi_wgs84: shapely.Geometry | None = None,
    buffer_m: float = 1000.0,
    crs: Any = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> WalkNetwork:
    """Load a walking network from an OSM or GraphML file, cached on disk.

    Parameters
    ----------
    source
        ``.osm.pbf``, ``.osm``, ``.osm.bz2``, ``.osm.gz`` or OSMnx ``.graphml`` (``.gz`` allowed).
    aoi_wgs84
        Study area in lon/lat (see :func:`study_extent`); the network is clipped to it plus
        ``buffer_m``.  ``None`` keeps the whole file.
    buffer_m
        Buffer around the study area, in metres (see :func:`walking_halo_m`).  Every network
        distance up to ``buffer_m`` from a point in ``aoi_wgs84`` is the same as without a clip;
        see :func:`geo.network.build_network` for what exactly the clip guarantees.
    crs
        Metric CRS (e.g. ``4549`` for CGCS2000 Gauss-Kruger CM 120E); default local UTM.
    cache_dir
        Where built networks are kept; default :func:`default_cache_dir`.
    use_cache
        Read and write the cache.  The key is the file's content hash plus the options (the clip
        area and buffer included), so an edited file or other options never return a stale
        network.  An entry that cannot be read, or whose arrays do not fit together, is rebuilt
        and written again, with a warning naming it.

    Returns
    -------
    WalkNetwork
        The largest connected walkable component, clipped and projected.  Its report carries
        the warnings (also logged), such as a network that looks like a driving network.
    """
    path = Path(source)
    _check_file(path)
    kind = _kind_of(path)
    key_parts = {
        "v": CACHE_VERSION,
        "sha256": _file_digest(path),
        "aoi": None if aoi_wgs84 is None else shapely.to_wkt(aoi_wgs84, rounding_precision=7),
        "buffer_m": float(buffer_m),
        "crs": None if crs is None else str(crs),
    }
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:24]
    cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = cdir / f"{path.name.split('.')[0]}-{key}.npz"
    if use_cache and cached.exists():
        try:
            with np.load(cached, allow_pickle=False) as data:
                net = WalkNetwork.from_arrays(data)  # checks that the arrays fit together
        except _UNREADABLE_CACHE as exc:
            # a run killed while writing, a full disk, a copied half file: rebuild, never fail
            log.warning(
                "network cache entry %s cannot be read (%s: %s); rebuilding it",
                cached,
                type(exc).__name__,
                str(exc).splitlines()[0][:80] if str(exc) else "",
            )
        else:
            log.info("network from cache %s: %s", cached, net.report.describe())
            for w in net.report.warnings:
                log.warning("%s", w)
            return net

    if kind == "osm":
        locations, ways, footpath, names = read_osm_ways(path)
        net = build_network(
            locations,
            ways,
            source=path.name,
            crs=crs,
            aoi_wgs84=aoi_wgs84,
            buffer_m=buffer_m,
            way_is_footpath=footpath,
            way_names=names,
        )
    else:
        G = _load_graphml(path)
        net = network_from_graph(
            G, source=path.name, crs=crs, aoi_wgs84=aoi_wgs84, buffer_m=buffer_m
        )
    log.info("built network from %s: %s", path.name, net.report.describe())
    if use_cache:
        try:
            with atomic_path(cached, force=True) as tmp, tmp.open("wb") as fh:
                np.savez(fh, **net.arrays())
        except OSError as exc:
            log.warning("could not write network cache %s (%s)", cached, exc)
    return net


def network_from_place(
    query: str | dict[str, str] | shapely.Geometry | tuple[float, float, float, float],
    *,
    crs: Any = None,
    buffer_m: float = 0.0,
) -> WalkNetwork:
    """Download a walking network online through OSMnx (needs internet access).

    ``query`` is a place name ("上城区, 杭州市"), a Nominatim query dict, a lon/lat polygon, or a
    ``(west, south, east, north)`` bbox.  The same walk filter as for files is applied to the
    downloaded ways.
    """
    import osmnx as ox

    try:
        if isinstance(query, shapely.Geometry):
            G = ox.graph_from_polygon(query, network_type="all", retain_all=True)
        elif isinstance(query, tuple):
            G = ox.graph_from_bbox(query, network_type="all", retain_all=True)
        else:
            G = ox.graph_from_place(query, network_type="all", retain_all=True)
    except Exception as exc:  # network errors, Nominatim misses: all user-facing
        msg = f"could not download a network for {query!r} ({type(exc).__name__}: {exc})"
        raise InputError(
            msg,
            file="--place",
            fix="check the place name and the internet connection, or give --network FILE",
        ) from None
    return network_from_graph(G, source=f"OSM online: {query}", crs=crs, buffer_m=buffer_m)
