"""The snap and route stages per partition on a Dask cluster, merged into one exact result.

:func:`route_on_dask` returns the same :class:`coverage.analysis.Routed` as
:func:`coverage.analysis.route_study` (array for array, float for float); :func:`analyse_on_dask`
hands it to :func:`coverage.analysis.analyse`, so every later number (metrics, gap zones,
suggestions, targets, summary.json) is the single-process run's.

Who does what
-------------
Each partition (:mod:`coverage.partition`: a 街道, or a tile, with a halo) is one task.  The client
cuts the partition's subnetwork from the whole network and sends it with the core residents'
points and the facilities snapped in the halo; the worker snaps the residents there and runs one
multi-source search per layer with the cutoff ``H`` (the study's routing horizon), and sends back
small arrays: per resident the global edge id, offset, access leg and snapped point, and per
layer the distance and the nearest facility's index.  No network ever travels back.

What the client keeps, and why the merge is exact:

* the facilities are snapped on the whole network (a few hundred points), so every partition
  routes from the same floats;
* a distance of at most ``H`` found in a partition is the whole network's (the halo argument in
  :mod:`coverage.partition`); a resident with nothing within ``H`` in its partition has a true
  distance beyond ``H`` (or none), and mean/P90 minutes and gap zones need that real value, so
  the client takes it from one multi-source search per layer over the whole network without a
  cutoff.  That search is needed anyway: ``node_m`` (every node's distance, for gap zones,
  service areas and the map) is part of the state and is drawn on the client.  It is the same
  call :func:`coverage.state.route_layer` makes, restricted to the far residents, so their
  values are the single-process ones too;
* the 街道/社区 of each resident and its H3 cell (cheap point-in-polygon work) are computed on
  the client, as the partitions are cut from them;
* everything after routing: :func:`coverage.analysis.analyse` (metrics, gap zones, service
  areas, 2SFCA, candidates and their reachable pairs, suggestions, targets, writing).
  Suggestions are solved on the merged reachable pairs, which are sparse and small.

Order on the client: the 街道 and the facilities' snap come first (the tasks need them); then
one thread makes the tasks a window at a time, cutting each partition's halo
(:func:`coverage.partition.halo_edges` on per-edge boxes, no geometry per edge) and subnetwork
only as its task is submitted, and merges what comes back, while the calling thread computes
what no task needs (社区, H3 cells, the whole network's adjacency for the search after the
merge).

Shipping the network: the client holds the network (the analysis needs it), so each task
carries its own subnetwork, a few MB for a 街道 with its halo.  Workers never hold the whole
network, which is what bounds a worker's memory by the largest partition plus its halo; the
network cache on shared storage is what the *client* reads (``app.py run --cache-dir``).
See docs/dask.md for running on a real cluster.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np

from coverage.analysis import (
    AnalysisOptions,
    Progress,
    Routed,
    StudyInputs,
    analyse,
    check_inputs,
)
from coverage.hexgrid import hex_areas
from coverage.partition import (
    Partition,
    edge_boxes,
    halo_edges,
    partition_cores,
    study_halo_m,
    subnetwork,
)
from coverage.progress import CountingProgress
from coverage.state import (
    LayerState,
    ResidentState,
    assign_areas,
    points_on_surface,
    points_xy,
)
from geo.network import WalkNetwork
from geo.routing import Nearest, nearest_distances
from geo.snap import Snapped, snap_points
from layers.errors import InputError

if TYPE_CHECKING:
    from distributed import Client

    from coverage.result import StudyResult

log = logging.getLogger(__name__)

#: Tasks in flight per worker: enough to keep every worker busy while results come back,
#: few enough that the client never holds every partition's subnetwork at once.
TASKS_PER_WORKER = 2
#: How long to wait for a remote scheduler before saying it cannot be reached.
CONNECT_TIMEOUT_S = 20.0
_FIX = "use local, local:N (N worker processes) or tcp://HOST:PORT (a running dask scheduler)"


# ----------------------------------------------------------------------------- the --dask value


@dataclass(frozen=True)
class DaskTarget:
    """Where to run: a local cluster of ``n_workers`` processes, or a scheduler's address."""

    kind: Literal["local", "remote"]
    n_workers: int | None = None
    address: str | None = None


