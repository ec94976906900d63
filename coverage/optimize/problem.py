"""The input every model shares: demand, candidates and their reachable pairs, checked once.

:class:`CoverageProblem` is built from long-format pairs (:meth:`CoverageProblem.from_pairs`, what
the analysis pipeline has after routing) or from a dense or sparse cost matrix in any unit
(:meth:`CoverageProblem.from_cost_matrix`, what a notebook user has).  Its arrays are read-only
and sorted once, so every model and every re-solve reads the same indexed pairs.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import scipy.sparse as sp

from coverage.optimize.heuristics import gather_rows, group_order

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# input checking


def reject(problem: str, *, column: str | None = None, fix: str | None = None) -> NoReturn:
    """Raise :class:`ValueError` for a caller's mistake (one line: what, where, the fix).

    The optimizer is a library API: its inputs are arrays a program built, so a bad one is a
    programmer's error, not a planner's.  The CLI checks everything a planner types before it
    gets here (``layers.plan``, ``coverage.analysis.check_inputs``).
    """
    where = f"`{column}`: " if column else ""
    raise ValueError(where + problem + (f"; fix: {fix}" if fix else ""))


def checked_vector(name: str, values: Any, *, kind: str = "float") -> np.ndarray:
    """A read-only 1-D copy of ``values`` (inputs are never modified or aliased)."""
    try:
        arr = np.array(values, copy=True)
    except (TypeError, ValueError) as err:
        reject(f"`{name}` is not an array of numbers ({err})", column=name)
    if arr.ndim != 1:
        reject(f"`{name}` must be one-dimensional, got shape {arr.shape}", column=name)
    if kind == "int":
        integral = arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)
        if arr.size and not integral:
            whole = np.issubdtype(arr.dtype, np.floating) and bool(np.all(np.mod(arr, 1) == 0))
            if not whole:
                reject(
                    f"`{name}` must hold whole-number indices",
                    column=name,
                    fix="pass integer positions into the demand/candidate arrays",
                )
        arr = arr.astype(np.int64)
    elif kind == "bool":
        if arr.dtype != bool:
            if arr.size and not np.isin(arr, (0, 1)).all():
                reject(f"`{name}` must be true/false per demand unit", column=name)
            arr = arr.astype(bool)
    else:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            reject(f"`{name}` must hold numbers", column=name)
    arr.setflags(write=False)
    return arr


def check_length(name: str, arr: np.ndarray, n: int, what: str) -> None:
    """Reject an array whose length is not one value per ``what``."""
    if arr.size != n:
        reject(
            f"`{name}` has {arr.size} entries but there are {n} {what}",
            column=name,
            fix=f"pass one value per {what.rstrip('s')}",
        )


def check_index(name: str, idx: np.ndarray, n: int, what: str) -> None:
    """Reject indices outside ``0..n - 1``."""
    if idx.size == 0:
        return
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        reject(
            f"`{name}` refers to {what} {bad}, outside 0..{n - 1}",
            column=name,
            fix=f"indices must be 0-based positions of the {what} arrays",
        )


def _is_real(x: Any) -> bool:
    """A real number (numpy scalars included), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)


def _first_cell(mask: np.ndarray, d: np.ndarray, c: np.ndarray) -> tuple[int, int]:
    """(demand, candidate) of the first True in a dense mask, or in stored sparse entries."""
    if mask.ndim == 2:
        i, j = np.argwhere(mask)[0]
        return int(i), int(j)
    k = int(np.flatnonzero(mask)[0])
    return int(d[k]), int(c[k])


def first_bad(mask: np.ndarray) -> int:
    """Position of the first True in ``mask`` (for error messages)."""
    return int(np.flatnonzero(mask)[0])


# --------------------------------------------------------------------------------------------
# the problem


