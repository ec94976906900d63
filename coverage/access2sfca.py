"""Capacity-aware accessibility: the Gaussian two-step floating catchment area (G2SFCA).

Coverage says whether a canteen is within 15 minutes; it does not say whether its 40 seats can
feed the 900 elders who all have it as their only canteen.  2SFCA divides each facility's
capacity among the demand in its catchment and gives every resident the capacity per person it
can reach, so a crowded neighbourhood served by one small site scores low even when "covered".

Method
------
With catchment ``d0`` minutes (normally the layer's headline minutes), demand ``P_i`` (the
target population of resident unit ``i``), capacity ``S_j`` (seats, beds, rooms) and network
minutes ``d_ij``:

* Gaussian decay (Dai 2010; Wang 2012), rescaled to run from 1 at the door to 0 at the catchment
  edge::

      g(d) = (exp(-0.5 (d/d0)^2) - exp(-0.5)) / (1 - exp(-0.5))   for d <= d0, else 0

* step 1, supply-to-demand ratio of each facility: ``R_j = S_j / sum_i g(d_ij) P_i``;
* step 2, accessibility of each resident: ``A_i = sum_j g(d_ij) R_j``.

``L_j = sum_i g(d_ij) P_i`` is the facility's *load* (distance-weighted demand it faces); a
facility with ``L_j > S_j`` is over-subscribed.  Total supply is conserved:
``sum_i A_i P_i = sum_j S_j`` over facilities with any demand in reach.

References: Luo & Wang 2003 (2SFCA), Environment and Planning B 30(6); Dai 2010, Health & Place
16(5) (Gaussian 2SFCA); Wang 2012, Annals of the AAG 102(5) (review of the FCA family).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from geo.network import WalkNetwork
from geo.routing import node_distances
from geo.snap import Snapped

logger = logging.getLogger(__name__)

#: Memory budget of one batch of single-source searches (float64 node distances).
_BATCH_CELLS = 20_000_000

_EDGE = float(np.exp(-0.5))


def gaussian_decay(minutes: np.ndarray, catchment_min: float) -> np.ndarray:
    """Weight of a trip of ``minutes`` within a catchment of ``catchment_min`` (1 at 0, 0 at d0).

    See the module docstring for the formula; ``inf`` and anything beyond the catchment weigh 0.
    """
    if not np.isfinite(catchment_min) or catchment_min <= 0:
        msg = f"`catchment_min` must be a positive number of minutes, got {catchment_min}"
        raise ValueError(msg)
    d = np.asarray(minutes, dtype=float)
    if np.isnan(d).any() or (d < 0).any():
        msg = "`minutes` must be >= 0 (inf allowed, never NaN)"
        raise ValueError(msg)
    ratio = np.where(np.isfinite(d), d / catchment_min, np.inf)
    g = (np.exp(-0.5 * np.square(np.minimum(ratio, 1.0))) - _EDGE) / (1.0 - _EDGE)
    return np.where(ratio <= 1.0, np.maximum(g, 0.0), 0.0)


@dataclass(frozen=True)
class Access2SFCA:
    """Result of :func:`gaussian_2sfca`; arrays align with the demand and capacity inputs.

    Attributes
    ----------
    score
        ``A_i`` per resident unit: capacity (same unit as ``capacity``) per person of demand it
        can reach, decay-weighted.  0 when no facility of known capacity is in reach.
    reaches_excluded
        True for residents with a facility of unknown capacity in their catchment: their score
        leaves that facility out and so understates their access.
    load
        ``L_j`` per facility: decay-weighted demand within its catchment (computed for every
        facility, including those of unknown capacity).
    capacity
        ``S_j`` as given (NaN = unknown).
    supply_ratio
        ``R_j = S_j / L_j``: capacity per person of demand; NaN when the capacity is unknown or
        no demand is in reach.
    load_ratio
        ``L_j / S_j``: above 1 means over-subscribed; NaN when the capacity is unknown, ``inf``
        when a facility of zero capacity faces demand.
    oversubscribed
        Indices of facilities with ``L_j > S_j``, most over-subscribed (highest ``load_ratio``)
        first.
    excluded
        Indices of facilities of unknown capacity, left out of the scores.
    catchment_min
        ``d0`` used.
    """

    score: np.ndarray
    reaches_excluded: np.ndarray
    load: np.ndarray
    capacity: np.ndarray
    supply_ratio: np.ndarray
    load_ratio: np.ndarray
    oversubscribed: np.ndarray
    excluded: np.ndarray
    catchment_min: float


def _index_array(values: np.ndarray, name: str, size: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        msg = f"`{name}` must be a one-dimensional integer array"
        raise ValueError(msg)
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= size):
        msg = f"`{name}` holds indices outside [0, {size})"
        raise ValueError(msg)
    return arr


def gaussian_2sfca(
    resident_idx: np.ndarray,
    facility_idx: np.ndarray,
    minutes: np.ndarray,
    demand: np.ndarray,
    capacity: np.ndarray,
    *,
    catchment_min: float,
) -> Access2SFCA:
    """Gaussian 2SFCA accessibility from sparse (resident, facility, minutes) pairs.

    Parameters
    ----------
    resident_idx, facility_idx, minutes
        One entry per reachable pair, e.g. from ``geo.routing.reachable_pairs`` with
        ``cutoff_m`` = the catchment's metres, converted to minutes.  Pairs beyond the catchment
        are allowed and weigh 0; a pair may appear only once.
    demand
        Target population per resident unit, >= 0 (its length fixes the number of residents).
    capacity
        Capacity per facility (its length fixes the number of facilities); NaN = unknown: that
        facility is excluded from the scores and listed in ``excluded``.
    catchment_min
        ``d0``: minutes at which the decay reaches 0.

    Returns
    -------
    Access2SFCA
        Scores, loads and over-subscribed facilities; inputs are not modified.
    """
    P = np.asarray(demand, dtype=float)
    S = np.asarray(capacity, dtype=float)
    if P.ndim != 1 or S.ndim != 1:
        msg = "`demand` and `capacity` must be one-dimensional"
        raise ValueError(msg)
    if not np.isfinite(P).all() or (P < 0).any():
        msg = "`demand` must be finite and >= 0"
        raise ValueError(msg)
    known = ~np.isnan(S)
    if np.isinf(S).any() or (S[known] < 0).any():
        msg = "`capacity` must be >= 0 and finite (NaN for unknown)"
        raise ValueError(msg)
    n_res, n_fac = P.shape[0], S.shape[0]
    i = _index_array(resident_idx, "resident_idx", n_res)
    j = _index_array(facility_idx, "facility_idx", n_fac)
    d = np.asarray(minutes, dtype=float)
    if not (i.shape == j.shape == d.shape):
        msg = "`resident_idx`, `facility_idx` and `minutes` must have the same length"
        raise ValueError(msg)
    # pairs from a routing pass come sorted by facility then resident: strictly increasing
    # keys prove them unique in one pass; otherwise sort (beats numpy's hash-based unique)
    pair_key = j * n_res + i
    if not (pair_key[1:] > pair_key[:-1]).all():
        pair_key.sort()
    if (pair_key[1:] == pair_key[:-1]).any():
        msg = "a (resident, facility) pair appears more than once"
        raise ValueError(msg)

    g = gaussian_decay(d, catchment_min)
    load = np.bincount(j, weights=g * P[i], minlength=n_fac)
    usable = known & (load > 0)
    R = np.zeros(n_fac)
    R[usable] = S[usable] / load[usable]
    score = np.bincount(i, weights=g * R[j], minlength=n_res)

    excluded = np.flatnonzero(~known)
    in_reach = g > 0
    reaches_excluded = np.zeros(n_res, dtype=bool)
    reaches_excluded[i[in_reach & ~known[j]]] = True

    supply_ratio = np.full(n_fac, np.nan)
    supply_ratio[usable] = R[usable]
    load_ratio = np.full(n_fac, np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        load_ratio[known] = np.where(
            S[known] > 0,
            load[known] / np.where(S[known] > 0, S[known], 1.0),
            np.where(load[known] > 0, np.inf, np.nan),
        )
    over = np.flatnonzero(known & (load > S))
    over = over[np.argsort(-load_ratio[over], kind="stable")]

    if excluded.size:
        logger.info(
            "2SFCA: %d of %d facilities have no capacity and are left out", excluded.size, n_fac
        )
    return Access2SFCA(
        score=score,
        reaches_excluded=reaches_excluded,
        load=load,
        capacity=S.copy(),
        supply_ratio=supply_ratio,
        load_ratio=load_ratio,
        oversubscribed=over,
        excluded=excluded,
        catchment_min=float(catchment_min),
    )


def catchment_pairs(
    net: WalkNetwork, sources: Snapped, targets: Snapped, *, cutoff_m: float
) -> pd.DataFrame:
    """All (source, target) pairs within ``cutoff_m``: what :func:`gaussian_2sfca` needs.

    The same pairs and the same distances, bit for bit and in the same order, as
    :func:`geo.routing.reachable_pairs`, without its dense (sources x targets) float arrays:
    those, not the two sums, were the cost of 2SFCA at city scale (every facility against a
    million residents).  Each batch of single-source searches (scipy's Dijkstra with a
    limit, as there) lists the nodes it reached, the edges at those nodes and the source's
    own edge (a target there may be walked to along the edge with both ends unreached); only
    the targets on those edges are measured.  A byte per (source, target) of the batch marks
    them, which also puts them in (source, target) order; the searches' own node rows are
    as large.

    Returns
    -------
    pandas.DataFrame
        Columns ``source``, ``target`` (indices into the inputs) and ``distance_m``, sorted by
        source then target.
    """
    if not np.isfinite(cutoff_m):
        msg = "`cutoff_m` must be finite for catchment_pairs (the result would be dense)"
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