def parse_dask(value: str) -> DaskTarget:
    """Read ``--dask``: ``local``, ``local:N`` or ``tcp://HOST:PORT``; a mistake is one line."""
    text = value.strip()
    if text == "local":
        return DaskTarget("local")
    m = re.fullmatch(r"local:(\d+)", text)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= 1024:
            msg = f"'{value}' asks for {n} local workers"
            raise InputError(
                msg, file="--dask", fix="give between 1 and 1024 workers, e.g. local:4"
            )
        return DaskTarget("local", n_workers=n)
    m = re.fullmatch(r"tcp://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d+)", text)
    if m:
        port = int(m.group(2))
        if not 1 <= port <= 65535:
            msg = f"'{value}' has port {port}, outside 1-65535"
            raise InputError(msg, file="--dask", fix=_FIX)
        return DaskTarget("remote", address=text)
    msg = f"'{value}' is not a Dask cluster"
    raise InputError(msg, file="--dask", fix=_FIX)


@contextmanager
def dask_client(target: DaskTarget) -> Iterator[Client]:
    """A client of a new local cluster (closed on exit) or of a running scheduler.

    The local cluster runs one single-threaded worker process per core (or ``N``): the
    searches hold the GIL for part of their time, so processes, not threads.
    """
    from distributed import Client, LocalCluster

    # distributed sets its own loggers to INFO when imported; follow the application's level
    # instead, so a run without --verbose is not flooded with worker start and stop lines
    level = logging.getLogger().getEffectiveLevel()
    for name in ("distributed", "dask"):
        if logging.getLogger(name).level < level:
            logging.getLogger(name).setLevel(level)
    if target.kind == "local":
        n = target.n_workers or max(1, os.cpu_count() or 1)
        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                # the scheduler's HTTP server (health, metrics) on a free port, no dashboard:
                # several runs on one machine never fight over port 8787
                dashboard_address=":0",
                scheduler_kwargs={"dashboard": False},
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(target.address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        msg = f"cannot reach the Dask scheduler at {target.address} ({type(exc).__name__})"
        raise InputError(
            msg,
            file="--dask",
            fix="start it with `dask scheduler` and workers with `dask worker ADDRESS` "
            "(see docs/dask.md), or use --dask local",
        ) from None
    with client:
        yield client


# ---------------------------------------------------------------------------- one partition


@dataclass(frozen=True, eq=False)
class PartitionTask:
    """What travels to a worker for one partition.

    Attributes
    ----------
    name
        The partition's name (a 街道, or ``tile COL,ROW``), for progress and errors.
    net
        The partition's subnetwork (:func:`coverage.partition.subnetwork`, no street names), or
        ``None`` when no street lies within the halo (every resident is then unsnapped).
    edges
        The whole network's id of each of the subnetwork's edges.
    xy
        The core residents' points in the network CRS.
    facilities
        Per layer: the facilities snapped within the halo (local edge ids) and their index in
        the layer.
    max_snap_m, cutoff_m
        The snapping limit and the routing horizon ``H``.
    """

    name: str
    net: WalkNetwork | None
    edges: np.ndarray
    xy: np.ndarray
    facilities: tuple[tuple[Snapped, np.ndarray], ...]
    max_snap_m: float
    cutoff_m: float


@dataclass(frozen=True, eq=False)
class PartitionRouted:
    """What a worker sends back: small arrays in the whole network's ids, and what it cost.

    Attributes
    ----------
    name
        The partition's name.
    snap
        The core residents snapped (global edge ids).
    distance_m, source
        Per layer: distance to the nearest facility within ``H`` (``inf`` beyond) and its index
        in the layer (``-1`` when none within ``H``).
    seconds
        Wall time of the task on the worker.
    peak_rss_bytes
        Peak resident memory of the worker process during the task (:func:`peak_rss_bytes`
        after :func:`reset_peak_rss`; since the worker started where that reset is refused).
    worker
        Which process ran it (``host:pid``).
    """

    name: str
    snap: Snapped
    distance_m: tuple[np.ndarray, ...]
    source: tuple[np.ndarray, ...]
    seconds: float
    peak_rss_bytes: int
    worker: str


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux: ``VmHWM``, since start or the last reset).

    Not ``getrusage``: on Linux its peak survives ``exec``, so a worker process started by a
    client that had loaded a network would report the client's peak.
    """
    try:
        with Path("/proc/self/status").open(encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if os.uname().sysname == "Darwin" else peak * 1024)


def reset_peak_rss() -> bool:
    """Start this process's peak resident memory afresh (Linux only); False when not possible.

    A worker runs one task at a time (one thread), so the peak after a task is that task's.
    """
    try:
        with Path("/proc/self/clear_refs").open("w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def route_partition(task: PartitionTask) -> PartitionRouted:
    """Snap one partition's residents and route every layer with the cutoff: the worker's job."""
    reset_peak_rss()
    t0 = time.perf_counter()
    n = len(task.xy)
    if task.net is None:
        snap = Snapped(
            np.full(n, -1, dtype=np.int64),
            np.zeros(n),
            np.full(n, np.inf),
            np.asarray(task.xy, dtype=float).copy(),
            np.ones(n, dtype=bool),
        )
        dist = tuple(np.full(n, np.inf) for _ in task.facilities)
        src = tuple(np.full(n, -1, dtype=np.int64) for _ in task.facilities)
    else:
        local = snap_points(task.net, task.xy, max_snap_m=task.max_snap_m)
        near = [
            nearest_distances(task.net, fac, local, cutoff_m=task.cutoff_m)
            for fac, _ in task.facilities
        ]
        dist = tuple(r.distance_m for r in near)
        src = tuple(
            np.where(r.source >= 0, ids[np.maximum(r.source, 0)], -1).astype(np.int64)
            if len(ids)
            else np.full(n, -1, dtype=np.int64)
            for r, (_, ids) in zip(near, task.facilities, strict=True)
        )
        edge = np.where(local.edge >= 0, task.edges[np.maximum(local.edge, 0)], -1)
        snap = replace(local, edge=edge.astype(np.int64))
    return PartitionRouted(
        name=task.name,
        snap=snap,
        distance_m=dist,
        source=src,
        seconds=time.perf_counter() - t0,
        peak_rss_bytes=peak_rss_bytes(),
        worker=f"{os.uname().nodename}:{os.getpid()}",
    )


def _facilities_in(edges: np.ndarray, snap: Snapped) -> tuple[Snapped, np.ndarray]:
    """The facilities snapped to one of ``edges`` (ascending), with local edge ids."""
    ok = ~snap.unsnapped
    ok[ok] = np.isin(snap.edge[ok], edges)
    ids = np.flatnonzero(ok)
    sub = snap.subset(ids)
    local = np.searchsorted(edges, sub.edge).astype(np.int64)
    return replace(sub, edge=local), ids


def partition_task(
    net: WalkNetwork,
    part: Partition,
    xy: np.ndarray,
    facility_snaps: Mapping[str, Snapped],
    *,
    max_snap_m: float,
    cutoff_m: float,
) -> PartitionTask:
    """The task of one partition: its subnetwork, core points and the facilities in its halo."""
    has_net = len(part.edges) > 0
    return PartitionTask(
        name=part.name,
        net=subnetwork(net, part.edges, names=False) if has_net else None,
        edges=part.edges,
        xy=np.ascontiguousarray(xy[part.residents]),
        facilities=tuple(_facilities_in(part.edges, s) for s in facility_snaps.values()),
        max_snap_m=max_snap_m,
        cutoff_m=cutoff_m,
    )


# ---------------------------------------------------------------------------------- the merge


def _snap_facilities(net: WalkNetwork, kind: str, facilities: gpd.GeoDataFrame, max_snap_m: float):
    """Facilities on the whole network, as :func:`coverage.state.route_layer` snaps them."""
    xy = points_xy(net, facilities)
    snap = snap_points(net, xy, max_snap_m=max_snap_m)
    if len(facilities) and snap.unsnapped.any():
        log.warning(
            "%s: %d facilities are farther than %.0f m from any street and are left out of routing",
            kind,
            int(snap.unsnapped.sum()),
            max_snap_m,
        )
    return xy, snap


def route_on_dask(
    net: WalkNetwork,
    inputs: StudyInputs,
    kinds: list[str],
    opts: AnalysisOptions,
    *,
    client: Client,
    n_tiles: int | None = None,
    progress: Progress | None = None,
    on_partition: Callable[[Partition, PartitionRouted], None] | None = None,
) -> Routed:
    """The snap and route stages per partition on Dask, merged: equal to ``route_study``'s.

    Parameters
    ----------
    net
        The whole walk network (the client keeps it: it cuts the partitions from it, and the
        analysis after routing draws on it).
    inputs, kinds, opts
        As for :func:`coverage.analysis.route_study` (``kinds`` from
        :func:`coverage.analysis.check_inputs`).
    client
        A ``distributed.Client`` (:func:`dask_client`).
    n_tiles
        About how many tiles to cut the residents without a 街道 into (all residents when no
        街道 were given); default one per :data:`coverage.partition.RESIDENTS_PER_TILE`.
    progress
        Called with ``partitions done K/N`` as partitions finish (the CLI shows it).
    on_partition
        Called with each partition and what its worker sent back (time, peak memory): for
        measuring.

    Notes
    -----
    Distances of at most ``H`` come from the partitions; the longer ones (and every node's
    distance) from one search per layer over the whole network on the client: see the module
    docstring for why this is exact and why the client does that search anyway.
    """
    say = progress if progress is not None else log.info
    specs = {k: inputs.specs[k] for k in kinds}
    residents = inputs.residents
    points_ll = gpd.GeoSeries(
        points_on_surface(residents.geometry.to_numpy()), crs=4326, index=residents.index
    )
    xy = points_xy(net, points_ll)
    # the 街道 cut the partitions; the rest of the client's own work (社区, H3 cells, the
    # whole network's adjacency for the search after the merge) runs while the tasks do
    street = assign_areas(points_ll, inputs.streets)
    fac = {k: _snap_facilities(net, k, inputs.facilities[k], opts.max_snap_m) for k in kinds}
    fac_snaps = {k: s for k, (_, s) in fac.items()}

    horizon_m, halo_m = study_halo_m(specs.values(), max_snap_m=opts.max_snap_m)
    cores = partition_cores(xy, None if inputs.streets is None else street, n_tiles=n_tiles)
    boxes = edge_boxes(net)
    n = len(residents)
    edge = np.full(n, -1, dtype=np.int64)
    offset = np.zeros(n)
    access = np.full(n, np.inf)
    snapped_xy = xy.copy()
    unsnapped = np.ones(n, dtype=bool)
    dist = {k: np.full(n, np.inf) for k in kinds}
    src = {k: np.full(n, -1, dtype=np.int64) for k in kinds}

    def merge(part: Partition, got: PartitionRouted) -> None:
        idx = part.residents
        edge[idx] = got.snap.edge
        offset[idx] = got.snap.offset_m
        access[idx] = got.snap.access_m
        snapped_xy[idx] = got.snap.xy
        unsnapped[idx] = got.snap.unsnapped
        for k, d, s in zip(kinds, got.distance_m, got.source, strict=True):
            dist[k][idx] = d
            src[k][idx] = s

    def finished(part: Partition, got: PartitionRouted) -> None:
        merge(part, got)
        if on_partition is not None:
            on_partition(part, got)

    n_workers = max(1, len(client.nthreads()))
    say(
        f"routing {n:,} resident units in {len(cores)} partitions on Dask "
        f"({n_workers} workers, halo {halo_m:.0f} m)"
    )

    def make_task(i: int) -> tuple[Partition, PartitionTask]:
        # each halo is cut as its task is made, so the first task leaves before the last halo
        name, members = cores[i]
        part = Partition(name, members, halo_edges(net, xy[members], halo_m=halo_m, boxes=boxes))
        task = partition_task(
            net, part, xy, fac_snaps, max_snap_m=opts.max_snap_m, cutoff_m=horizon_m
        )
        return part, task

    with ThreadPoolExecutor(1, thread_name_prefix="partitions") as pool:
        # one thread cuts, submits and merges the partitions (mostly waiting on the cluster,
        # and numpy that lets go of the GIL); this one meanwhile does what needs no partition
        routing = pool.submit(
            _run_partitions,
            client,
            len(cores),
            make_task,
            window=TASKS_PER_WORKER * n_workers,
            on_done=finished,
            say=say,
        )
        try:
            community = assign_areas(points_ll, inputs.communities)
            hex_cells = hex_grid = None
            if inputs.streets is None:
                hex_cells, hex_grid = hex_areas(
                    points_ll.x.to_numpy(), points_ll.y.to_numpy(), resolution=opts.hex_resolution
                )
            _ = net.adjacency  # cached on the network: the search after the merge starts from it
        finally:
            routing.result()  # the partitions' first error, if any, is raised here

    snap = Snapped(edge, offset, access, snapped_xy, unsnapped)
    if unsnapped.all():
        msg = f"no resident lies within reach of the street network ({opts.max_snap_m:.0f} m)"
        raise InputError(
            msg, fix="check the residents' coordinate system (--coords) or the network extent"
        )
    state = ResidentState(
        frame=residents,
        points_ll=points_ll,
        xy=xy,
        snap=snap,
        street=street,
        community=community,
        hex_cells=hex_cells,
        hex_grid=hex_grid,
    )
    layers: dict[str, LayerState] = {}
    for kind in kinds:
        near = _complete(net, fac_snaps[kind], snap, dist[kind], src[kind])
        layers[kind] = LayerState(
            spec=specs[kind],
            facilities=inputs.facilities[kind],
            xy=fac[kind][0],
            snap=fac_snaps[kind],
            near=near,
            weight=state.weight(specs[kind].target_group),
        )
    return Routed(state, layers)


def _complete(
    net: WalkNetwork, facilities: Snapped, residents: Snapped, dist: np.ndarray, src: np.ndarray
) -> Nearest:
    """The partitions' distances plus, from the whole network, the far residents' and nodes'.

    One search from every facility over the whole network, no cutoff, as
    :func:`coverage.state.route_layer` does, with only the residents the partitions left at
    ``inf`` as targets (at least one, since the search returns node distances only with one).
    """
    far = np.flatnonzero(~residents.unsnapped & ~np.isfinite(dist))
    asked = far if len(far) else np.flatnonzero(~residents.unsnapped)[:1]
    whole = nearest_distances(net, facilities, residents.subset(asked))
    node_m = whole.node_m if whole.node_m is not None else np.full(net.n_nodes, np.inf)
    dist = dist.copy()
    src = src.copy()
    if len(far):
        dist[far] = whole.distance_m
        src[far] = whole.source
    return Nearest(dist, src, node_m)


def _run_partitions(
    client: Client,
    n_parts: int,
    make_task: Callable[[int], tuple[Partition, PartitionTask]],
    *,
    window: int,
    on_done: Callable[[Partition, PartitionRouted], Any],
    say: Progress,
) -> None:
    """Submit the partitions a window at a time, merging each as it finishes."""
    from distributed import as_completed

    todo = iter(range(n_parts))
    which: dict[Any, Partition] = {}  # future key -> partition
    running = as_completed()

    def submit_next() -> None:
        i = next(todo, None)
        if i is None:
            return
        part, task = make_task(i)
        fut = client.submit(route_partition, task, pure=False)
        which[fut.key] = part
        running.add(fut)

    for _ in range(max(window, 1)):
        submit_next()
    for done, fut in enumerate(running, start=1):
        got = fut.result()
        on_done(which.pop(fut.key), got)
        if isinstance(say, CountingProgress):  # a bar on a terminal, a line per tenth
            say.count("partitions", done, n_parts)
        else:
            say(f"partitions done {done}/{n_parts}")
        submit_next()


# ------------------------------------------------------------------------------- composition


def analyse_on_dask(
    net: WalkNetwork,
    inputs: StudyInputs,
    *,
    title: str,
    options: AnalysisOptions | None = None,
    synthetic: bool = False,
    sources: tuple[str, ...] = (),
    progress: Progress | None = None,
    dask: str,
    n_tiles: int | None = None,
) -> StudyResult:
    """:func:`coverage.analysis.analyse` with the snap and route stages run on Dask.

    Parameters
    ----------
    net, inputs, title, options, synthetic, sources, progress
        As for :func:`coverage.analysis.analyse`.
    dask
        ``local`` (a local cluster, one worker process per core), ``local:N`` (``N``
        processes) or ``tcp://HOST:PORT`` (a running scheduler); anything else is an
        :class:`layers.errors.InputError` of one line.
    n_tiles
        About how many tiles for residents without a 街道 (see :func:`route_on_dask`).

    Returns
    -------
    StudyResult
        The single-process result: the same summary numbers, timings aside.  The cluster is
        closed (a local one) or left (a remote one) before the analysis after routing, which
        runs here.
    """
    target = parse_dask(dask)
    opts = options or AnalysisOptions()
    kinds = check_inputs(inputs, opts)
    t = time.perf_counter()
    with dask_client(target) as client:
        routed = route_on_dask(
            net, inputs, kinds, opts, client=client, n_tiles=n_tiles, progress=progress
        )
    log.info("snap and route on Dask: %.1f s", time.perf_counter() - t)
    return analyse(
        net,
        inputs,
        title=title,
        options=opts,
        synthetic=synthetic,
        sources=sources,
        progress=progress,
        routed=routed,
    )