@dataclass(frozen=True, eq=False)
class CoverageProblem:
    """Demand, candidates and their reachable pairs, checked and indexed once for every model.

    Build it with :meth:`from_pairs`.  Pairs are stored sorted by (demand, candidate), one per
    pair (the shortest when the caller listed a pair twice), together with a candidate-major
    index so that a site's demand is one slice.

    Attributes
    ----------
    demand_weight
        Target population per demand unit (residents 60+ for a canteen, ...).
    pair_demand, pair_candidate, pair_minutes
        The reachable pairs within ``cutoff_min``.
    n_candidates
        Number of candidate sites (candidates may have no pair at all).
    threshold_min
        Minutes within which a unit counts as covered (the layer's headline).
    cutoff_min
        Horizon the pairs were computed to (>= ``threshold_min``; p-median uses the longer pairs).
    covered_before, minutes_before
        What existing facilities already give each unit (inf = no facility within reach).
    candidate_capacity
        Target persons each candidate could serve (inf = unlimited), or None.
    existing_demand, existing_facility, existing_minutes, existing_capacity
        Pairs to existing facilities and their remaining capacities, for capacitated coverage.
    demand_area
        Area label per unit (街道 / 社区) for before/after tables, or None.
    build_s
        Seconds spent checking and indexing.
    """

    demand_weight: np.ndarray
    pair_demand: np.ndarray
    pair_candidate: np.ndarray
    pair_minutes: np.ndarray
    n_candidates: int
    threshold_min: float
    cutoff_min: float
    covered_before: np.ndarray
    minutes_before: np.ndarray
    candidate_capacity: np.ndarray | None
    existing_demand: np.ndarray | None
    existing_facility: np.ndarray | None
    existing_minutes: np.ndarray | None
    existing_capacity: np.ndarray | None
    demand_area: np.ndarray | None
    cand_order: np.ndarray
    cand_ptr: np.ndarray
    build_s: float

    @property
    def n_demand(self) -> int:
        """Number of demand units."""
        return int(self.demand_weight.size)

    @property
    def n_pairs(self) -> int:
        """Number of stored (demand, candidate) pairs."""
        return int(self.pair_demand.size)

    @property
    def total_population(self) -> float:
        """Total target population, covered or not."""
        return float(self.demand_weight.sum())

    @classmethod
    def from_pairs(
        cls,
        demand_weight: Any,
        demand_idx: Any,
        candidate_idx: Any,
        minutes: Any,
        *,
        threshold_min: float,
        n_candidates: int | None = None,
        cutoff_min: float | None = None,
        covered_before: Any = None,
        minutes_before: Any = None,
        candidate_capacity: Any = None,
        existing_pairs: tuple[Any, Any, Any] | None = None,
        existing_capacity: Any = None,
        demand_area: Any = None,
    ) -> CoverageProblem:
        """Check the arrays and index the pairs.

        Parameters
        ----------
        demand_weight
            (n_demand,) target population per demand unit; finite and >= 0.
        demand_idx, candidate_idx, minutes
            The reachable pairs in long format (same length): positions into the demand and
            candidate arrays and the walking minutes between them.  Unreachable pairs are left
            out, never given a large number.
        threshold_min
            Coverage threshold in minutes.
        n_candidates
            Number of candidate sites; by default the length of ``candidate_capacity`` or
            ``max(candidate_idx) + 1``.
        cutoff_min
            Horizon the pairs were computed to; default the larger of ``threshold_min`` and the
            longest pair.
        covered_before
            (n_demand,) bool: already within ``threshold_min`` of an existing facility.  Default
            ``minutes_before <= threshold_min`` (nothing covered without ``minutes_before``).
        minutes_before
            (n_demand,) minutes to the nearest existing facility, inf when none within reach.
        candidate_capacity
            (n_candidates,) target persons each candidate can serve (inf = unlimited).
        existing_pairs, existing_capacity
            (demand_idx, facility_idx, minutes) to existing facilities and their remaining
            capacity.  With them, capacitated coverage re-derives who existing facilities can
            serve instead of trusting ``covered_before``.
        demand_area
            (n_demand,) area label per unit for the before/after table.
        """
        t0 = time.perf_counter()
        w = checked_vector("demand_weight", demand_weight)
        n_d = w.size
        if not np.all(np.isfinite(w)):
            i = first_bad(~np.isfinite(w))
            reject(
                f"demand weight of unit {i} is {w[i]}",
                column="demand_weight",
                fix="give every resident unit a finite target population (0 if none)",
            )
        if np.any(w < 0):
            i = first_bad(w < 0)
            reject(
                f"demand weight of unit {i} is negative ({w[i]:g})",
                column="demand_weight",
                fix="populations must be >= 0",
            )
        d = checked_vector("demand_idx", demand_idx, kind="int")
        c = checked_vector("candidate_idx", candidate_idx, kind="int")
        m = checked_vector("minutes", minutes)
        if not d.size == c.size == m.size:
            reject(
                f"pair arrays differ in length: demand_idx {d.size}, candidate_idx {c.size}, "
                f"minutes {m.size}",
                column="minutes",
                fix="pass the pairs in long format, one row per (demand, candidate) pair",
            )
        if not (isinstance(threshold_min, int | float) and math.isfinite(threshold_min)):
            reject(f"`threshold_min` must be a number, got {threshold_min!r}")
        if threshold_min <= 0:
            reject(f"`threshold_min` must be > 0, got {threshold_min:g}")
        cap: np.ndarray | None = None
        if candidate_capacity is not None:
            cap = checked_vector("candidate_capacity", candidate_capacity)
        if n_candidates is None:
            n_candidates = cap.size if cap is not None else (int(c.max()) + 1 if c.size else 0)
        if int(n_candidates) != n_candidates or n_candidates < 0:
            reject(f"`n_candidates` must be a whole number >= 0, got {n_candidates!r}")
        n_c = int(n_candidates)
        check_index("demand_idx", d, n_d, "demand unit")
        check_index("candidate_idx", c, n_c, "candidate")
        if m.size and not np.all(np.isfinite(m)):
            i = first_bad(~np.isfinite(m))
            reject(
                f"pair {i} has minutes {m[i]}",
                column="minutes",
                fix="leave unreachable pairs out instead of giving them inf or NaN",
            )
        if np.any(m < 0):
            i = first_bad(m < 0)
            reject(f"pair {i} has negative minutes ({m[i]:g})", column="minutes")
        longest = float(m.max()) if m.size else 0.0
        if cutoff_min is None:
            cutoff = max(float(threshold_min), longest)
        else:
            cutoff = float(cutoff_min)
            if not math.isfinite(cutoff) or cutoff < threshold_min:
                reject(
                    f"`cutoff_min` ({cutoff_min!r}) must be finite and >= threshold_min "
                    f"({threshold_min:g})"
                )
            if longest > cutoff * (1 + 1e-9):
                reject(
                    f"a pair is {longest:g} minutes long, beyond cutoff_min {cutoff:g}",
                    column="minutes",
                    fix="compute the pairs with the same cutoff you pass",
                )
        if cap is not None:
            check_length("candidate_capacity", cap, n_c, "candidates")
            if np.any(np.isnan(cap)) or np.any(cap < 0):
                i = first_bad(np.isnan(cap) | (cap < 0))
                reject(
                    f"capacity of candidate {i} is {cap[i]}",
                    column="candidate_capacity",
                    fix="capacities are target persons >= 0; use inf for unlimited",
                )
        if minutes_before is None:
            mb = np.full(n_d, np.inf)
        else:
            mb = checked_vector("minutes_before", minutes_before)
            check_length("minutes_before", mb, n_d, "demand units")
            if np.any(np.isnan(mb)) or np.any(mb < 0):
                i = first_bad(np.isnan(mb) | (mb < 0))
                reject(
                    f"minutes_before of unit {i} is {mb[i]}",
                    column="minutes_before",
                    fix="use inf for units no existing facility reaches",
                )
        if covered_before is None:
            cb = mb <= threshold_min
        else:
            cb = checked_vector("covered_before", covered_before, kind="bool")
            check_length("covered_before", cb, n_d, "demand units")
            if minutes_before is not None:
                odd = cb & ~(mb <= threshold_min * (1 + 1e-9))
                if odd.any():
                    i = first_bad(odd)
                    reject(
                        f"unit {i} is marked covered but its nearest existing facility is "
                        f"{mb[i]:g} minutes away (threshold {threshold_min:g})",
                        column="covered_before",
                        fix="derive covered_before from minutes_before at the same threshold",
                    )
        cb = np.array(cb, dtype=bool)
        mb = np.array(mb, dtype=np.float64)
        ed = ef = em = ecap = None
        if existing_pairs is not None or existing_capacity is not None:
            if existing_pairs is None or existing_capacity is None:
                reject(
                    "existing_pairs and existing_capacity must be given together",
                    fix="pass both the pairs to existing facilities and their capacities",
                )
            if len(existing_pairs) != 3:
                reject("existing_pairs must be (demand_idx, facility_idx, minutes)")
            ecap = checked_vector("existing_capacity", existing_capacity)
            ed = checked_vector("existing_pairs[0]", existing_pairs[0], kind="int")
            ef = checked_vector("existing_pairs[1]", existing_pairs[1], kind="int")
            em = checked_vector("existing_pairs[2]", existing_pairs[2])
            if not ed.size == ef.size == em.size:
                reject("the three existing_pairs arrays differ in length")
            check_index("existing_pairs[0]", ed, n_d, "demand unit")
            check_index("existing_pairs[1]", ef, ecap.size, "existing facility")
            if np.any(~np.isfinite(em)) or np.any(em < 0):
                reject("existing_pairs minutes must be finite and >= 0")
            if np.any(np.isnan(ecap)) or np.any(ecap < 0):
                reject(
                    "existing_capacity must be >= 0 (inf for unlimited)",
                    column="existing_capacity",
                )
        area = None
        if demand_area is not None:
            area = np.asarray(demand_area, dtype=object).copy()
            if area.ndim != 1:
                reject("`demand_area` must be one-dimensional", column="demand_area")
            check_length("demand_area", area, n_d, "demand units")
        # sort by (demand, candidate) and keep the shortest of duplicate pairs; a composite
        # integer key sorts ten times faster than np.lexsort on a million pairs
        key = d * max(n_c, 1) + c
        order = np.argsort(key, kind="stable")
        key = key[order]
        if key.size and np.any(key[1:] == key[:-1]):
            order = np.lexsort((m, d * max(n_c, 1) + c))
            key = (d * max(n_c, 1) + c)[order]
            first = np.ones(key.size, dtype=bool)
            first[1:] = key[1:] != key[:-1]
            logger.info("kept the shortest of %d duplicate pairs", int((~first).sum()))
            order = order[first]
        d, c, m = d[order], c[order], m[order]
        by_cand = group_order(c, n_c)
        ptr = np.zeros(n_c + 1, dtype=np.int64)
        np.cumsum(np.bincount(c, minlength=n_c), out=ptr[1:])
        arrays = [d, c, m, cb, mb, by_cand, ptr]
        arrays += [a for a in (ed, ef, em, ecap, area) if a is not None]
        for a in arrays:
            a.setflags(write=False)
        return cls(
            demand_weight=w,
            pair_demand=d,
            pair_candidate=c,
            pair_minutes=m,
            n_candidates=n_c,
            threshold_min=float(threshold_min),
            cutoff_min=cutoff,
            covered_before=cb,
            minutes_before=mb,
            candidate_capacity=cap,
            existing_demand=ed,
            existing_facility=ef,
            existing_minutes=em,
            existing_capacity=ecap,
            demand_area=area,
            cand_order=by_cand,
            cand_ptr=ptr,
            build_s=time.perf_counter() - t0,
        )

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        weights: Any,
        *,
        threshold: float,
        existing_cost: Any = None,
        cutoff: float | None = None,
        candidate_capacity: Any = None,
        demand_area: Any = None,
    ) -> CoverageProblem:
        """Build the problem from a demand x candidate cost matrix, spopt-style.

        For a notebook: a network or straight-line cost matrix from any tool, in any unit.
        The models only compare costs with ``threshold`` and add them up, so minutes, metres or
        seconds all work as long as every argument uses the same unit; the attributes named
        ``*_min`` then hold that unit.  Only the reachable entries are kept (as long-format
        pairs), so a sparse matrix is never densified.

        Parameters
        ----------
        cost
            (n_demand, n_candidates) costs.  Dense (numpy array or nested lists): ``inf``
            means unreachable.  ``scipy.sparse``: absent entries are unreachable and every
            stored entry is a cost, an explicit 0 included (duplicate COO entries are summed,
            as scipy defines the matrix).
        weights
            (n_demand,) target population per demand row; finite and >= 0.
        threshold
            Cost within which a demand row counts as covered (MCLP, LSCP, capacitated).
        existing_cost
            (n_demand,) cost from each demand row to its nearest existing facility, ``inf``
            where none is within reach.  None: no existing facilities.  Existing facilities
            always stay; :func:`~coverage.optimize.solve`'s ``p`` counts new sites only.
        cutoff
            Keep only pairs costing at most this (p-median counts a row left with nothing in
            reach as ``unserved_min``).  Default: every finite entry.
        candidate_capacity, demand_area
            As in :meth:`from_pairs`.

        Returns
        -------
        CoverageProblem
            ``threshold_min`` is ``threshold``, ``minutes_before`` is ``existing_cost``.

        Raises
        ------
        TypeError
            ``cost`` is not a numeric matrix.
        ValueError
            Shapes disagree, a cost is NaN or negative, a weight is negative or not finite, or
            an option is out of range.  These are programming errors, not bad user files, so
            they are plain ``ValueError``, never :class:`~layers.errors.InputError`.
        """
        if not (_is_real(threshold) and math.isfinite(threshold) and threshold > 0):
            msg = f"`threshold` must be a finite number > 0, got {threshold!r}"
            raise ValueError(msg)
        if cutoff is not None and not (
            _is_real(cutoff) and not math.isnan(cutoff) and cutoff >= threshold
        ):
            msg = f"`cutoff` must be a number >= threshold ({threshold:g}), got {cutoff!r}"
            raise ValueError(msg)
        if sp.issparse(cost):
            coo = sp.coo_array(cost)
            coo.sum_duplicates()  # keeps explicit zeros: they are costs
            shape = coo.shape
            d, c, m = (
                coo.row.astype(np.int64),
                coo.col.astype(np.int64),
                np.asarray(coo.data),
            )
        else:
            try:
                dense = np.asarray(cost)
            except (TypeError, ValueError) as err:
                msg = f"`cost` is not a matrix of numbers ({err})"
                raise TypeError(msg) from err
            if dense.ndim != 2:
                msg = (
                    f"`cost` must be two-dimensional (demand x candidates), got shape {dense.shape}"
                )
                raise ValueError(msg)
            shape = dense.shape
            m = dense
            d = c = np.empty(0, dtype=np.int64)
        if m.dtype == bool or not np.issubdtype(m.dtype, np.number):
            msg = f"`cost` must hold numbers, got dtype {m.dtype}"
            raise TypeError(msg)
        if np.issubdtype(m.dtype, np.complexfloating):
            msg = "`cost` must hold real numbers, got complex"
            raise TypeError(msg)
        m = m.astype(np.float64, copy=False)
        for bad, what in ((np.isnan(m), "NaN"), (m < 0, "negative")):
            if bad.any():
                i, j = _first_cell(bad, d, c)
                msg = (
                    f"`cost` is {what} at (demand {i}, candidate {j}): {float(m[bad][0]):g}; "
                    "costs must be >= 0, with inf (dense) or no entry (sparse) for unreachable"
                )
                raise ValueError(msg)
        n_d, n_c = int(shape[0]), int(shape[1])
        try:
            w = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError) as err:
            msg = f"`weights` must be numbers ({err})"
            raise TypeError(msg) from err
        if w.shape != (n_d,):
            msg = f"`weights` has shape {w.shape} but `cost` has {n_d} demand rows"
            raise ValueError(msg)
        if not np.isfinite(w).all() or (w < 0).any():
            i = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
            msg = f"`weights` must be finite and >= 0; row {i} is {w[i]}"
            raise ValueError(msg)
        before = None
        if existing_cost is not None:
            try:
                before = np.asarray(existing_cost, dtype=np.float64)
            except (TypeError, ValueError) as err:
                msg = f"`existing_cost` must be numbers ({err})"
                raise TypeError(msg) from err
            if before.shape != (n_d,):
                msg = f"`existing_cost` has shape {before.shape} but `cost` has {n_d} demand rows"
                raise ValueError(msg)
            if np.isnan(before).any() or (before < 0).any():
                i = int(np.flatnonzero(np.isnan(before) | (before < 0))[0])
                msg = (
                    f"`existing_cost` of row {i} is {before[i]}; costs must be >= 0, inf where "
                    "no existing facility is in reach"
                )
                raise ValueError(msg)
        horizon = math.inf if cutoff is None else float(cutoff)
        if m.ndim == 2:
            d, c = np.nonzero(np.isfinite(m) & (m <= horizon))
            m = m[d, c]
        else:
            keep = np.isfinite(m) & (m <= horizon)
            d, c, m = d[keep], c[keep], m[keep]
        cutoff_min = None if cutoff is None or math.isinf(cutoff) else float(cutoff)
        return cls.from_pairs(
            w,
            d,
            c,
            m,
            threshold_min=float(threshold),
            n_candidates=n_c,
            cutoff_min=cutoff_min,
            minutes_before=before,
            candidate_capacity=candidate_capacity,
            demand_area=demand_area,
        )

    def pairs_of(self, sites: np.ndarray) -> np.ndarray:
        """Indices into the pair arrays of every pair of ``sites``."""
        return self.cand_order[gather_rows(self.cand_ptr, np.asarray(sites, dtype=np.int64))]

    @property
    def tol(self) -> float:
        """Population differences below this are rounding noise."""
        return 1e-9 * max(self.total_population, 1.0)
