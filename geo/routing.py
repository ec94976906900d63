"""Exact network distances between snapped points, with a cutoff.

Distance from a point to a facility = the point's access leg + network distance along edges
(partial edges counted exactly, including both on one edge) + the facility's access leg.  Every
source becomes a virtual node tied to both ends of its edge, so one multi-source Dijkstra (scipy
csgraph, compiled) answers "minutes to the nearest facility" for every resident at once.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from geo.network import WalkNetwork
from geo.snap import Snapped

#: Memory budget of one batch of single-source searches (float64 cells).
_BATCH_CELLS = 20_000_000


@dataclass(frozen=True, eq=False)
class Nearest:
    """Distance from each target to its nearest source.

    Attributes
    ----------
    distance_m
        Metres, ``inf`` when unsnapped or beyond the cutoff.
    source
        Index (into the sources) of the nearest source, ``-1`` when none.
    node_m
        Distance from every network node to its nearest source (``inf`` beyond the cutoff):
        what gap zones and service areas are drawn from.
    """

    distance_m: np.ndarray
    source: np.ndarray
    node_m: np.ndarray | None = None  # distance of every network node to its nearest source


def _graph_with_sources(net: WalkNetwork, sources: Snapped, ids: np.ndarray) -> sp.csr_matrix:
    """Node graph plus one virtual node per source (``n_nodes + k``), edges out of it only.

    The virtual rows are appended to the network's CSR arrays as they are (no COO round trip,
    which re-sorts every edge of a city network on each studio edit).
    """
    adj = net.adjacency
    n = net.n_nodes
    k = len(ids)
    e = sources.edge[ids]
    off = sources.offset_m[ids]
    acc = sources.access_m[ids]
    eu, ev = net.edge_u[e], net.edge_v[e]
    w_u = acc + off
    w_v = acc + (net.edge_length_m[e] - off)
    loop = eu == ev  # a closed way: both ends are one node, reached the shorter way round
    w_u = np.where(loop, np.minimum(w_u, w_v), w_u)
    per_row = np.where(loop, 1, 2)
    # row r of the virtual block: (eu, w_u), then (ev, w_v) unless a loop
    cols = np.column_stack([eu, ev]).ravel()
    w = np.column_stack([w_u, w_v]).ravel()
    keep = np.column_stack([np.ones(k, dtype=bool), ~loop]).ravel()
    indptr = np.concatenate([adj.indptr, adj.indptr[-1] + np.cumsum(per_row)])
    size = n + k
    return sp.csr_matrix(
        (
            np.concatenate([adj.data, w[keep]]),
            np.concatenate([adj.indices, cols[keep]]),
            indptr,
        ),
        shape=(size, size),
    )


def _same_edge(
    sources: Snapped, src_ids: np.ndarray, targets: Snapped, tgt_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (target, source, distance) pairs that share an edge, walked directly along it."""
    se = sources.edge[src_ids]
    order = np.argsort(se, kind="stable")
    se_sorted = se[order]
    te = targets.edge[tgt_ids]
    lo = np.searchsorted(se_sorted, te, side="left")
    hi = np.searchsorted(se_sorted, te, side="right")
    cnt = hi - lo
    if not cnt.any():
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([], dtype=float)
    t_rep = np.repeat(np.arange(len(tgt_ids)), cnt)
    starts = np.repeat(lo, cnt) + (np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    s_local = order[starts]
    s = src_ids[s_local]
    t = tgt_ids[t_rep]
    d = (
        sources.access_m[s]
        + np.abs(sources.offset_m[s] - targets.offset_m[t])
        + targets.access_m[t]
    )
    return t_rep, s_local, d


def nearest_distances(
    net: WalkNetwork, sources: Snapped, targets: Snapped, *, cutoff_m: float = np.inf
) -> Nearest:
    """Network distance from every target to its nearest source, in one Dijkstra pass.

    Parameters
    ----------
    net
        The walking network.
    sources
        Snapped sources (facilities); unsnapped ones are ignored.
    targets
        Snapped targets (residents); unsnapped ones get ``inf``.
    cutoff_m
        Distances above this are ``inf``: the search stops there, which is what makes a
        15-minute analysis cheap on a city-sized network.
    """
    n_t = len(targets)
    dist = np.full(n_t, np.inf)
    src_of = np.full(n_t, -1, dtype=np.int64)
    src_ids = np.flatnonzero(~sources.unsnapped)
    tgt_ids = np.flatnonzero(~targets.unsnapped)
    if len(src_ids) == 0:
        return Nearest(dist, src_of, np.full(net.n_nodes, np.inf))
    if len(tgt_ids) == 0:
        return Nearest(dist, src_of)
    g = _graph_with_sources(net, sources, src_ids)
    n = net.n_nodes
    virt = n + np.arange(len(src_ids))
    node_d, _, node_src = dijkstra(
        g, directed=True, indices=virt, limit=cutoff_m, min_only=True, return_predecessors=True
    )
    te = targets.edge[tgt_ids]
    tu, tv = net.edge_u[te], net.edge_v[te]
    toff = targets.offset_m[tgt_ids]
    via_u = node_d[tu] + toff
    via_v = node_d[tv] + (net.edge_length_m[te] - toff)
    best = np.minimum(via_u, via_v)
    best_src = np.where(via_u <= via_v, node_src[tu], node_src[tv]) - n
    best = best + targets.access_m[tgt_ids]
    # a source on the same edge may be closer along the edge than via either end
    t_local, s_local, d = _same_edge(sources, src_ids, targets, tgt_ids)
    if len(d):
        cand = pd.DataFrame({"t": t_local, "s": s_local, "d": d}).sort_values(["t", "d", "s"])
        cand = cand.drop_duplicates("t")
        t_idx = cand["t"].to_numpy()
        better = cand["d"].to_numpy() < best[t_idx]
        best[t_idx[better]] = cand["d"].to_numpy()[better]
        best_src[t_idx[better]] = cand["s"].to_numpy()[better]
    ok = np.isfinite(best) & (best <= cutoff_m)  # with no cutoff, inf <= inf must not pass
    dist[tgt_ids[ok]] = best[ok]
    src_of[tgt_ids[ok]] = src_ids[best_src[ok]]
    return Nearest(dist, src_of, np.asarray(node_d[:n]))


def node_distances(
    net: WalkNetwork, sources: Snapped, *, cutoff_m: float = np.inf, batch: np.ndarray | None = None
) -> np.ndarray:
    """Distances from each (snapped) source in ``batch`` to every node: ``(len(batch), n_nodes)``.

    Used in batches by :func:`reachable_pairs` and for per-facility service areas.
    """
    ids = np.flatnonzero(~sources.unsnapped) if batch is None else np.asarray(batch)
    g = _graph_with_sources(net, sources, ids)
    virt = net.n_nodes + np.arange(len(ids))
    d = dijkstra(g, directed=True, indices=virt, limit=cutoff_m)
    return np.asarray(d[:, : net.n_nodes])


def reachable_pairs(
    net: WalkNetwork, sources: Snapped, targets: Snapped, *, cutoff_m: float
) -> pd.DataFrame:
    """All (source, target) pairs within ``cutoff_m``, in long format.

    Never a dense (sources x targets) float array: that was the cost of 2SFCA and of candidate
    pairs at city scale (every facility against a million residents).  Each batch of
    single-source searches (scipy's Dijkstra with a limit) lists the nodes it reached, the
    edges at those nodes and the source's own edge (a target there may be walked to along the
    edge with both ends unreached); only the targets on those edges are measured.  A byte per
    (source, target) of the batch marks them, which also puts them in (source, target) order;
    the searches' own node rows are as large.

    Returns
    -------
    pandas.DataFrame
        Columns ``source``, ``target`` (indices into the inputs) and ``distance_m``, sorted by
        source then target.  Searches run in batches of sources whose size keeps the working
        memory near 160 MB, however large the instance.
    """
    if not np.isfinite(cutoff_m):
        msg = "`cutoff_m` must be finite for reachable_pairs (the result would be dense)"
        raise ValueError(msg)
    src_ids = np.flatnonzero(~sources.unsnapped)
    tgt_ids = np.flatnonzero(~targets.unsnapped)
    out_s: list[np.ndarray] = []
    out_t: list[np.ndarray] = []
    out_d: list[np.ndarray] = []
    if len(src_ids) and len(tgt_ids):
        te = targets.edge[tgt_ids]
        tu, tv = net.edge_u[te], net.edge_v[te]
        toff = targets.offset_m[tgt_ids]
        trest = net.edge_length_m[te] - toff
        tacc = targets.access_m[tgt_ids]
        n_t, n_e = len(tgt_ids), net.n_edges
        idx = _target_index(net, targets, tgt_ids)
        step = max(1, _BATCH_CELLS // max(net.n_nodes, n_t))
        for start in range(0, len(src_ids), step):
            ids = src_ids[start : start + step]
            nd = node_distances(net, sources, cutoff_m=cutoff_m, batch=ids)
            row, node = np.nonzero(np.isfinite(nd))
            row_e, e = _expand(row, idx.node_ptr[node], idx.node_ptr[node + 1], idx.node_edges)
            own = sources.edge[ids]
            key = np.concatenate([row_e * n_e + e, np.arange(len(ids)) * n_e + own])
            key.sort()  # few: edges, not targets
            key = key[np.r_[True, key[1:] != key[:-1]]]
            row_e, e = key // n_e, key % n_e
            row_t, t = _expand(row_e, idx.edge_ptr[e], idx.edge_ptr[e + 1], idx.on_edge)
            mark = np.zeros((len(ids), n_t), dtype=bool)
            mark[row_t, t] = True
            r, t = np.nonzero(mark)
            del mark
            d = np.minimum(nd[r, tu[t]] + toff[t], nd[r, tv[t]] + trest[t]) + tacc[t]
            # sources on a target's own edge: also walked directly along it
            lo, hi = idx.edge_ptr[own], idx.edge_ptr[own + 1]
            same_row, same_t = _expand(np.arange(len(ids)), lo, hi, idx.on_edge)
            s_rows, t_rows = ids[same_row], tgt_ids[same_t]
            direct = (
                sources.access_m[s_rows]
                + np.abs(sources.offset_m[s_rows] - targets.offset_m[t_rows])
                + targets.access_m[t_rows]
            )
            at = np.searchsorted(r * n_t + t, same_row * n_t + same_t)
            np.minimum.at(d, at, direct)
            ok = d <= cutoff_m
            out_s.append(ids[r[ok]])
            out_t.append(tgt_ids[t[ok]])
            out_d.append(d[ok])
    if out_s:
        s_all, t_all, d_all = np.concatenate(out_s), np.concatenate(out_t), np.concatenate(out_d)
    else:
        s_all = t_all = np.array([], dtype=np.int64)
        d_all = np.array([], dtype=float)
    return pd.DataFrame(
        {"source": s_all.astype(np.int64), "target": t_all.astype(np.int64), "distance_m": d_all}
    )


class _TargetIndex(NamedTuple):
    """Edges by end node, targets (positions among the snapped ones) by edge: CSR arrays."""

    net: weakref.ref[WalkNetwork]
    node_ptr: np.ndarray
    node_edges: np.ndarray
    edge_ptr: np.ndarray
    on_edge: np.ndarray


#: One index per snapped target set (the residents, shared by every layer), dropped with it.
_TARGETS: weakref.WeakKeyDictionary[Snapped, _TargetIndex] = weakref.WeakKeyDictionary()


def _target_index(net: WalkNetwork, targets: Snapped, tgt_ids: np.ndarray) -> _TargetIndex:
    hit = _TARGETS.get(targets)
    if hit is None or hit.net() is not net:
        ends = np.concatenate([net.edge_u, net.edge_v])
        by_node = np.argsort(ends, kind="stable")
        te = targets.edge[tgt_ids]
        on_edge = np.argsort(te, kind="stable")
        hit = _TARGETS[targets] = _TargetIndex(
            weakref.ref(net),
            np.searchsorted(ends[by_node], np.arange(net.n_nodes + 1)),
            by_node % max(net.n_edges, 1),
            np.searchsorted(te[on_edge], np.arange(net.n_edges + 1)),
            on_edge,
        )
    return hit


def _expand(
    owner: np.ndarray, lo: np.ndarray, hi: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``items[lo[k]:hi[k]]`` for every ``k``, flattened, with ``owner[k]`` beside each."""
    counts = hi - lo
    k = np.repeat(np.arange(len(lo)), counts)
    pos = lo[k] + np.arange(len(k)) - (np.cumsum(counts) - counts)[k]
    return owner[k], items[pos]
