"""Loading walk networks from files (OSM PBF/XML, GraphML) or online (OSMnx), with a disk cache.

PBF and XML are read with pyosmium: it is the maintained binding of libosmium (the reader behind
osmium-tool and Geofabrik's extracts), reads ``.osm.pbf``, ``.osm``, ``.osm.bz2`` and ``.osm.gz``
through one API, resolves node locations for ways itself, and reads the 3 MB Hangzhou extract in
about a second.  pyrosm only reads PBF, and OSMnx 2 only reads XML (and needs the whole file
filtered first), so either would leave one format to another code path.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geo.network import WalkNetwork, build_network, network_from_graph
from geo.walkfilter import is_walkable
from layers.atomic import atomic_path
from layers.errors import InputError

log = logging.getLogger(__name__)

#: Bump when the network arrays or the walk filter change, so old cache entries are ignored.
CACHE_VERSION = 3
OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz", ".xml", ".osm.xml")
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
    if not path.exists():
        msg = "network file not found"
        raise InputError(msg, file=path, fix="check the path")
    if path.is_dir():
        msg = "is a folder, not a network file"
        raise InputError(msg, file=path, fix="name the file itself")
    if path.stat().st_size == 0:
        msg = "network file is empty"
        raise InputError(msg, file=path, fix="download or export it again")


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_osm_ways(path: Path) -> tuple[dict[int, tuple[float, float]], list[list[int]]]:
    """Walkable ways of an OSM file and the locations of their nodes.

    Ways are split where a referenced node has no location (clipped extracts), never bridged
    across the gap.
    """
    import osmium

    locations: dict[int, tuple[float, float]] = {}
    ways: list[list[int]] = []
    try:
        fp = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
        for obj in fp:
            if not isinstance(obj, osmium.osm.Way):
                continue
            tags = obj.tags
            if "highway" not in tags:
                continue
            if not is_walkable(
                {k: tags.get(k) for k in ("highway", "foot", "access", "service", "area")}
            ):
                continue
            run: list[int] = []
            for nd in obj.nodes:
                loc = nd.location
                if loc.valid():
                    locations[nd.ref] = (loc.lon, loc.lat)
                    if not run or run[-1] != nd.ref:
                        run.append(nd.ref)
                else:
                    if len(run) >= 2:
                        ways.append(run)
                    run = []
            if len(run) >= 2:
                ways.append(run)
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"not a readable OSM file ({first})"
        raise InputError(
            msg,
            file=path,
            fix="check that it is a complete .osm.pbf/.osm file (re-download if truncated)",
        ) from None
    if not ways:
        msg = "no walkable streets in this OSM file"
        raise InputError(
            msg,
            file=path,
            fix="use an extract that contains highway=* ways for the study area",
        )
    return locations, ways


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
        Study area in lon/lat; the network is clipped to it plus ``buffer_m`` so that facilities
        just across the boundary still serve residents inside.
    buffer_m
        Buffer around the study area, in metres.
    crs
        Metric CRS (e.g. ``4549`` for CGCS2000 Gauss-Kruger CM 120E); default local UTM.
    cache_dir
        Where built networks are kept; default :func:`default_cache_dir`.
    use_cache
        Read and write the cache.  The key is the file's content hash plus the options, so an
        edited file or other options never return a stale network.

    Returns
    -------
    WalkNetwork
        The largest connected walkable component, projected.
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
                net = WalkNetwork.from_arrays(data)
            log.info("network from cache %s: %s", cached, net.report.describe())
            return net
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable cache entry %s", cached)

    if kind == "osm":
        locations, ways = read_osm_ways(path)
        net = build_network(
            locations, ways, source=path.name, crs=crs, aoi_wgs84=aoi_wgs84, buffer_m=buffer_m
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
