"""The routable walking network: compact arrays in a metric CRS, built once and cached.

Every source (OSM PBF/XML, GraphML, OSMnx online) ends in :func:`build_network`, which projects,
drops parallel duplicates, keeps the largest connected component and records what it dropped.
Arrays rather than a networkx graph because routing, snapping and service areas all vectorise
over them, and they load from the cache in milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np
import pyproj
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from layers.errors import InputError

log = logging.getLogger(__name__)


#: Below this share of footways, paths, pedestrian ways and steps (by length of the tagged
#: streets) a network is probably a driving network.  The Hangzhou PBF has 24%, the OSMnx walk
#: GraphML of Shangcheng 15%, the demo district 26%; an OSMnx "drive" graph has 0%.
MIN_FOOTPATH_SHARE = 0.02


@dataclass(frozen=True)
class BuildReport:
    """What building the network kept and dropped, for the log and the report.

    Attributes
    ----------
    footpath_km
        Kept length made for people on foot (footways, paths, pedestrian ways, steps), see
        :func:`geo.walkfilter.is_footpath`.
    tagged_km
        Kept length whose ``highway`` tag is known; ``0`` for graphs without tags, where the
        footpath share cannot be judged.
    warnings
        Sentences for the run summary and report: things about the network that can change the
        numbers (today: a network that looks like a driving network).
    """

    source: str
    nodes: int
    edges: int
    length_km: float
    dropped_nodes: int
    dropped_edges: int
    dropped_km: float
    clipped_edges: int = 0
    footpath_km: float = 0.0
    tagged_km: float = 0.0
    warnings: tuple[str, ...] = ()

    @property
    def footpath_share(self) -> float | None:
        """Share of the tagged length made for people on foot; ``None`` when nothing is tagged."""
        return self.footpath_km / self.tagged_km if self.tagged_km > 0 else None

    def describe(self) -> str:
        """One line for logs and progress output."""
        text = f"{self.nodes} nodes, {self.edges} edges, {self.length_km:.1f} km of walkable street"
        share = self.footpath_share
        if share is not None:
            text += f" ({share:.0%} footways/paths)"
        if self.dropped_nodes:
            text += (
                f"; dropped {self.dropped_nodes} nodes / {self.dropped_km:.2f} km outside the "
                "largest connected part"
            )
        if self.clipped_edges:
            text += f"; {self.clipped_edges} edges clipped away outside the study area"
        for w in self.warnings:
            text += f"; WARNING: {w}"
        return text


def network_warnings(*, source: str, footpath_km: float, tagged_km: float) -> tuple[str, ...]:
    """The warnings a network with these lengths deserves (see :attr:`BuildReport.warnings`)."""
    if tagged_km <= 0 or footpath_km / tagged_km >= MIN_FOOTPATH_SHARE:
        return ()
    return (
        f"{source}: only {footpath_km / tagged_km:.1%} of {tagged_km:.0f} km of street are "
        "footways, paths, pedestrian ways or steps; this looks like a driving network (such as "
        "OSMnx network_type='drive'), which misses the paths people walk on and understates "
        "coverage; give --network an .osm.pbf extract or a walk/all GraphML",
    )


@dataclass(frozen=True, eq=False)
class WalkNetwork:
    """An undirected walking network in a metric CRS.

    Each street segment is stored once (walking ignores ``oneway``).  Edge geometries are kept as
    one coordinate array plus offsets, so building shapely objects is a single vectorised call.

    Attributes
    ----------
    crs
        Metric CRS of every coordinate (local UTM unless the user chose one).
    node_xy
        ``(n_nodes, 2)`` node coordinates in ``crs``.
    node_osmid
        OSM node id of each node (or the source graph's node key), for traceability.
    edge_u, edge_v
        End nodes of each edge; ``edge_u == edge_v`` for closed loops.
    edge_length_m
        Length of each edge's geometry in metres (> 0).
    coords, coord_offsets
        Edge ``e``'s polyline is ``coords[coord_offsets[e]:coord_offsets[e + 1]]``, from u to v.
    report
        What the build kept and dropped.
    edge_name
        Street name of each edge (object array of ``str``, ``""`` when unnamed): OSM
        ``name:zh``, else ``name``, else ``ref``.  Lets a suggested site say which street it is
        on (:func:`geo.snap.nearest_street_names`).  Left out, every edge is unnamed.
    """

    crs: pyproj.CRS
    node_xy: np.ndarray
    node_osmid: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    coords: np.ndarray
    coord_offsets: np.ndarray
    report: BuildReport
    edge_name: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __post_init__(self) -> None:
        # networks built without names (tests, old callers) get an unnamed edge each, so every
        # consumer can index edge_name without asking whether it exists
        names = self.edge_name
        if len(names) == 0 and self.edge_u.ndim == 1 and len(self.edge_u) > 0:
            names = np.full(len(self.edge_u), "", dtype=object)
        elif names.dtype != object:
            names = names.astype(object)
        object.__setattr__(self, "edge_name", names)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_xy)

    @property
    def n_edges(self) -> int:
        """Number of (undirected) edges."""
        return len(self.edge_u)

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        """Symmetric node adjacency weighted by length; parallel edges keep the shortest."""
        rows = np.concatenate([self.edge_u, self.edge_v])
        cols = np.concatenate([self.edge_v, self.edge_u])
        w = np.concatenate([self.edge_length_m, self.edge_length_m])
        keep = rows != cols  # a loop never shortens a path between nodes
        rows, cols, w = rows[keep], cols[keep], w[keep]
        order = np.lexsort((w, cols, rows))
        rows, cols, w = rows[order], cols[order], w[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        return sp.csr_matrix(
            (w[first], (rows[first], cols[first])), shape=(self.n_nodes, self.n_nodes)
        )

    @cached_property
    def vertex_cum_m(self) -> np.ndarray:
        """Distance of every stored vertex from its edge's start, aligned with ``coords``."""
        seg = np.hypot(*np.diff(self.coords, axis=0).T)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        starts = self.coord_offsets[:-1]
        base = np.repeat(cum[starts], np.diff(self.coord_offsets))
        return np.asarray(cum - base)

    def edge_geometries(self) -> np.ndarray:
        """Shapely LineStrings of all edges, in ``crs`` (built once, then shared; read-only)."""
        return self._edge_geometries

    @cached_property
    def _edge_geometries(self) -> np.ndarray:
        idx = np.repeat(np.arange(self.n_edges), np.diff(self.coord_offsets))
        geoms = np.asarray(shapely.linestrings(self.coords, indices=idx))
        geoms.flags.writeable = False
        return geoms

    @cached_property
    def segment_index(self) -> tuple[shapely.STRtree, np.ndarray, np.ndarray]:
        """Spatial index of the straight pieces of every edge, built on first use.

        Returns the tree, each piece's first vertex (into ``coords``) and its edge.  Pieces
        rather than whole polylines: a candidate costs one dot product, not a polyline walk.
        """
        start = np.ones(len(self.coords) - 1, dtype=bool)
        start[self.coord_offsets[1:-1] - 1] = False  # no piece joins two edges
        first = np.flatnonzero(start)
        edge = np.repeat(np.arange(self.n_edges), np.diff(self.coord_offsets) - 1)
        pieces = shapely.linestrings(np.stack([self.coords[first], self.coords[first + 1]], 1))
        return shapely.STRtree(pieces), first, edge

    @cached_property
    def named_segment_index(self) -> tuple[shapely.STRtree, np.ndarray]:
        """Spatial index of the straight pieces of the named edges only, built on first use.

        Returns the tree and each piece's edge.  Only named pieces, so that the nearest hit is
        already the nearest named street: a corner on an unnamed footway still finds the road
        beside it in one query.
        """
        _, first, edge = self.segment_index
        named = (self.edge_name != "")[edge]
        first, edge = first[named], edge[named]
        pieces = shapely.linestrings(np.stack([self.coords[first], self.coords[first + 1]], 1))
        return shapely.STRtree(pieces), edge

    @cached_property
    def street_length_m(self) -> dict[str, float]:
        """Total edge length of every street name, to tell a main road from a lane."""
        named = self.edge_name != ""
        uniq, inv = np.unique(self.edge_name[named].astype(str), return_inverse=True)
        total = np.bincount(inv, weights=self.edge_length_m[named], minlength=len(uniq))
        return dict(zip(uniq.tolist(), total.tolist(), strict=True))

    @cached_property
    def to_wgs84(self) -> pyproj.Transformer:
        """Transformer from ``crs`` to lon/lat."""
        return pyproj.Transformer.from_crs(self.crs, 4326, always_xy=True)

    @cached_property
    def from_wgs84(self) -> pyproj.Transformer:
        """Transformer from lon/lat to ``crs``."""
        return pyproj.Transformer.from_crs(4326, self.crs, always_xy=True)

    def project_lonlat(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """WGS84 lon/lat arrays to ``(n, 2)`` metric coordinates of this network."""
        x, y = self.from_wgs84.transform(np.asarray(lon, float), np.asarray(lat, float))
        return np.column_stack([x, y])

    def extent_wgs84(self) -> shapely.Polygon:
        """Bounding box of the nodes in lon/lat, to check that layers overlap the network."""
        x0, y0 = self.node_xy.min(axis=0)
        x1, y1 = self.node_xy.max(axis=0)
        lon, lat = self.to_wgs84.transform(np.array([x0, x1, x1, x0]), np.array([y0, y0, y1, y1]))
        return shapely.Polygon(np.column_stack([lon, lat]))

    def to_networkx(self) -> nx.MultiGraph:
        """The network as a networkx MultiGraph (``length`` in metres): for tests and interop."""
        G = nx.MultiGraph()
        G.add_nodes_from(
            (i, {"x": float(x), "y": float(y)}) for i, (x, y) in enumerate(self.node_xy)
        )
        G.add_weighted_edges_from(
            zip(
                self.edge_u.tolist(), self.edge_v.tolist(), self.edge_length_m.tolist(), strict=True
            ),
            weight="length",
        )
        return G

    def arrays(self) -> dict[str, Any]:
        """Everything needed to rebuild the network (for the cache)."""
        r = self.report
        # names as a table of distinct names plus an index: a plain unicode array (readable with
        # allow_pickle=False) that stays small although most edges repeat a few hundred names
        table, index = np.unique(self.edge_name.astype(str), return_inverse=True)
        return {
            "crs_wkt": np.array(self.crs.to_wkt()),
            "edge_name_table": np.asarray(table, dtype=str),
            "edge_name_index": index.astype(np.int32),
            "node_xy": self.node_xy,
            "node_osmid": self.node_osmid,
            "edge_u": self.edge_u,
            "edge_v": self.edge_v,
            "edge_length_m": self.edge_length_m,
            "coords": self.coords,
            "coord_offsets": self.coord_offsets,
            "report_source": np.array(r.source),
            "report_numbers": np.array(
                [
                    r.nodes,
                    r.edges,
                    r.length_km,
                    r.dropped_nodes,
                    r.dropped_edges,
                    r.dropped_km,
                    r.clipped_edges,
                    r.footpath_km,
                    r.tagged_km,
                ],
                dtype=float,
            ),
        }

    @classmethod
    def from_arrays(cls, data: Any) -> WalkNetwork:
        """Inverse of :meth:`arrays`.

        Raises ``ValueError`` when the arrays do not fit together (a damaged cache entry), so the
        caller rebuilds instead of routing on a subtly broken network.
        """
        n = np.asarray(data["report_numbers"], dtype=float)
        if n.shape != (9,) or not np.isfinite(n).all():
            msg = "report numbers have the wrong shape"
            raise ValueError(msg)
        source = str(data["report_source"])
        table = np.asarray(data["edge_name_table"])
        index = np.asarray(data["edge_name_index"])
        if table.ndim != 1 or table.dtype.kind != "U" or not np.issubdtype(index.dtype, np.integer):
            msg = "street names have the wrong type"
            raise ValueError(msg)
        if index.ndim != 1 or (len(index) and (index.min() < 0 or index.max() >= len(table))):
            msg = "street name index out of range"
            raise ValueError(msg)
        report = BuildReport(
            source=source,
            nodes=int(n[0]),
            edges=int(n[1]),
            length_km=float(n[2]),
            dropped_nodes=int(n[3]),
            dropped_edges=int(n[4]),
            dropped_km=float(n[5]),
            clipped_edges=int(n[6]),
            footpath_km=float(n[7]),
            tagged_km=float(n[8]),
            warnings=network_warnings(
                source=source, footpath_km=float(n[7]), tagged_km=float(n[8])
            ),
        )
        net = cls(
            crs=pyproj.CRS.from_wkt(str(data["crs_wkt"])),
            node_xy=data["node_xy"],
            node_osmid=data["node_osmid"],
            edge_u=data["edge_u"],
            edge_v=data["edge_v"],
            edge_length_m=data["edge_length_m"],
            coords=data["coords"],
            coord_offsets=data["coord_offsets"],
            report=report,
            edge_name=table.astype(object)[index],
        )
        net.check()
        return net

    def check(self) -> None:
        """Raise ``ValueError`` unless every array has the shape and range the others imply.

        Shapes, index ranges and finiteness only, so a cache hit stays in milliseconds: flipped
        bits inside an array are already caught by the zip member's CRC when it is read.
        """
        if self.node_xy.ndim == 0 or self.edge_u.ndim == 0:
            msg = "inconsistent network arrays: scalar where an array belongs"
            raise ValueError(msg)
        nn, ne = len(self.node_xy), len(self.edge_u)
        off = self.coord_offsets
        problems = [
            (self.node_xy.ndim == 2 and self.node_xy.shape[1] == 2, "node_xy shape"),
            (self.node_osmid.shape == (nn,), "node_osmid length"),
            (self.edge_u.shape == (ne,), "edge_u length"),
            (self.edge_v.shape == (ne,) and self.edge_length_m.shape == (ne,), "edge lengths"),
            (ne > 0 and self.report.nodes == nn and self.report.edges == ne, "report counts"),
            (self.coords.ndim == 2 and self.coords.shape[1] == 2, "coords shape"),
            (off.shape == (ne + 1,), "coord_offsets length"),
            (self.edge_name.shape == (ne,), "edge_name length"),
        ]
        for ok, what in problems:
            if not ok:
                msg = f"inconsistent network arrays: {what}"
                raise ValueError(msg)
        checks = [
            (np.issubdtype(self.edge_u.dtype, np.integer), "edge_u dtype"),
            (np.issubdtype(self.edge_v.dtype, np.integer), "edge_v dtype"),
            (np.issubdtype(off.dtype, np.integer), "coord_offsets dtype"),
            (off[0] == 0 and off[-1] == len(self.coords), "coord_offsets ends"),
            (bool((np.diff(off) >= 2).all()), "edges with fewer than 2 vertices"),
            (bool(np.isfinite(self.node_xy).all() and np.isfinite(self.coords).all()), "coords"),
            (bool((self.edge_length_m >= 0).all()), "edge lengths"),  # also False for NaN
            (bool(np.isfinite(self.edge_length_m).all()), "edge lengths"),
        ]
        for ok, what in checks:
            if not ok:
                msg = f"inconsistent network arrays: {what}"
                raise ValueError(msg)
        lo = min(int(self.edge_u.min()), int(self.edge_v.min()))
        hi = max(int(self.edge_u.max()), int(self.edge_v.max()))
        if lo < 0 or hi >= nn:
            msg = "inconsistent network arrays: edge end out of range"
            raise ValueError(msg)


def metric_crs_for(lon: np.ndarray, lat: np.ndarray, crs: Any = None) -> pyproj.CRS:
    """The CRS to work in: the user's (must be projected, in metres) or the local UTM zone."""
    if crs is not None:
        try:
            chosen = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError:
            msg = f"unreadable CRS {crs!r}"
            raise InputError(
                msg,
                fix="give an EPSG code such as 4549 (CGCS2000 3-degree GK CM 120E) or 32651",
            ) from None
        unit = chosen.axis_info[0].unit_name if chosen.axis_info else ""
        if not chosen.is_projected or unit not in {"metre", "meter"}:
            msg = f"CRS {chosen.name} is not projected in metres"
            raise InputError(
                msg,
                fix="choose a metric CRS (UTM, CGCS2000 Gauss-Kruger such as EPSG:4549)",
            )
        return chosen
    lon0, lat0 = float(np.nanmedian(lon)), float(np.nanmedian(lat))
    zone = int((lon0 + 180) // 6) + 1
    return pyproj.CRS.from_epsg((32600 if lat0 >= 0 else 32700) + zone)


def build_network(
    node_lonlat: dict[int, tuple[float, float]],
    ways: list[list[int]],
    *,
    source: str,
    crs: Any = None,
    aoi_wgs84: shapely.Geometry | None = None,
    buffer_m: float = 1000.0,
    way_is_footpath: Sequence[bool] | None = None,
    way_names: Sequence[str] | None = None,
) -> WalkNetwork:
    """Turn walkable ways (lists of node ids) into a :class:`WalkNetwork`.

    Ways are split at every node shared with another way (or used twice by one), so that
    intersections are nodes and everything between them is one edge with its full polyline.

    Parameters
    ----------
    node_lonlat
        Location of every referenced node id.
    ways
        Node-id sequences of the walkable ways (already filtered).
    source
        Name for the report.
    crs
        Metric CRS to use; ``None`` picks the local UTM zone.
    aoi_wgs84
        Area of interest in lon/lat; ``None`` keeps the whole file.
    buffer_m
        Buffer around the area of interest, in metres: the longest walk that must not feel the
        clip.
    way_is_footpath
        For each way, whether it is made for people on foot (:func:`geo.walkfilter.is_footpath`);
        ``None`` when the tags are unknown.  Only feeds the footpath share of the report.
    way_names
        For each way, its street name (:func:`geo.walkfilter.street_names`), ``""`` when
        unnamed; every edge cut from the way carries it.  ``None`` leaves all edges unnamed.

    Notes
    -----
    Clipping keeps every edge of which any part lies within ``buffer_m`` of ``aoi_wgs84``, whole
    (never cut at the boundary, so no kept edge is shortened), and drops the rest.  Components are
    judged on the whole file before the clip: the kept part is the largest connected component
    among those that reach the clipped zone, clipped.  So a street island inside the zone that is
    connected to the rest outside it is kept (a facility there stays snapped), and the result may
    fall into several pieces.

    What the clip guarantees: a walk of length ``L <= buffer_m`` that starts at a point inside
    ``aoi_wgs84`` stays within ``L`` of it (straight lines are never longer than the walk), so
    every edge it touches is kept, and it is as short with this clip as with any larger one or
    none.  Every network distance no longer than ``buffer_m`` from a point in the area, and every
    snap within ``buffer_m``, is therefore identical with or without a larger clip, as long as
    both pick the same component (the file's largest, for any study area inside a city extract);
    longer distances may grow or become unreachable.  :func:`geo.load.study_extent` and
    :func:`geo.load.walking_halo_m` give the area and the buffer that make this cover a run.
    """
    ways_in = ways
    keep_way = [len(w) >= 2 for w in ways_in]
    ways = [w for w, k in zip(ways_in, keep_way, strict=True) if k]
    foot_in = None
    if way_is_footpath is not None:
        foot_in = [bool(f) for f, k in zip(way_is_footpath, keep_way, strict=True) if k]
    names_in = None
    if way_names is not None:
        names_in = [str(n or "") for n, k in zip(way_names, keep_way, strict=True) if k]
    if not ways:
        msg = "no walkable streets found"
        raise InputError(msg, file=source, fix="check that the file covers the study area")
    ids = np.fromiter(node_lonlat.keys(), dtype=np.int64, count=len(node_lonlat))
    ll = np.array(list(node_lonlat.values()), dtype=float).reshape(-1, 2)
    mcrs = metric_crs_for(ll[:, 0], ll[:, 1], crs)
    x, y = pyproj.Transformer.from_crs(4326, mcrs, always_xy=True).transform(ll[:, 0], ll[:, 1])
    xy = np.column_stack([x, y])

    # every way's node ids in one array; a node's row by a sorted search, not a dict
    lens = np.fromiter((len(w) for w in ways), dtype=np.int64, count=len(ways))
    flat = np.fromiter((n for w in ways for n in w), dtype=np.int64, count=int(lens.sum()))
    order = np.argsort(ids, kind="stable")
    at = np.minimum(np.searchsorted(ids, flat, sorter=order), len(ids) - 1)
    flat_row = order[at]
    if not np.array_equal(ids[flat_row], flat):
        missing = int(flat[ids[flat_row] != flat][0])
        raise KeyError(missing)  # a way node without a location (the reader splits them out)
    first = np.concatenate([[0], np.cumsum(lens)[:-1]])
    last = first + lens - 1
    # intersections: nodes used more than once, plus way ends (of any way)
    uses = np.bincount(flat_row, minlength=len(ids))
    junction = uses > 1
    junction[flat_row[first]] = True
    junction[flat_row[last]] = True
    # split every way at its intersections: one edge between consecutive split positions
    split = np.flatnonzero(junction[flat_row])
    way_of = np.repeat(np.arange(len(ways)), lens)
    same_way = way_of[split[:-1]] == way_of[split[1:]]
    seg_a, seg_b = split[:-1][same_way], split[1:][same_way]
    seg_way = way_of[seg_a]
    lengths = seg_b - seg_a + 1
    flat_pos = flat_row[
        np.repeat(seg_a, lengths)
        + (np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    ]
    end_u = flat_row[seg_a]
    end_v = flat_row[seg_b]
    seg_foot = np.asarray(foot_in, dtype=bool)[seg_way] if foot_in is not None else None
    return _finish(
        xy,
        ids,
        end_u,
        end_v,
        xy[flat_pos],
        np.concatenate([[0], np.cumsum(lengths)]),
        mcrs,
        source=source,
        aoi_wgs84=aoi_wgs84,
        buffer_m=buffer_m,
        edge_tag=None if seg_foot is None else np.where(seg_foot, 1, 0).astype(np.int8),
        edge_name=None if names_in is None else np.array(names_in, dtype=object)[seg_way],
    )


def _clip_zone(aoi_wgs84: shapely.Geometry, mcrs: pyproj.CRS, buffer_m: float) -> shapely.Geometry:
    """The area of interest in ``mcrs``, buffered by ``buffer_m``.

    Densified before projecting so that long lon/lat edges (a bbox) follow their true image
    rather than a chord.
    """
    to_m = pyproj.Transformer.from_crs(4326, mcrs, always_xy=True)
    dense = shapely.segmentize(aoi_wgs84, 0.002)  # degrees, about 200 m
    aoi_m = shapely.transform(dense, lambda c: np.column_stack(to_m.transform(c[:, 0], c[:, 1])))
    zone = shapely.buffer(aoi_m, max(float(buffer_m), 0.0))
    shapely.prepare(zone)
    return zone


def _finish(
    xy: np.ndarray,
    ids: np.ndarray,
    end_u: np.ndarray,
    end_v: np.ndarray,
    coords: np.ndarray,
    offsets: np.ndarray,
    mcrs: pyproj.CRS,
    *,
    source: str,
    aoi_wgs84: shapely.Geometry | None,
    buffer_m: float,
    largest_component: bool = True,
    edge_tag: np.ndarray | None = None,
    edge_name: np.ndarray | None = None,
) -> WalkNetwork:
    """Drop duplicates, pick the component, clip and renumber.

    ``edge_tag`` is 1 for footpaths, 0 for other tagged streets and -1 for untagged edges.
    ``edge_name`` is each edge's street name (``""`` unnamed); a dropped duplicate hands its
    name to the copy kept when that one has none.
    """
    seg = np.hypot(*np.diff(coords, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    length = cum[offsets[1:] - 1] - cum[offsets[:-1]]
    if edge_tag is None:
        edge_tag = np.full(len(end_u), -1, dtype=np.int8)
    if edge_name is None:
        edge_name = np.full(len(end_u), "", dtype=object)
    else:
        edge_name = np.array(edge_name, dtype=object)  # a copy: names move between duplicates

    # duplicates (same ends, same length to the millimetre) appear when a graph stores both
    # directions of a street; walking ignores oneway, so one copy is enough
    a = np.minimum(end_u, end_v)
    b = np.maximum(end_u, end_v)
    order = np.lexsort((length, b, a))
    same = (
        (a[order][1:] == a[order][:-1])
        & (b[order][1:] == b[order][:-1])
        & (np.diff(length[order]) <= 1e-3)
    )
    dup = np.zeros(len(a), dtype=bool)
    dup[order[1:][same]] = True
    live = ~dup
    if len(order):
        # the copy kept is the first of its run; it takes the first name found in the run
        run_start = np.flatnonzero(np.concatenate([[True], ~same]))
        pos = np.arange(len(order))
        named_pos = np.where(edge_name[order] != "", pos, len(pos))
        first_named = np.minimum.reduceat(named_pos, run_start)
        has = first_named < len(pos)
        edge_name[order[run_start[has]]] = edge_name[order[first_named[has]]]

    # components of the whole (unclipped) network, so the clip never decides what is connected
    n = len(xy)
    m = sp.coo_matrix((np.ones(int(live.sum())), (end_u[live], end_v[live])), shape=(n, n))
    _, labels = connected_components(m, directed=False)
    used = np.zeros(n, dtype=bool)
    used[end_u[live]] = True
    used[end_v[live]] = True
    if not largest_component:
        labels = np.zeros_like(labels)

    inside = np.ones(len(end_u), dtype=bool)
    if aoi_wgs84 is not None:
        zone = _clip_zone(aoi_wgs84, mcrs, buffer_m)
        idx = np.repeat(np.arange(len(end_u)), np.diff(offsets))
        lines = shapely.linestrings(coords, indices=idx)
        inside = shapely.intersects(lines, zone)
        if not (inside & live).any():
            msg = "the study area does not overlap the street network"
            raise InputError(
                msg,
                file=source,
                fix="check the area file and its coordinate system, or use a wider network",
            )
    # the largest component (by nodes in the whole file) among those reaching the zone
    sizes = np.bincount(labels[used], minlength=labels.max() + 1)
    reaching = np.zeros(len(sizes), dtype=bool)
    reaching[labels[end_u[live & inside]]] = True
    main = int(np.argmax(np.where(reaching, sizes, -1)))
    in_main = labels[end_u] == main
    kept = live & inside & in_main
    other = live & inside & ~in_main  # other components within the zone: dropped, reported
    clipped = int((live & ~inside).sum())
    dropped_edges = int(other.sum())
    dropped_km = float(length[other].sum() / 1000)

    node_keep = np.zeros(n, dtype=bool)
    node_keep[end_u[kept]] = True
    node_keep[end_v[kept]] = True
    node_other = np.zeros(n, dtype=bool)
    node_other[end_u[other]] = True
    node_other[end_v[other]] = True
    dropped_nodes = int((node_other & ~node_keep).sum())

    new_id = np.full(n, -1, dtype=np.int64)
    new_id[node_keep] = np.arange(int(node_keep.sum()))
    eidx = np.flatnonzero(kept)
    vcount = np.diff(offsets)[eidx]
    vidx = np.repeat(offsets[:-1][eidx], vcount) + (
        np.arange(int(vcount.sum())) - np.repeat(np.cumsum(vcount) - vcount, vcount)
    )
    elen = np.maximum(length[eidx], 0.0)
    tag = edge_tag[eidx]
    footpath_km = float(elen[tag == 1].sum() / 1000)
    tagged_km = float(elen[tag >= 0].sum() / 1000)
    report = BuildReport(
        source=source,
        nodes=int(node_keep.sum()),
        edges=len(eidx),
        length_km=float(elen.sum() / 1000),
        dropped_nodes=dropped_nodes,
        dropped_edges=dropped_edges,
        dropped_km=dropped_km,
        clipped_edges=clipped,
        footpath_km=footpath_km,
        tagged_km=tagged_km,
        warnings=network_warnings(source=source, footpath_km=footpath_km, tagged_km=tagged_km),
    )
    if dropped_nodes:
        log.info("kept the largest connected part; %s", report.describe())
    for w in report.warnings:
        log.warning("%s", w)
    return WalkNetwork(
        crs=mcrs,
        node_xy=xy[node_keep],
        node_osmid=ids[node_keep],
        edge_u=new_id[end_u[eidx]].astype(np.int32),
        edge_v=new_id[end_v[eidx]].astype(np.int32),
        edge_length_m=elen,
        coords=coords[vidx],
        coord_offsets=np.concatenate([[0], np.cumsum(vcount)]).astype(np.int64),
        report=report,
        edge_name=edge_name[eidx],
    )


def network_from_graph(
    G: nx.Graph,
    *,
    source: str = "graph",
    crs: Any = None,
    aoi_wgs84: shapely.Geometry | None = None,
    buffer_m: float = 1000.0,
    apply_walk_filter: bool = True,
    largest_component: bool = True,
) -> WalkNetwork:
    """Convert an OSMnx-style graph (nodes with ``x``/``y`` in lon/lat) to a network.

    Edge ``geometry`` attributes are used when present (OSMnx simplified graphs), otherwise a
    straight line.  Walking ignores ``oneway``: both directions of a two-way street collapse into
    one edge, and a one-way street stored in one direction only is walked both ways.

    Street names come from ``name:zh``, ``name`` or ``ref`` (:func:`geo.walkfilter.street_names`).
    An edge OSMnx merged from differently named ways keeps the name with the most length in the
    whole graph (OSMnx keeps neither their order nor their lengths): the longer street, usually
    the main road, which is what a planner would name the place by.

    Notes
    -----
    Clipping and components work as in :func:`build_network`.
    """
    from geo.walkfilter import NAME_TAGS, is_footpath, is_walkable, street_names

    if G.number_of_nodes() == 0:
        msg = "the graph has no nodes"
        raise InputError(msg, file=source, fix="check the file")
    graph_crs = G.graph.get("crs", "epsg:4326")
    nodes = list(G.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    nx_ = np.fromiter((float(x) for _, x in G.nodes(data="x")), float, count=len(nodes))
    ny_ = np.fromiter((float(y) for _, y in G.nodes(data="y")), float, count=len(nodes))
    to_ll = None
    if pyproj.CRS.from_user_input(graph_crs).is_geographic:
        lon, lat = nx_, ny_
    else:
        to_ll = pyproj.Transformer.from_crs(graph_crs, 4326, always_xy=True)
        lon, lat = to_ll.transform(nx_, ny_)
    mcrs = metric_crs_for(lon, lat, crs)
    tr = pyproj.Transformer.from_crs(4326, mcrs, always_xy=True)
    x, y = tr.transform(lon, lat)
    xy = np.column_stack([x, y])

    eu: list[int] = []
    ev: list[int] = []
    tags: list[int] = []
    names: list[list[str]] = []
    # polylines only for edges with a geometry; straight edges are filled in one go below
    # (a million small arrays stacked one by one cost most of a city-sized build)
    bent: dict[int, np.ndarray] = {}
    name_keys = frozenset(NAME_TAGS)
    for u, v, data in G.edges(data=True):
        tagged = "highway" in data
        if apply_walk_filter and tagged and not is_walkable(data):
            continue
        iu, iv = pos[u], pos[v]
        geom = data.get("geometry")
        if geom is not None:
            if isinstance(geom, str):
                geom = shapely.from_wkt(geom)
            c = np.asarray(shapely.get_coordinates(geom), float)
            if to_ll is not None:
                c = np.column_stack(to_ll.transform(c[:, 0], c[:, 1]))
            c = np.column_stack(tr.transform(c[:, 0], c[:, 1]))
            # orient the polyline from u to v
            if np.hypot(*(c[0] - xy[iu])) > np.hypot(*(c[-1] - xy[iu])):
                c = c[::-1]
            c[0], c[-1] = xy[iu], xy[iv]
            bent[len(eu)] = c
        eu.append(iu)
        ev.append(iv)
        tags.append((1 if is_footpath(data) else 0) if tagged else -1)
        # street_names reads only the name tags: an edge without any has none
        names.append(street_names(data) if not name_keys.isdisjoint(data) else [])
    if not eu:
        msg = "no walkable edges in the graph"
        raise InputError(msg, file=source, fix="use a walk or all-streets graph")
    eu_a, ev_a = np.array(eu), np.array(ev)
    counts = np.full(len(eu_a), 2, dtype=np.int64)
    for i, c in bent.items():
        counts[i] = len(c)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    coords = np.empty((int(offsets[-1]), 2))
    straight = np.ones(len(eu_a), dtype=bool)
    straight[list(bent)] = False
    coords[offsets[:-1][straight]] = xy[eu_a[straight]]
    coords[offsets[:-1][straight] + 1] = xy[ev_a[straight]]
    for i, c in bent.items():
        coords[offsets[i] : offsets[i + 1]] = c
    seg = np.hypot(*np.diff(coords, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    edge_len = cum[offsets[1:] - 1] - cum[offsets[:-1]]
    ids = np.array(
        [n if isinstance(n, int | np.integer) else i for i, n in enumerate(nodes)], dtype=np.int64
    )
    return _finish(
        xy,
        ids,
        eu_a,
        ev_a,
        coords,
        offsets,
        mcrs,
        source=source,
        aoi_wgs84=aoi_wgs84,
        buffer_m=buffer_m,
        largest_component=largest_component,
        edge_tag=np.array(tags, dtype=np.int8),
        edge_name=_pick_names(names, edge_len),
    )


def _pick_names(names: list[list[str]], length_m: np.ndarray) -> np.ndarray:
    """One name per edge: the only one, or of several the one with most length in the graph.

    Each edge's length counts towards every name it carries; ties go to the alphabetically
    first name, so the choice never depends on the order OSMnx stored them in.
    """
    total: dict[str, float] = {}
    for ns, length in zip(names, length_m.tolist(), strict=True):
        for n in ns:
            total[n] = total.get(n, 0.0) + length
    out = np.full(len(names), "", dtype=object)
    for i, ns in enumerate(names):
        if len(ns) == 1:
            out[i] = ns[0]
        elif ns:
            out[i] = min(ns, key=lambda n: (-total[n], n))
    return out
