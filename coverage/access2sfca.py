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
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


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
