"""The one reader of OpenStreetMap files, for every use: streets, points of interest, buildings.

pyosmium is the maintained binding of libosmium (the reader behind osmium-tool and Geofabrik's
extracts): it reads ``.osm.pbf``, ``.osm``, ``.osm.bz2`` and ``.osm.gz`` through one API (the
suffix picks the format), keeps node locations for ways, and assembles areas (closed ways and
multipolygon relations) into polygons.  pyrosm only reads PBF and OSMnx 2 only reads XML, so
either would leave one format to another code path.

:func:`read_osm` streams plain records, not pyosmium's objects (those die with their buffer):

* :class:`OsmNode` for tagged nodes with a location;
* :class:`OsmWay` with its node ids and their locations, ``None`` where a clipped extract lacks
  the node (:meth:`OsmWay.runs` splits there, never bridging the gap);
* :class:`OsmArea`, a building or compound as a WKB multipolygon (broken rings skipped).

Each use says what it wants: which kinds, the keys an object must carry (filtered inside
libosmium, before Python sees it), a test on the raw tags, and the tags to copy.  A file that
is missing, empty or unreadable is one :class:`~layers.errors.InputError`.  The walk network
(:func:`geo.load.read_osm_ways`), facility layers from tags (:mod:`layers.osm.facilities`) and
residential buildings (:mod:`layers.osm.residents`) all read through here.

This module imports nothing of the project but :mod:`layers.errors`, so ``geo`` may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Final

from layers.errors import InputError
from layers.io.files import check_existing

if TYPE_CHECKING:
    import osmium

#: Suffixes read as OSM files (libosmium tells PBF, XML and their compressions by suffix).
OSM_SUFFIXES: Final = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz", ".xml", ".osm.xml")
_UNREADABLE_FIX: Final = "check that it is a complete .osm.pbf/.osm file (re-download if truncated)"

Tags = dict[str, str]


@dataclass(frozen=True, slots=True)
class OsmNode:
    """A tagged node with a location."""

    id: int
    lon: float
    lat: float
    tags: Tags


@dataclass(frozen=True, slots=True)
class OsmWay:
    """A way: its node ids and their ``(lon, lat)``, ``None`` where the extract lacks the node."""

    id: int
    tags: Tags
    refs: tuple[int, ...]
    coords: tuple[tuple[float, float] | None, ...]
    closed: bool

    def runs(self) -> list[list[int]]:
        """Node ids in pieces of two nodes or more, split where a location is missing.

        A node repeated straight after itself is kept once.
        """
        out: list[list[int]] = []
        run: list[int] = []
        for ref, loc in zip(self.refs, self.coords, strict=True):
            if loc is None:
                if len(run) >= 2:
                    out.append(run)
                run = []
            elif not run or run[-1] != ref:
                run.append(ref)
        if len(run) >= 2:
            out.append(run)
        return out

    def located(self) -> list[tuple[float, float]]:
        """The ``(lon, lat)`` of the nodes that have a location, in order."""
        return [c for c in self.coords if c is not None]


@dataclass(frozen=True, slots=True)
class OsmArea:
    """A closed way or multipolygon relation as a WKB multipolygon; ``id`` is ``w123``/``r45``."""

    id: str
    tags: Tags
    wkb: bytes


OsmRecord = OsmNode | OsmWay | OsmArea


def check_osm_file(path: str | PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path`; a missing or empty file is an :class:`InputError`."""
    return check_existing(
        path,
        what="OSM file",
        name_it="name the .osm.pbf or .osm file itself",
        empty_fix="download or export it again",
    )


def read_osm(
    path: str | PathLike[str],
    *,
    nodes: bool = False,
    ways: bool = False,
    areas: bool = False,
    keys: Iterable[str] = (),
    where: Callable[[osmium.osm.TagList], bool] | None = None,
    tags: Iterable[str] = (),
) -> Iterator[OsmRecord]:
    """Stream the nodes, ways and/or areas of an OSM file as plain records.

    Parameters
    ----------
    path
        ``.osm.pbf``, ``.osm``, ``.osm.bz2``, ``.osm.gz`` or ``.osm.xml``.
    nodes, ways, areas
        Which records to yield.  Node locations are always kept for ways; ``areas`` assembles
        closed ways and multipolygon relations (a second pass over the file).
    keys
        Only objects carrying at least one of these tag keys are yielded (and, for areas,
        assembled).  The test runs inside libosmium, after node locations are taken, so it
        changes no geometry.  Empty: every object.
    where
        A test on the object's raw tags (pyosmium's ``TagList``: ``.get(key)``, ``key in``),
        run before a record is made.
    tags
        The tag keys copied into each record's ``tags`` (those present).

    Raises
    ------
    InputError
        For a missing, empty or unreadable file.  Errors raised by the caller's own code
        while it consumes the records are not touched.
    """
    import osmium

    p = check_osm_file(path)
    wanted = tuple(keys)
    copied = tuple(tags)
    entities = osmium.osm.ALL if areas else osmium.osm.NODE | osmium.osm.WAY
    fp = osmium.FileProcessor(str(p), entities)
    if areas:
        fp = fp.with_areas(osmium.filter.KeyFilter(*wanted)) if wanted else fp.with_areas()
    else:
        fp = fp.with_locations()
    if wanted:
        fp = fp.with_filter(osmium.filter.KeyFilter(*wanted))
    wkb = osmium.geom.WKBFactory()
    try:
        for obj in fp:
            if isinstance(obj, osmium.osm.Area):
                if not areas or (where is not None and not where(obj.tags)):
                    continue
                try:
                    geom = wkb.create_multipolygon(obj)
                except RuntimeError:  # broken ring in a clipped extract
                    continue
                yield OsmArea(
                    f"{'w' if obj.from_way() else 'r'}{obj.orig_id()}",
                    _copy(obj.tags, copied),
                    bytes.fromhex(geom) if isinstance(geom, str) else geom,
                )
            elif isinstance(obj, osmium.osm.Way):
                if not ways or (where is not None and not where(obj.tags)):
                    continue
                refs = []
                coords: list[tuple[float, float] | None] = []
                for nd in obj.nodes:
                    loc = nd.location
                    refs.append(nd.ref)
                    coords.append((loc.lon, loc.lat) if loc.valid() else None)
                yield OsmWay(
                    obj.id, _copy(obj.tags, copied), tuple(refs), tuple(coords), obj.is_closed()
                )
            elif isinstance(obj, osmium.osm.Node):
                if not nodes or not obj.location.valid() or not len(obj.tags):
                    continue
                if where is not None and not where(obj.tags):
                    continue
                loc = obj.location
                yield OsmNode(obj.id, loc.lon, loc.lat, _copy(obj.tags, copied))
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"not a readable OSM file ({first})"
        raise InputError(msg, file=p, fix=_UNREADABLE_FIX) from None


def _copy(raw: osmium.osm.TagList, keys: tuple[str, ...]) -> Tags:
    out: Tags = {}
    for key in keys:
        value = raw.get(key)
        if value is not None:
            out[key] = value
    return out
