"""Where to add facilities: MCLP, LSCP, p-median and capacitated coverage on sparse pairs.

Planners ask "where do the next 5 canteens go?" (MCLP: most newly covered target population with
p new sites), "how many elderly stations until every 60+ resident is within 15 minutes?" (LSCP:
fewest sites reaching a coverage target), "which p sites cut walking the most?" (p-median:
population-weighted minutes) and, where capacities are known, "how many people can the new sites
actually serve?" (capacitated coverage).  Existing facilities always stay; new sites come from a
candidate set.

Everything works on arrays: demand weights and the *reachable* (demand, candidate, minutes)
pairs within the routing cutoff, in long format.  A dense demand x candidate matrix is never
built: on a district that would be tens of millions of cells, almost all of them unreachable.

How a model is solved
---------------------
1. A heuristic runs first: greedy (every candidate's marginal gain from one sparse mat-vec or
   bincount per step), then best-improvement 1-opt interchange ("swap") for MCLP and p-median.
   For MCLP a Lagrangian relaxation follows (coverage rows relaxed, deflected subgradient steps,
   swap from its iterates): its bound is close to the LP bound and its sites usually reach the
   optimum (see bench/README.md).  LSCP uses greedy plus removal of redundant sites, then a
   set-covering Lagrangian heuristic when every reachable unit must be covered; capacitated
   coverage a capacity-aware greedy whose assignment is re-optimised by an LP.  Each reports a
   bound and says which: Lagrangian, the submodular online bound (value + the p largest
   marginal gains), ``value / (1 - 1/e)``, a counting bound, or the LP relaxation.
2. ``method="exact"`` then solves a compact MILP with HiGHS (``scipy.optimize.milp``) under a
   time limit and MIP gap.  Coverage variables are continuous (``0 <= y_i <= sum_j x_j``): only
   site variables need to be binary.  Units with identical candidate sets share one row.  With
   Lagrangian multipliers at hand, sites that provably cannot be part of a better solution are
   fixed first (Lagrangian variable fixing), which often leaves HiGHS a small fraction of the
   candidates.  scipy's HiGHS takes no warm start, so when it stops at its time limit with an
   incumbent worse than the heuristic's, the heuristic solution is returned with HiGHS's dual
   bound.  ``method="auto"`` picks exact below a size (number of modelled pairs,
   :data:`AUTO_EXACT_MAX_PAIRS`) and the heuristic above it.

Every :class:`Solution` ranks its sites by marginal gain (greedy order within the chosen set, so
"build the first k" is the best nested plan for that set) and carries a coverage-vs-sites curve
for those nested prefixes; ``resolve_curve=True`` also solves the model again for every k.
Sites that add nothing once the others are open are not suggested (the status says so).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, NoReturn

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from coverage._heuristic import (
    SavingInstance,
    capacitated_greedy,
    fix_by_lagrangian,
    fix_cover,
    gather_rows,
    greedy,
    group_order,
    group_units,
    lagrangian_cover,
    lagrangian_coverage,
    order_by_gain,
    swap,
    top_sum,
)
from layers.errors import InputError

logger = logging.getLogger(__name__)

Model = Literal["mclp", "lscp", "pmedian", "capacitated"]
Method = Literal["auto", "exact", "heuristic"]

MODELS: tuple[str, ...] = ("mclp", "lscp", "pmedian", "capacitated")
METHODS: tuple[str, ...] = ("auto", "exact", "heuristic")

#: ``method="auto"`` solves exactly when the model has at most this many (demand, site) pairs.
#: MCLP and LSCP have one row per demand unit; p-median and capacitated coverage have one
#: variable and one linking row per pair, hence the smaller limit.
AUTO_EXACT_MAX_PAIRS: dict[str, int] = {
    "mclp": 3_000_000,
    "lscp": 3_000_000,
    "pmedian": 400_000,
    "capacitated": 400_000,
}

#: The heuristic's LP-relaxation bound (LSCP, capacitated) is computed up to this many pairs;
#: above it the cheaper combinatorial bound alone is reported.
LP_BOUND_MAX_PAIRS = 300_000

_SWAP_BUDGET_S = 5.0
#: MCLP Lagrangian subgradient: (iterations, swap every k iterations, safety cap in seconds).
#: Iterations, not seconds, decide the quality so that a busy machine gives the same answer;
#: the exact path runs longer because a tighter bound fixes more sites before HiGHS starts.
_LAGRANGE_RUN = {"heuristic": (300, 150, 3.0), "exact": (1000, 250, 10.0)}
#: LSCP set-covering Lagrangian: (iterations, safety cap in seconds).
_COVER_RUN = {"heuristic": (200, 3.0), "exact": (400, 10.0)}


# --------------------------------------------------------------------------------------------
# input checking


def _reject(problem: str, *, column: str | None = None, fix: str | None = None) -> NoReturn:
    """Raise the user-facing :class:`InputError` (one line: problem; fix)."""
    raise InputError(problem, column=column, fix=fix)


def _vector(name: str, values: Any, *, kind: str = "float") -> np.ndarray:
    """A read-only 1-D copy of ``values`` (inputs are never modified or aliased)."""
    try:
        arr = np.array(values, copy=True)
    except (TypeError, ValueError) as err:
        _reject(f"`{name}` is not an array of numbers ({err})", column=name)
    if arr.ndim != 1:
        _reject(f"`{name}` must be one-dimensional, got shape {arr.shape}", column=name)
    if kind == "int":
        integral = arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)
        if arr.size and not integral:
            whole = np.issubdtype(arr.dtype, np.floating) and bool(np.all(np.mod(arr, 1) == 0))
            if not whole:
                _reject(
                    f"`{name}` must hold whole-number indices",
                    column=name,
                    fix="pass integer positions into the demand/candidate arrays",
                )
        arr = arr.astype(np.int64)
    elif kind == "bool":
        if arr.dtype != bool:
            if arr.size and not np.isin(arr, (0, 1)).all():
                _reject(f"`{name}` must be true/false per demand unit", column=name)
            arr = arr.astype(bool)
    else:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            _reject(f"`{name}` must hold numbers", column=name)
    arr.setflags(write=False)
    return arr


def _check_length(name: str, arr: np.ndarray, n: int, what: str) -> None:
    if arr.size != n:
        _reject(
            f"`{name}` has {arr.size} entries but there are {n} {what}",
            column=name,
            fix=f"pass one value per {what.rstrip('s')}",
        )


def _check_index(name: str, idx: np.ndarray, n: int, what: str) -> None:
    if idx.size == 0:
        return
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        _reject(
            f"`{name}` refers to {what} {bad}, outside 0..{n - 1}",
            column=name,
            fix=f"indices must be 0-based positions of the {what} arrays",
        )


def _first_bad(mask: np.ndarray) -> int:
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
        w = _vector("demand_weight", demand_weight)
        n_d = w.size
        if not np.all(np.isfinite(w)):
            i = _first_bad(~np.isfinite(w))
            _reject(
                f"demand weight of unit {i} is {w[i]}",
                column="demand_weight",
                fix="give every resident unit a finite target population (0 if none)",
            )
        if np.any(w < 0):
            i = _first_bad(w < 0)
            _reject(
                f"demand weight of unit {i} is negative ({w[i]:g})",
                column="demand_weight",
                fix="populations must be >= 0",
            )
        d = _vector("demand_idx", demand_idx, kind="int")
        c = _vector("candidate_idx", candidate_idx, kind="int")
        m = _vector("minutes", minutes)
        if not d.size == c.size == m.size:
            _reject(
                f"pair arrays differ in length: demand_idx {d.size}, candidate_idx {c.size}, "
                f"minutes {m.size}",
                column="minutes",
                fix="pass the pairs in long format, one row per (demand, candidate) pair",
            )
        if not (isinstance(threshold_min, int | float) and math.isfinite(threshold_min)):
            _reject(f"`threshold_min` must be a number, got {threshold_min!r}")
        if threshold_min <= 0:
            _reject(f"`threshold_min` must be > 0, got {threshold_min:g}")
        cap: np.ndarray | None = None
        if candidate_capacity is not None:
            cap = _vector("candidate_capacity", candidate_capacity)
        if n_candidates is None:
            n_candidates = cap.size if cap is not None else (int(c.max()) + 1 if c.size else 0)
        if int(n_candidates) != n_candidates or n_candidates < 0:
            _reject(f"`n_candidates` must be a whole number >= 0, got {n_candidates!r}")
        n_c = int(n_candidates)
        _check_index("demand_idx", d, n_d, "demand unit")
        _check_index("candidate_idx", c, n_c, "candidate")
        if m.size and not np.all(np.isfinite(m)):
            i = _first_bad(~np.isfinite(m))
            _reject(
                f"pair {i} has minutes {m[i]}",
                column="minutes",
                fix="leave unreachable pairs out instead of giving them inf or NaN",
            )
        if np.any(m < 0):
            i = _first_bad(m < 0)
            _reject(f"pair {i} has negative minutes ({m[i]:g})", column="minutes")
        longest = float(m.max()) if m.size else 0.0
        if cutoff_min is None:
            cutoff = max(float(threshold_min), longest)
        else:
            cutoff = float(cutoff_min)
            if not math.isfinite(cutoff) or cutoff < threshold_min:
                _reject(
                    f"`cutoff_min` ({cutoff_min!r}) must be finite and >= threshold_min "
                    f"({threshold_min:g})"
                )
            if longest > cutoff * (1 + 1e-9):
                _reject(
                    f"a pair is {longest:g} minutes long, beyond cutoff_min {cutoff:g}",
                    column="minutes",
                    fix="compute the pairs with the same cutoff you pass",
                )
        if cap is not None:
            _check_length("candidate_capacity", cap, n_c, "candidates")
            if np.any(np.isnan(cap)) or np.any(cap < 0):
                i = _first_bad(np.isnan(cap) | (cap < 0))
                _reject(
                    f"capacity of candidate {i} is {cap[i]}",
                    column="candidate_capacity",
                    fix="capacities are target persons >= 0; use inf for unlimited",
                )
        if minutes_before is None:
            mb = np.full(n_d, np.inf)
        else:
            mb = _vector("minutes_before", minutes_before)
            _check_length("minutes_before", mb, n_d, "demand units")
            if np.any(np.isnan(mb)) or np.any(mb < 0):
                i = _first_bad(np.isnan(mb) | (mb < 0))
                _reject(
                    f"minutes_before of unit {i} is {mb[i]}",
                    column="minutes_before",
                    fix="use inf for units no existing facility reaches",
                )
        if covered_before is None:
            cb = mb <= threshold_min
        else:
            cb = _vector("covered_before", covered_before, kind="bool")
            _check_length("covered_before", cb, n_d, "demand units")
            if minutes_before is not None:
                odd = cb & ~(mb <= threshold_min * (1 + 1e-9))
                if odd.any():
                    i = _first_bad(odd)
                    _reject(
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
                _reject(
                    "existing_pairs and existing_capacity must be given together",
                    fix="pass both the pairs to existing facilities and their capacities",
                )
            if len(existing_pairs) != 3:
                _reject("existing_pairs must be (demand_idx, facility_idx, minutes)")
            ecap = _vector("existing_capacity", existing_capacity)
            ed = _vector("existing_pairs[0]", existing_pairs[0], kind="int")
            ef = _vector("existing_pairs[1]", existing_pairs[1], kind="int")
            em = _vector("existing_pairs[2]", existing_pairs[2])
            if not ed.size == ef.size == em.size:
                _reject("the three existing_pairs arrays differ in length")
            _check_index("existing_pairs[0]", ed, n_d, "demand unit")
            _check_index("existing_pairs[1]", ef, ecap.size, "existing facility")
            if np.any(~np.isfinite(em)) or np.any(em < 0):
                _reject("existing_pairs minutes must be finite and >= 0")
            if np.any(np.isnan(ecap)) or np.any(ecap < 0):
                _reject(
                    "existing_capacity must be >= 0 (inf for unlimited)",
                    column="existing_capacity",
                )
        area = None
        if demand_area is not None:
            area = np.asarray(demand_area, dtype=object).copy()
            if area.ndim != 1:
                _reject("`demand_area` must be one-dimensional", column="demand_area")
            _check_length("demand_area", area, n_d, "demand units")
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

    def pairs_of(self, sites: np.ndarray) -> np.ndarray:
        """Indices into the pair arrays of every pair of ``sites``."""
        return self.cand_order[gather_rows(self.cand_ptr, np.asarray(sites, dtype=np.int64))]

    @property
    def tol(self) -> float:
        """Population differences below this are rounding noise."""
        return 1e-9 * max(self.total_population, 1.0)


# --------------------------------------------------------------------------------------------
# the answer


@dataclass(frozen=True, eq=False)
class Solution:
    """The suggested sites and everything a planner reads off them.

    Attributes
    ----------
    model, method
        Model solved and how: ``"exact"`` (HiGHS ran), ``"heuristic"`` or ``"evaluated"``
        (sites given by the caller).
    source
        Where the returned sites came from: ``"milp"``, ``"greedy+swap"``, ``"greedy"`` ...
    selected
        Candidate indices, ranked: greedy order within the chosen set.
    gains
        Marginal gain of each site in that order: newly covered target population (MCLP, LSCP),
        newly served population (capacitated) or reduction in population-weighted minutes
        (p-median).
    added_population
        Newly covered target population (within ``threshold_min``) per site, for every model.
    objective
        Newly covered population (MCLP), number of sites (LSCP), population-weighted minutes
        after (p-median, see :func:`solve`), newly served population (capacitated).
    bound, bound_kind, gap
        A proven bound on the optimum, what it is, and ``|bound - objective| / |objective|``.
    optimal
        Proven optimal within the requested MIP gap.
    curve
        ``(k, covered target population)`` after the first k ranked sites, k = 0..len(selected).
    objective_curve
        ``(k, objective of the first k ranked sites)``.
    best_curve
        ``(k, best objective with k sites)`` from separate solves (``resolve_curve=True``).
    unreachable, unreachable_population
        Demand units (with target population) no candidate can reach and no existing
        facility covers; for p-median, units with no finite option at all.
    target_population, shortfall_population
        LSCP: covered population asked for, and how much of it cannot be reached.
    covered_after
        Share of each unit covered (served) after the new sites, 0..1 (fractional only in
        capacitated coverage, where a unit's population may be split).
    minutes_after, assigned_candidate
        Minutes to the nearest existing or new facility (inf beyond the pairs' cutoff) and
        the new site giving it (-1 when an existing facility is as near or nothing reaches).
    per_area
        Before/after coverage per ``demand_area`` label, or None.
    """

    model: str
    method: str
    source: str
    selected: np.ndarray
    gains: np.ndarray
    added_population: np.ndarray
    objective: float
    bound: float
    bound_kind: str
    gap: float
    optimal: bool
    status: str
    p: int | None
    total_population: float
    covered_before_population: float
    covered_after_population: float
    curve: tuple[tuple[int, float], ...]
    objective_curve: tuple[tuple[int, float], ...]
    unreachable: np.ndarray
    unreachable_population: float
    covered_after: np.ndarray
    minutes_after: np.ndarray
    assigned_candidate: np.ndarray
    per_area: pd.DataFrame | None
    build_s: float
    solve_s: float
    target_population: float | None = None
    shortfall_population: float = 0.0
    best_curve: tuple[tuple[int, float], ...] = ()

    @property
    def n_sites(self) -> int:
        """Number of suggested sites (zero-gain sites are never suggested)."""
        return int(self.selected.size)

    @property
    def coverage_rate_before(self) -> float:
        """Covered share of the target population before the new sites (NaN if none)."""
        tot = self.total_population
        return self.covered_before_population / tot if tot > 0 else math.nan

    @property
    def coverage_rate_after(self) -> float:
        """Covered share after the new sites (NaN if there is no target population)."""
        tot = self.total_population
        return self.covered_after_population / tot if tot > 0 else math.nan

    def table(self) -> pd.DataFrame:
        """One row per suggested site: rank, candidate, gains and the district rate after it."""
        covered = np.array([v for _, v in self.curve[1:]], dtype=np.float64)
        tot = self.total_population
        return pd.DataFrame(
            {
                "rank": np.arange(1, self.n_sites + 1),
                "candidate": self.selected,
                "gain": self.gains,
                "added_population": self.added_population,
                "covered_population_after": covered,
                "coverage_rate_after": covered / tot if tot > 0 else np.full(covered.size, np.nan),
            }
        )


@dataclass(frozen=True, eq=False)
class ColocatedSolution:
    """Sites chosen for several layers at once, and what they give each layer."""

    combined: Solution  # objective = weighted sum of newly covered population
    per_layer: dict[str, Solution]  # each layer's view of the same ranked sites
    weights: dict[str, float]


# --------------------------------------------------------------------------------------------
# MILP plumbing


@dataclass(frozen=True)
class _MilpOutcome:
    x: np.ndarray | None
    status: int
    message: str
    dual_bound: float  # of the minimisation, -inf when unknown
    nodes: int
    seconds: float


def _run_milp(
    cost: np.ndarray,
    integrality: np.ndarray,
    A: sp.csr_matrix,
    lb: np.ndarray,
    ub: np.ndarray,
    *,
    time_limit_s: float,
    mip_rel_gap: float,
    offset: float = 0.0,
) -> _MilpOutcome:
    """Minimise ``offset + cost @ x`` with HiGHS, variables in [0, 1].

    A non-zero ``offset`` enters as a variable fixed at 1, so that HiGHS measures its relative
    gap on the objective the user sees (p-median minutes), not on the saving.
    """
    t0 = time.perf_counter()
    n = cost.size
    var_lb, var_ub = np.zeros(n), np.ones(n)
    if offset:
        cost = np.append(cost, offset)
        integrality = np.append(integrality, 0.0)
        A = sp.hstack([A, sp.csr_matrix((A.shape[0], 1))], format="csr")
        var_lb, var_ub = np.append(var_lb, 1.0), np.append(var_ub, 1.0)
    res = milp(
        cost,
        integrality=integrality,
        bounds=Bounds(var_lb, var_ub),
        constraints=LinearConstraint(A, lb, ub),
        options={"time_limit": float(time_limit_s), "mip_rel_gap": float(mip_rel_gap)},
    )
    dual = getattr(res, "mip_dual_bound", None)
    if dual is None or not np.isfinite(dual):
        dual = float(res.fun) if res.status == 0 and res.fun is not None else -np.inf
    nodes = getattr(res, "mip_node_count", None) or 0
    return _MilpOutcome(
        x=None if res.x is None else np.asarray(res.x)[:n],
        status=int(res.status),
        message=str(res.message),
        dual_bound=float(dual),
        nodes=int(nodes),
        seconds=time.perf_counter() - t0,
    )


def _milp_note(out: _MilpOutcome, time_limit_s: float) -> str:
    if out.status == 0:
        return f"HiGHS finished in {out.seconds:.2f} s ({out.nodes} nodes)"
    if out.status == 1:
        return f"HiGHS stopped at its time limit ({time_limit_s:g} s, {out.nodes} nodes)"
    return f"HiGHS ended with status {out.status} ({out.message})"


def _use_exact(method: str, model: str, n_pairs: int) -> bool:
    if method == "exact":
        return True
    if method == "heuristic":
        return False
    return n_pairs <= AUTO_EXACT_MAX_PAIRS[model]


def _rel_gap(objective: float, bound: float) -> float:
    diff = abs(bound - objective)
    if diff <= 1e-9 * max(abs(objective), abs(bound), 1.0):
        return 0.0
    return diff / abs(objective) if objective != 0 else math.inf


# --------------------------------------------------------------------------------------------
# the shared instance builders


def _coverage_instance(problem: CoverageProblem) -> tuple[SavingInstance, np.ndarray]:
    """MCLP/LSCP in saving form: uncovered units with target population, pairs within threshold.

    Returns the instance and the global demand index of each modelled unit.
    """
    w = problem.demand_weight
    within = problem.pair_minutes <= problem.threshold_min
    d, c = problem.pair_demand[within], problem.pair_candidate[within]
    open_unit = (w > 0) & ~problem.covered_before
    keep = open_unit[d]
    d, c = d[keep], c[keep]
    reached = np.zeros(problem.n_demand, dtype=bool)
    reached[d] = True
    units = np.flatnonzero(reached)
    local_of = np.cumsum(reached) - 1  # global -> local index, without sorting the pairs
    inst = SavingInstance.build(
        w[units], np.ones(units.size), local_of[d], c, np.zeros(d.size), problem.n_candidates
    )
    return inst, units


def _unreachable_coverage(problem: CoverageProblem) -> np.ndarray:
    w = problem.demand_weight
    within = problem.pair_minutes <= problem.threshold_min
    reach = np.zeros(problem.n_demand, dtype=bool)
    reach[problem.pair_demand[within]] = True
    return np.flatnonzero((w > 0) & ~problem.covered_before & ~reach)


def _pmedian_instance(
    problem: CoverageProblem, unserved_min: float
) -> tuple[SavingInstance, np.ndarray, np.ndarray]:
    """p-median in saving form over units with a finite option; also returns the unreachable."""
    w = problem.demand_weight
    has_pair = np.zeros(problem.n_demand, dtype=bool)
    has_pair[problem.pair_demand] = True
    finite_before = np.isfinite(problem.minutes_before)
    units = np.flatnonzero((w > 0) & (finite_before | has_pair))
    unreachable = np.flatnonzero((w > 0) & ~finite_before & ~has_pair)
    local_of = np.full(problem.n_demand, -1, dtype=np.int64)
    local_of[units] = np.arange(units.size)
    base = np.where(finite_before, problem.minutes_before, unserved_min)[units]
    keep = local_of[problem.pair_demand] >= 0
    inst = SavingInstance.build(
        w[units],
        base,
        local_of[problem.pair_demand[keep]],
        problem.pair_candidate[keep],
        problem.pair_minutes[keep],
        problem.n_candidates,
    )
    return inst, units, unreachable


# --------------------------------------------------------------------------------------------
# common reporting


def _after_minutes(problem: CoverageProblem, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    minutes_after = problem.minutes_before.copy()
    assigned = np.full(problem.n_demand, -1, dtype=np.int64)
    if sites.size:
        idx = problem.pairs_of(sites)
        d, c, m = problem.pair_demand[idx], problem.pair_candidate[idx], problem.pair_minutes[idx]
        o = np.lexsort((m, d))
        d, c, m = d[o], c[o], m[o]
        first = np.ones(d.size, dtype=bool)
        first[1:] = d[1:] != d[:-1]
        d, c, m = d[first], c[first], m[first]
        better = m < minutes_after[d]
        minutes_after[d[better]] = m[better]
        assigned[d[better]] = c[better]
    return minutes_after, assigned


def _coverage_prefix(problem: CoverageProblem, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Newly covered population per ranked site (threshold coverage) and the final covered mask."""
    w = problem.demand_weight
    covered = problem.covered_before.copy()
    added = np.zeros(sites.size)
    for k, j in enumerate(sites):
        idx = problem.pairs_of(np.array([j]))
        d = problem.pair_demand[idx[problem.pair_minutes[idx] <= problem.threshold_min]]
        new = d[~covered[d]]
        added[k] = float(w[new].sum())
        covered[new] = True
    return added, covered


def _per_area(
    problem: CoverageProblem, before: np.ndarray, after: np.ndarray
) -> pd.DataFrame | None:
    if problem.demand_area is None:
        return None
    w = problem.demand_weight
    frame = pd.DataFrame(
        {
            "area": problem.demand_area,
            "population": w,
            "covered_before": w * before,
            "covered_after": w * after,
        }
    )
    out = frame.groupby("area", sort=True, dropna=False).sum().reset_index()
    pop = out["population"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["coverage_rate_before"] = np.where(pop > 0, out["covered_before"] / pop, np.nan)
        out["coverage_rate_after"] = np.where(pop > 0, out["covered_after"] / pop, np.nan)
    out["added_population"] = out["covered_after"] - out["covered_before"]
    return out


def _people(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:,.2f}"


def _unreachable_note(problem: CoverageProblem, unreachable: np.ndarray, what: str) -> str:
    if unreachable.size == 0:
        return ""
    pop = float(problem.demand_weight[unreachable].sum())
    return (
        f"; {unreachable.size} demand units ({_people(pop)} people) {what} and cannot be "
        f"helped by any candidate"
    )


@dataclass
class _Draft:
    """What a model solver hands to :func:`_finish`."""

    model: str
    method: str
    source: str
    selected: np.ndarray
    gains: np.ndarray
    objective: float
    bound: float
    bound_kind: str
    optimal: bool
    status: str
    p: int | None
    covered_before_population: float
    covered_after: np.ndarray | None  # fraction per unit; None = derive from threshold coverage
    objective_curve: tuple[tuple[int, float], ...]
    unreachable: np.ndarray
    build_s: float
    solve_s: float
    target_population: float | None = None
    shortfall_population: float = 0.0
    before_fraction: np.ndarray | None = None
    covered_curve: tuple[tuple[int, float], ...] | None = None


def _finish(problem: CoverageProblem, draft: _Draft) -> Solution:
    sites = np.asarray(draft.selected, dtype=np.int64)
    added, covered_mask = _coverage_prefix(problem, sites)
    minutes_after, assigned = _after_minutes(problem, sites)
    if draft.covered_after is None:
        after = covered_mask.astype(np.float64)
    else:
        after = draft.covered_after
        added = np.asarray(draft.gains, dtype=np.float64)
    before = (
        problem.covered_before.astype(np.float64)
        if draft.before_fraction is None
        else draft.before_fraction
    )
    w = problem.demand_weight
    cb_pop = draft.covered_before_population
    if draft.covered_curve is not None:
        curve = draft.covered_curve
    else:
        running = cb_pop + np.concatenate([[0.0], np.cumsum(added)])
        curve = tuple((k, float(v)) for k, v in enumerate(running))
    gap = _rel_gap(draft.objective, draft.bound)
    for a in (sites, draft.gains, added, after, minutes_after, assigned, draft.unreachable):
        a.setflags(write=False)
    return Solution(
        model=draft.model,
        method=draft.method,
        source=draft.source,
        selected=sites,
        gains=np.asarray(draft.gains, dtype=np.float64),
        added_population=np.asarray(added, dtype=np.float64),
        objective=float(draft.objective),
        bound=float(draft.bound),
        bound_kind=draft.bound_kind,
        gap=gap,
        optimal=draft.optimal,
        status=draft.status,
        p=draft.p,
        total_population=problem.total_population,
        covered_before_population=float(cb_pop),
        covered_after_population=float(w @ after),
        curve=curve,
        objective_curve=draft.objective_curve,
        unreachable=draft.unreachable,
        unreachable_population=float(w[draft.unreachable].sum()),
        covered_after=after,
        minutes_after=minutes_after,
        assigned_candidate=assigned,
        per_area=_per_area(problem, before, after),
        build_s=draft.build_s,
        solve_s=draft.solve_s,
        target_population=draft.target_population,
        shortfall_population=draft.shortfall_population,
    )


def _dropped_note(requested: int, kept: int, what: str) -> str:
    if kept >= requested:
        return ""
    return f"; only {kept} of the {requested} sites {what}, the others would add nothing"


# --------------------------------------------------------------------------------------------
# MCLP and p-median (saving form, maximise)


def _saving_milp(
    inst: SavingInstance,
    p: int,
    compact_coverage: bool,
    time_limit_s: float,
    mip_rel_gap: float,
    *,
    relax: bool = False,
) -> tuple[_MilpOutcome, np.ndarray, float, float]:
    """Solve max R(S) s.t. |S| <= p as a MILP.

    Returns the outcome, the chosen sites, the bound on R and the seconds spent building.

    ``relax`` solves the LP relaxation instead (x continuous), for the heuristic's bound.

    ``compact_coverage`` (MCLP): one continuous y per unit, ``y_i <= sum_j x_j``.  Otherwise
    (p-median): one continuous z per improving pair, ``sum_j z_ij <= 1`` and ``z_ij <= x_j``.
    """
    t0 = time.perf_counter()
    useful = inst.useful_candidates()
    col = np.full(inst.n_candidates, -1, dtype=np.int64)
    col[useful] = np.arange(useful.size)
    n_x = useful.size
    if compact_coverage:
        groups = group_units(inst)  # one row per distinct candidate set
        d, cx = groups.pair_group, col[groups.pair_candidate]
        n_u, n_pair = groups.n_groups, d.size
        n_v = n_u + n_x
        rows = np.concatenate([np.arange(n_u), d, np.full(n_x, n_u)])
        cols = np.concatenate([np.arange(n_u), n_u + cx, n_u + np.arange(n_x)])
        vals = np.concatenate([np.ones(n_u), -np.ones(n_pair), np.ones(n_x)])
        A = sp.csr_matrix((vals, (rows, cols)), shape=(n_u + 1, n_v))
        lb = np.full(n_u + 1, -np.inf)
        ub = np.concatenate([np.zeros(n_u), [p]])
        cost = np.concatenate([-groups.weight, np.zeros(n_x)])
        integ = np.concatenate([np.zeros(n_u), np.ones(n_x)])
        x_off = n_u
    else:
        d, cx = inst.pair_demand, col[inst.pair_candidate]
        n_u, n_pair = inst.weight.size, d.size
        n_v = n_pair + n_x
        pid = np.arange(n_pair)
        rows = np.concatenate([d, n_u + pid, n_u + pid, np.full(n_x, n_u + n_pair)])
        cols = np.concatenate([pid, pid, n_pair + cx, n_pair + np.arange(n_x)])
        vals = np.concatenate([np.ones(n_pair), np.ones(n_pair), -np.ones(n_pair), np.ones(n_x)])
        A = sp.csr_matrix((vals, (rows, cols)), shape=(n_u + n_pair + 1, n_v))
        lb = np.full(A.shape[0], -np.inf)
        ub = np.concatenate([np.ones(n_u), np.zeros(n_pair), [p]])
        cost = -inst.weight[d] * (inst.base[d] - inst.pair_cost)
        cost = np.concatenate([cost, np.zeros(n_x)])
        integ = np.concatenate([np.zeros(n_pair), np.ones(n_x)])
        x_off = n_pair
    if relax:
        integ = np.zeros_like(integ)
    # p-median: minimise the minutes themselves (base total - saving), see _run_milp
    offset = 0.0 if compact_coverage else float(inst.weight @ inst.base)
    build_s = time.perf_counter() - t0
    out = _run_milp(
        cost, integ, A, lb, ub, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, offset=offset
    )
    sites = np.empty(0, dtype=np.int64)
    if out.x is not None:
        sites = useful[out.x[x_off:] > 0.5]
    return out, sites, offset - out.dual_bound, build_s


def _solve_saving(
    problem: CoverageProblem,
    model: str,
    inst: SavingInstance,
    p: int,
    *,
    method: str,
    time_limit_s: float,
    mip_rel_gap: float,
) -> tuple[np.ndarray, float, str, str, bool, str, str, float, float]:
    """Heuristic then (optionally) MILP for max R(S), |S| <= p.

    Returns (sites, saving bound, bound kind, source, optimal, note, method, build_s, solve_s).
    """
    tol = problem.tol
    t0 = time.perf_counter()
    g = greedy(inst, p, tol=tol)
    sites, source, value = g.order, "greedy", g.saving
    bound, bound_kind = g.bound, g.bound_kind
    if inst.max_saving < bound:
        bound, bound_kind = inst.max_saving, "every reachable unit served by its best candidate"
    lam: np.ndarray | None = None
    exact = _use_exact(method, model, inst.n_pairs)
    used = "exact" if exact else "heuristic"
    if value < bound - tol and g.order.size == p and p > 0:
        swapped = swap(inst, sites, tol=tol, time_budget_s=min(_SWAP_BUDGET_S, time_limit_s))
        swapped_value = inst.saving(swapped)
        if swapped_value > value + tol:
            sites, source, value = swapped, "greedy+swap", swapped_value
        # the online bound also holds at the swapped solution
        at = value + top_sum(inst.gains(inst.cost_with(sites)), p)
        if at < bound:
            bound, bound_kind = at, "submodular online bound (value + p largest gains)"
        if model == "mclp" and value < bound - tol:
            iters, swap_every, cap_s = _LAGRANGE_RUN[used]
            lag = lagrangian_coverage(
                inst,
                p,
                start=sites,
                tol=tol,
                max_iter=iters,
                swap_every=swap_every,
                time_budget_s=min(cap_s, time_limit_s / 4),
            )
            lam = lag.multipliers
            if lag.bound < bound:
                bound, bound_kind = lag.bound, "Lagrangian relaxation (subgradient)"
            if lag.value > value + tol:
                sites, source, value = lag.sites, "lagrangian+swap", lag.value
    heur_s = time.perf_counter() - t0
    note = f"{source} in {heur_s * 1000:.0f} ms"
    build_s = 0.0
    if value >= bound - tol:
        note += "; it reaches the bound, so it is optimal"
        return sites, max(bound, value), bound_kind, source, True, note, used, build_s, heur_s
    if not exact:
        if lam is None and inst.n_pairs <= LP_BOUND_MAX_PAIRS:
            out, _, lp_bound, build_s = _saving_milp(
                inst, p, model == "mclp", time_limit_s, 0.0, relax=True
            )
            heur_s += out.seconds
            if out.status == 0 and lp_bound < bound:
                bound, bound_kind = lp_bound, "LP relaxation"
        bound = max(bound, value)
        optimal = _rel_gap(value, bound) <= mip_rel_gap
        return sites, bound, bound_kind, source, optimal, note, used, build_s, heur_s
    # exact: with Lagrangian multipliers, first fix the sites that cannot help (MCLP)
    fixed_in = np.empty(0, dtype=np.int64)
    sub, sub_p, fixed_value, broken_bound = inst, p, 0.0, -np.inf
    if lam is not None:
        fixing = fix_by_lagrangian(inst, p, lam, value * (1.0 + mip_rel_gap) - tol)
        fixed_in, broken_bound = fixing.fixed_in, fixing.max_fixed_bound
        fixed_value = inst.saving(fixed_in)
        sub = inst.reduced(fixed_in, fixing.free)
        sub_p = p - fixed_in.size
        note += (
            f"; Lagrangian fixing left {fixing.free.size} of {inst.useful_candidates().size} "
            f"candidates free ({fixed_in.size} fixed open)"
        )
    if sub_p <= 0 or sub.n_pairs == 0:
        # every better solution would have to be exactly the fixed-open sites
        out = _MilpOutcome(None, 0, "nothing left to decide", -np.inf, 0, 0.0)
        restricted_bound = fixed_value
        if fixed_value > value + tol:
            sites, value, source = fixed_in, fixed_value, "lagrangian fixing"
        note = f"nothing left for HiGHS after fixing; {note}"
        m_value, m_sites, milp_optimal = -np.inf, fixed_in, True
        fixed_kind = "Lagrangian fixing (any other site set is worth at most this)"
    else:
        out, sub_sites, sub_bound, build_s = _saving_milp(
            sub, sub_p, model == "mclp", time_limit_s, mip_rel_gap
        )
        m_sites = np.concatenate([fixed_in, sub_sites])
        m_value = inst.saving(m_sites) if out.x is not None else -np.inf
        restricted_bound = fixed_value + sub_bound if np.isfinite(sub_bound) else np.inf
        note = f"{_milp_note(out, time_limit_s)}; {note}"
        milp_optimal = out.status == 0
        fixed_kind = "HiGHS dual bound" + (" after Lagrangian fixing" if lam is not None else "")
    optimal = milp_optimal and not np.isfinite(m_value)
    if np.isfinite(m_value):
        if m_value >= value - tol:
            sites, value, source = m_sites, m_value, "milp"
        else:
            note += f"; the {source} sites beat HiGHS's incumbent and are returned"
        optimal = milp_optimal
    milp_bound = max(restricted_bound, broken_bound)
    if np.isfinite(milp_bound) and milp_bound < bound:
        bound, bound_kind = milp_bound, fixed_kind
    bound = max(bound, value)
    if _rel_gap(value, bound) <= mip_rel_gap:
        optimal = True
    return sites, bound, bound_kind, source, optimal, note, used, build_s, heur_s + out.seconds


def _solve_mclp(problem: CoverageProblem, p: int, **opts: Any) -> _Draft:
    t0 = time.perf_counter()
    inst, _units = _coverage_instance(problem)
    unreachable = _unreachable_coverage(problem)
    build_s = problem.build_s + time.perf_counter() - t0
    sites, bound, kind, source, optimal, note, used, mb_s, solve_s = _solve_saving(
        problem, "mclp", inst, p, **opts
    )
    ranked = order_by_gain(inst, sites, tol=problem.tol)
    value = float(ranked.gains.sum())
    cb = float(problem.demand_weight[problem.covered_before].sum())
    status = (
        f"{'optimal' if optimal else 'feasible'}: {ranked.order.size} new sites cover "
        f"{_people(value)} more people; {note}"
        + _dropped_note(p, ranked.order.size, "add coverage")
        + _unreachable_note(problem, unreachable, "are beyond reach of every candidate")
    )
    curve = np.concatenate([[0.0], np.cumsum(ranked.gains)])
    return _Draft(
        model="mclp",
        method=used,
        source=source,
        selected=ranked.order,
        gains=ranked.gains,
        objective=value,
        bound=max(bound, value),
        bound_kind=kind,
        optimal=optimal,
        status=status,
        p=p,
        covered_before_population=cb,
        covered_after=None,
        objective_curve=tuple((k, float(v)) for k, v in enumerate(curve)),
        unreachable=unreachable,
        build_s=build_s + mb_s,
        solve_s=solve_s,
    )


def _solve_pmedian(problem: CoverageProblem, p: int, *, unserved_min: float, **opts: Any) -> _Draft:
    t0 = time.perf_counter()
    inst, _units, unreachable = _pmedian_instance(problem, unserved_min)
    build_s = problem.build_s + time.perf_counter() - t0
    sites, bound, kind, source, optimal, note, used, mb_s, solve_s = _solve_saving(
        problem, "pmedian", inst, p, **opts
    )
    ranked = order_by_gain(inst, sites, tol=problem.tol)
    base_total = float(inst.weight @ inst.base)
    objective = base_total - float(ranked.gains.sum())
    cost = inst.cost_with(ranked.order)
    penalised = inst.weight[(cost >= unserved_min) & ~np.isfinite(problem.minutes_before[_units])]
    pen_note = ""
    if penalised.size:
        pen_note = (
            f"; {penalised.size} units ({_people(float(penalised.sum()))} people) keep no "
            f"facility within the pairs' cutoff and count {unserved_min:g} min each"
        )
    cb = float(problem.demand_weight[problem.covered_before].sum())
    status = (
        f"{'optimal' if optimal else 'feasible'}: {ranked.order.size} new sites cut "
        f"population-weighted minutes from {_people(base_total)} to {_people(objective)}; {note}"
        + _dropped_note(p, ranked.order.size, "shorten any walk")
        + pen_note
        + _unreachable_note(problem, unreachable, "have no facility and no candidate in reach")
    )
    curve = base_total - np.concatenate([[0.0], np.cumsum(ranked.gains)])
    return _Draft(
        model="pmedian",
        method=used,
        source=source,
        selected=ranked.order,
        gains=ranked.gains,
        objective=objective,
        bound=min(base_total - bound, objective),
        bound_kind=kind,
        optimal=optimal,
        status=status,
        p=p,
        covered_before_population=cb,
        covered_after=None,
        objective_curve=tuple((k, float(v)) for k, v in enumerate(curve)),
        unreachable=unreachable,
        build_s=build_s + mb_s,
        solve_s=solve_s,
    )


# --------------------------------------------------------------------------------------------
# LSCP (minimise the number of sites)


def _drop_redundant(
    inst: SavingInstance, sites: np.ndarray, target: float, tol: float
) -> np.ndarray:
    """Remove sites (least useful first) while the others still reach ``target``."""
    keep = list(sites)
    for j in reversed(list(sites)):
        trial = np.array([s for s in keep if s != j], dtype=np.int64)
        if inst.saving(trial) >= target - tol:
            keep = list(trial)
    return np.asarray(keep, dtype=np.int64)


def _lscp_milp(
    inst: SavingInstance,
    target: float,
    full: bool,
    time_limit_s: float,
    mip_rel_gap: float,
    *,
    relax: bool = False,
) -> tuple[_MilpOutcome, np.ndarray, float]:
    """Fewest sites covering ``target`` newly covered weight (all units when ``full``).

    Units with the same candidate set share one row.  ``relax`` solves the LP relaxation.
    """
    t0 = time.perf_counter()
    useful = inst.useful_candidates()
    col = np.full(inst.n_candidates, -1, dtype=np.int64)
    col[useful] = np.arange(useful.size)
    groups = group_units(inst)
    n_x, n_u = useful.size, groups.n_groups
    d, cx = groups.pair_group, col[groups.pair_candidate]
    if full:
        A = sp.csr_matrix((np.ones(d.size), (d, cx)), shape=(n_u, n_x))
        lb, ub = np.ones(n_u), np.full(n_u, np.inf)
        cost, integ, x_off = np.ones(n_x), np.ones(n_x), 0
    else:
        rows = np.concatenate([np.arange(n_u), d, np.full(n_u, n_u)])
        cols = np.concatenate([np.arange(n_u), n_u + cx, np.arange(n_u)])
        vals = np.concatenate([np.ones(n_u), -np.ones(d.size), groups.weight])
        A = sp.csr_matrix((vals, (rows, cols)), shape=(n_u + 1, n_u + n_x))
        slack = 1e-9 * max(float(inst.weight.sum()), 1.0)
        lb = np.concatenate([np.full(n_u, -np.inf), [target - slack]])
        ub = np.concatenate([np.zeros(n_u), [np.inf]])
        cost = np.concatenate([np.zeros(n_u), np.ones(n_x)])
        integ = np.concatenate([np.zeros(n_u), np.ones(n_x)])
        x_off = n_u
    if relax:
        integ = np.zeros_like(integ)
    build_s = time.perf_counter() - t0
    out = _run_milp(cost, integ, A, lb, ub, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
    sites = np.empty(0, dtype=np.int64)
    if out.x is not None and not relax:
        sites = useful[out.x[x_off:] > 0.5]
    return out, sites, build_s


def _lscp_lp_bound(inst: SavingInstance, target: float, full: bool, time_limit_s: float) -> float:
    out, _, _ = _lscp_milp(inst, target, full, time_limit_s, 0.0, relax=True)
    return math.ceil(out.dual_bound - 1e-6) if out.status == 0 else 0.0


def _solve_lscp(
    problem: CoverageProblem,
    target_coverage: float | None,
    *,
    method: str,
    time_limit_s: float,
    mip_rel_gap: float,
) -> _Draft:
    t0 = time.perf_counter()
    inst, _units = _coverage_instance(problem)
    unreachable = _unreachable_coverage(problem)
    build_s = problem.build_s + time.perf_counter() - t0
    w, tol = problem.demand_weight, problem.tol
    total = problem.total_population
    cb = float(w[problem.covered_before].sum())
    reach = float(inst.weight.sum())
    shortfall = 0.0
    if target_coverage is None:
        target_abs = cb + reach
        wanted = "all demand any candidate can reach"
    else:
        target_abs = float(target_coverage) * total
        wanted = f"{target_coverage:.1%} of {_people(total)} people = {_people(target_abs)}"
    need = target_abs - cb
    full = need >= reach - tol
    notes: list[str] = []
    if need > reach + tol:
        shortfall = need - reach
        most = cb + reach
        notes.append(
            f"the target ({wanted}) cannot be reached: even every candidate covers at most "
            f"{_people(most)} ({most / total:.1%}), {_people(shortfall)} people short; "
            f"these sites cover all demand that any candidate can reach"
        )
        need = reach
    t1 = time.perf_counter()
    if need <= tol:
        sites = np.empty(0, dtype=np.int64)
        notes.append(f"existing facilities already meet the target ({wanted})")
        lower, kind, source, optimal, used = 0.0, "trivial", "none", True, "exact"
        status_head = "optimal: no new site needed"
        out_note = ""
        milp_s = mb_s = 0.0
    else:
        n_useful = int(inst.useful_candidates().size)
        exact = _use_exact(method, "lscp", inst.n_pairs)
        used = "exact" if exact else "heuristic"
        g = greedy(inst, n_useful, tol=tol, target=need)
        sites = _drop_redundant(inst, g.order, need, tol)
        source = "greedy"
        # counting bound: the k largest single-site gains must reach the need
        singles = np.sort(inst.gains(inst.base.copy()))[::-1]
        lower = float(np.searchsorted(np.cumsum(singles), need - tol) + 1)
        kind = "counting bound (largest single-site gains)"
        cover = None
        if full and sites.size > lower:
            iters, cap_s = _COVER_RUN[used]
            cover = lagrangian_cover(
                group_units(inst),
                inst.n_candidates,
                max_iter=iters,
                time_budget_s=min(cap_s, time_limit_s / 4),
            )
            if cover.sites.size < sites.size and inst.saving(cover.sites) >= need - tol:
                sites, source = cover.sites, "lagrangian"
            if math.ceil(cover.lower - 1e-6) > lower:
                lower, kind = float(math.ceil(cover.lower - 1e-6)), "Lagrangian relaxation"
        small = inst.n_pairs <= LP_BOUND_MAX_PAIRS
        if not exact and cover is None and small and lower < sites.size:
            lp = _lscp_lp_bound(inst, need, full, time_limit_s)
            if lp > lower:
                lower, kind = lp, "LP relaxation (rounded up)"
        out_note = f"{source} in {(time.perf_counter() - t1) * 1000:.0f} ms"
        milp_s = mb_s = 0.0
        optimal = sites.size <= lower
        if exact and not optimal:
            upper = float(sites.size)
            sub, fixed_in, impossible = inst, np.empty(0, dtype=np.int64), False
            if cover is not None:
                # Lagrangian fixing: which sites any smaller cover must (not) use
                fixed_in, free = fix_cover(cover.reduced_cost, cover.lower, upper)
                sub = inst.reduced(fixed_in, free)
                left = int((inst.cost_with(fixed_in) > 0).sum())
                impossible = sub.weight.size < left  # a unit no free site reaches
                out_note += (
                    f"; Lagrangian fixing left {free.size} of {n_useful} candidates free "
                    f"({fixed_in.size} fixed open)"
                )
            if impossible or sub.weight.size == 0:
                if sub.weight.size == 0 and fixed_in.size < sites.size:
                    sites, source = fixed_in, "lagrangian fixing"
                lower, kind = float(sites.size), "Lagrangian fixing (no smaller cover exists)"
                out_note = f"nothing left for HiGHS after fixing; {out_note}"
            else:
                sub_need = float(sub.weight.sum()) if cover is not None else need
                out, m_sites, mb_s = _lscp_milp(sub, sub_need, full, time_limit_s, mip_rel_gap)
                milp_s = out.seconds
                out_note = f"{_milp_note(out, time_limit_s)}; {out_note}"
                m_all = np.concatenate([fixed_in, m_sites])
                better = out.x is not None and m_all.size <= sites.size
                if better and inst.saving(m_all) >= need - tol:
                    sites, source = m_all, "milp"
                if np.isfinite(out.dual_bound):
                    # the fixed problem only holds covers smaller than ``upper``
                    lp_lower = min(upper, fixed_in.size + math.ceil(out.dual_bound - 1e-6))
                    if lp_lower > lower:
                        lower, kind = float(lp_lower), "HiGHS dual bound (rounded up)"
                if out.status == 0:
                    lower = max(lower, float(min(upper, fixed_in.size + m_sites.size)))
            optimal = sites.size <= lower
        status_head = (
            f"{'optimal' if optimal else 'feasible'}: {sites.size} new sites reach {wanted}"
        )
    ranked = order_by_gain(inst, sites, tol=tol)
    solve_s = time.perf_counter() - t1
    if out_note:
        notes.insert(0, out_note)
    status = "; ".join([status_head, *notes]) + _unreachable_note(
        problem, unreachable, "are beyond reach of every candidate"
    )
    count = float(ranked.order.size)
    curve = np.concatenate([[0.0], np.arange(1, ranked.order.size + 1, dtype=np.float64)])
    del milp_s
    return _Draft(
        model="lscp",
        method=used,
        source=source,
        selected=ranked.order,
        gains=ranked.gains,
        objective=count,
        bound=min(lower, count),
        bound_kind=kind,
        optimal=optimal,
        status=status,
        p=None,
        covered_before_population=cb,
        covered_after=None,
        objective_curve=tuple((k, float(v)) for k, v in enumerate(curve)),
        unreachable=unreachable,
        build_s=build_s + mb_s,
        solve_s=solve_s,
        target_population=min(target_abs, total),
        shortfall_population=shortfall,
    )


# --------------------------------------------------------------------------------------------
# capacitated coverage


@dataclass(frozen=True)
class _CapModel:
    A: sp.csr_matrix
    lb: np.ndarray
    ub: np.ndarray
    cost: np.ndarray
    integrality: np.ndarray
    pair_unit: np.ndarray  # global demand index per assignment variable (z then ze)
    n_assign: int
    sites: np.ndarray


def _cap_model(
    problem: CoverageProblem, sites: np.ndarray, *, p: int | None, binary: bool = True
) -> _CapModel:
    """Assignment model for capacitated coverage over ``sites``.

    With ``p`` None the sites are open (an LP that evaluates the set); otherwise each site gets
    a variable ``x_j`` (binary, or continuous for the LP relaxation) with ``sum x <= p``.
    Variables: z_ij (unit i to new site j, within threshold), ze_ie (to existing facility e),
    then x.  Rows: ``sum z + sum ze <= 1`` per unit; ``sum_i w_i z_ij <= cap_j x_j``;
    ``sum_i w_i ze_ie <= cap_e``; ``z_ij <= x_j``; ``sum x <= p``.
    """
    w = problem.demand_weight
    thr = problem.threshold_min
    existing = problem.existing_capacity is not None
    cap = (
        np.full(problem.n_candidates, np.inf)
        if problem.candidate_capacity is None
        else problem.candidate_capacity
    )
    idx = problem.pairs_of(sites)
    idx = idx[problem.pair_minutes[idx] <= thr]
    d, c = problem.pair_demand[idx], problem.pair_candidate[idx]
    open_unit = w > 0 if existing else (w > 0) & ~problem.covered_before
    keep = open_unit[d]
    d, c = d[keep], c[keep]
    if existing:
        assert problem.existing_minutes is not None and problem.existing_demand is not None
        assert problem.existing_facility is not None and problem.existing_capacity is not None
        ek = (problem.existing_minutes <= thr) & (w[problem.existing_demand] > 0)
        ed, ef = problem.existing_demand[ek], problem.existing_facility[ek]
        ecap = problem.existing_capacity
    else:
        ed = ef = np.empty(0, dtype=np.int64)
        ecap = np.empty(0)
    units = np.unique(np.concatenate([d, ed]))
    n_u, n_z, n_e = units.size, d.size, ed.size
    site_pos = np.full(problem.n_candidates, -1, dtype=np.int64)
    site_pos[sites] = np.arange(sites.size)
    n_x = sites.size if p is not None else 0
    n_v = n_z + n_e + n_x
    zi = np.arange(n_z)
    ei = n_z + np.arange(n_e)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lbs: list[np.ndarray] = []
    ubs: list[np.ndarray] = []
    r0 = 0
    # one assignment per unit
    rows += [np.searchsorted(units, d), np.searchsorted(units, ed)]
    cols += [zi, ei]
    vals += [np.ones(n_z), np.ones(n_e)]
    lbs.append(np.full(n_u, -np.inf))
    ubs.append(np.ones(n_u))
    r0 += n_u
    # new-site capacity
    cap_s = cap[sites]
    fin = np.isfinite(cap_s)
    row_of_site = np.full(sites.size, -1, dtype=np.int64)
    row_of_site[fin] = r0 + np.arange(int(fin.sum()))
    sp_ = site_pos[c]
    zk = fin[sp_]
    rows.append(row_of_site[sp_[zk]])
    cols.append(zi[zk])
    vals.append(w[d[zk]])
    if p is not None:
        rows.append(row_of_site[fin])
        cols.append(n_z + n_e + np.flatnonzero(fin))
        vals.append(-cap_s[fin])
        lbs.append(np.full(int(fin.sum()), -np.inf))
        ubs.append(np.zeros(int(fin.sum())))
    else:
        lbs.append(np.full(int(fin.sum()), -np.inf))
        ubs.append(cap_s[fin])
    r0 += int(fin.sum())
    # existing capacity
    if n_e:
        efin = np.isfinite(ecap)
        row_of_e = np.full(ecap.size, -1, dtype=np.int64)
        row_of_e[efin] = r0 + np.arange(int(efin.sum()))
        ekk = efin[ef]
        rows.append(row_of_e[ef[ekk]])
        cols.append(ei[ekk])
        vals.append(w[ed[ekk]])
        lbs.append(np.full(int(efin.sum()), -np.inf))
        ubs.append(ecap[efin])
        r0 += int(efin.sum())
    if p is not None:
        # z_ij <= x_j and sum x <= p
        rows += [r0 + zi, r0 + zi]
        cols += [zi, n_z + n_e + sp_]
        vals += [np.ones(n_z), -np.ones(n_z)]
        lbs.append(np.full(n_z, -np.inf))
        ubs.append(np.zeros(n_z))
        r0 += n_z
        rows.append(np.full(n_x, r0))
        cols.append(n_z + n_e + np.arange(n_x))
        vals.append(np.ones(n_x))
        lbs.append(np.array([-np.inf]))
        ubs.append(np.array([float(p)]))
        r0 += 1
    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r0, n_v)
    )
    cost = np.concatenate([-w[d], -w[ed], np.zeros(n_x)])
    integ = np.concatenate([np.zeros(n_z + n_e), np.full(n_x, 1.0 if binary else 0.0)])
    return _CapModel(
        A=A,
        lb=np.concatenate(lbs),
        ub=np.concatenate(ubs),
        cost=cost,
        integrality=integ,
        pair_unit=np.concatenate([d, ed]),
        n_assign=n_z + n_e,
        sites=np.asarray(sites, dtype=np.int64),
    )


def _cap_served(problem: CoverageProblem, sites: np.ndarray) -> tuple[float, np.ndarray]:
    """Served population and served share per unit when ``sites`` are open (an exact LP)."""
    existing = problem.existing_capacity is not None
    frac = np.zeros(problem.n_demand) if existing else problem.covered_before.astype(np.float64)
    model = _cap_model(problem, np.asarray(sites, dtype=np.int64), p=None)
    if model.A.shape[1] == 0:
        return float(problem.demand_weight @ frac), frac
    out = _run_milp(
        model.cost,
        model.integrality,
        model.A,
        model.lb,
        model.ub,
        time_limit_s=600.0,
        mip_rel_gap=0.0,
    )
    if out.x is None:  # pragma: no cover - an LP with x = 0 feasible always solves
        msg = f"capacitated assignment LP failed: {out.message}"
        raise RuntimeError(msg)
    np.add.at(frac, model.pair_unit, np.clip(out.x[: model.n_assign], 0.0, 1.0))
    frac = np.clip(frac, 0.0, 1.0)
    return float(problem.demand_weight @ frac), frac


def _cap_residual(problem: CoverageProblem, baseline_frac: np.ndarray) -> np.ndarray:
    return problem.demand_weight * (1.0 - baseline_frac)


def _cap_order(
    problem: CoverageProblem, sites: np.ndarray, residual: np.ndarray, cap: np.ndarray, base: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """Rank ``sites`` by the capacity-aware greedy, then score every prefix exactly by LP."""
    within = problem.pair_minutes <= problem.threshold_min
    allowed = np.zeros(problem.n_candidates, dtype=bool)
    allowed[sites] = True
    g = capacitated_greedy(
        residual,
        problem.pair_demand[within],
        problem.pair_candidate[within],
        problem.pair_minutes[within],
        cap,
        problem.n_candidates,
        int(sites.size),
        allowed=allowed,
    )
    rest = [s for s in sites if s not in set(g.order.tolist())]
    order = np.concatenate([g.order, np.asarray(rest, dtype=np.int64)]).astype(np.int64)
    served = [base]
    frac = np.zeros(0)
    for k in range(1, order.size + 1):
        val, frac = _cap_served(problem, order[:k])
        served.append(val)
    gains = np.diff(np.asarray(served))
    keep = gains > problem.tol
    if not keep.all():
        order = order[keep]
        served = [base]
        for k in range(1, order.size + 1):
            val, frac = _cap_served(problem, order[:k])
            served.append(val)
        gains = np.diff(np.asarray(served))
    if order.size == 0:
        frac = _cap_served(problem, order)[1]
    return order, gains, frac, served


def _solve_capacitated(
    problem: CoverageProblem, p: int, *, method: str, time_limit_s: float, mip_rel_gap: float
) -> _Draft:
    t0 = time.perf_counter()
    w, tol = problem.demand_weight, problem.tol
    cap = (
        np.full(problem.n_candidates, np.inf)
        if problem.candidate_capacity is None
        else problem.candidate_capacity
    )
    base, base_frac = _cap_served(problem, np.empty(0, dtype=np.int64))
    residual = _cap_residual(problem, base_frac)
    # the assignment model counts existing-facility service only when existing capacities exist
    offset = base if problem.existing_capacity is not None else 0.0
    within = problem.pair_minutes <= problem.threshold_min
    d_all, c_all = problem.pair_demand[within], problem.pair_candidate[within]
    reach = np.zeros(problem.n_demand, dtype=bool)
    reach[d_all] = True
    unreachable = np.flatnonzero((w > 0) & (base_frac < 1.0 - 1e-9) & ~reach)
    useful_mask = np.zeros(problem.n_candidates, dtype=bool)
    useful_mask[c_all[residual[d_all] > 0]] = True
    if problem.existing_capacity is not None:
        useful_mask[c_all[w[d_all] > 0]] = True  # may free existing capacity
    useful_mask &= cap > 0
    useful = np.flatnonzero(useful_mask)
    build_s = problem.build_s + time.perf_counter() - t0
    t1 = time.perf_counter()
    g = capacitated_greedy(
        residual,
        d_all,
        c_all,
        problem.pair_minutes[within],
        cap,
        problem.n_candidates,
        p,
        allowed=useful_mask,
        tol=tol,
    )
    sites, source = g.order, "greedy"
    reach_w = np.bincount(c_all, weights=w[d_all], minlength=problem.n_candidates)
    per_site = np.minimum(cap, reach_w)
    if sites.size < p and problem.existing_capacity is not None:
        # residual gains miss what a new site frees at a full existing facility; fill the
        # remaining slots with the largest reachable capacities and let the LP judge them
        rest = useful[~np.isin(useful, sites)]
        extra = rest[np.argsort(-per_site[rest], kind="stable")][: p - sites.size]
        sites = np.concatenate([sites, extra])
    value = _cap_served(problem, sites)[0] - base
    # cheap bound: new sites carry at most their capacity and the weight they reach; without
    # existing capacities they only serve unserved units they reach, with them any unserved unit
    unserved = residual[reach] if problem.existing_capacity is None else residual
    bound = min(top_sum(per_site[useful], p), float(unserved.sum()))
    kind = "capacity bound (p largest min(capacity, reachable weight))"
    n_pairs = int(np.isin(c_all, useful).sum()) if useful.size else 0
    exact = _use_exact(method, "capacitated", n_pairs)
    used = "exact" if exact else "heuristic"
    note = f"capacity-aware greedy in {(time.perf_counter() - t1) * 1000:.0f} ms"
    mb_s = 0.0
    optimal = value >= bound - tol
    if not optimal and useful.size and p > 0:
        if exact:
            tb = time.perf_counter()
            model = _cap_model(problem, useful, p=p)
            mb_s = time.perf_counter() - tb
            out = _run_milp(
                model.cost,
                model.integrality,
                model.A,
                model.lb,
                model.ub,
                time_limit_s=time_limit_s,
                mip_rel_gap=mip_rel_gap,
            )
            note = f"{_milp_note(out, time_limit_s)}; {note}"
            if out.x is not None:
                m_sites = useful[out.x[model.n_assign :] > 0.5]
                m_value = _cap_served(problem, m_sites)[0] - base
                if m_value >= value - tol:
                    sites, value, source = m_sites, m_value, "milp"
                else:
                    note += "; the greedy sites beat HiGHS's incumbent and are returned"
            if np.isfinite(out.dual_bound) and -out.dual_bound - offset < bound:
                bound, kind = -out.dual_bound - offset, "HiGHS dual bound"
            optimal = out.status == 0 or _rel_gap(value, max(bound, value)) <= mip_rel_gap
        elif n_pairs <= LP_BOUND_MAX_PAIRS:
            model = _cap_model(problem, useful, p=p, binary=False)
            out = _run_milp(
                model.cost,
                model.integrality,
                model.A,
                model.lb,
                model.ub,
                time_limit_s=time_limit_s,
                mip_rel_gap=0.0,
            )
            if out.status == 0 and -out.dual_bound - offset < bound:
                bound, kind = -out.dual_bound - offset, "LP relaxation"
            optimal = _rel_gap(value, max(bound, value)) <= mip_rel_gap
    order, gains, frac, served = _cap_order(problem, np.asarray(sites), residual, cap, base)
    value = float(served[-1] - base)
    bound = max(bound, value)
    if value >= bound - tol:
        optimal = True
    unreach_note = _unreachable_note(problem, unreachable, "are beyond reach of every candidate")
    status = (
        f"{'optimal' if optimal else 'feasible'}: {order.size} new sites serve "
        f"{_people(value)} more people within capacity; {note}"
        + _dropped_note(p, order.size, "add served population")
        + unreach_note
    )
    curve = tuple((k, float(v)) for k, v in enumerate(served))
    return _Draft(
        model="capacitated",
        method=used,
        source=source,
        selected=order,
        gains=gains,
        objective=value,
        bound=bound,
        bound_kind=kind,
        optimal=optimal,
        status=status,
        p=p,
        covered_before_population=base,
        covered_after=frac,
        objective_curve=tuple((k, float(v - base)) for k, v in enumerate(served)),
        unreachable=unreachable,
        build_s=build_s + mb_s,
        solve_s=time.perf_counter() - t1,
        before_fraction=base_frac,
        covered_curve=curve,
    )


# --------------------------------------------------------------------------------------------
# public entry points


def _check_solve_args(
    problem: CoverageProblem,
    model: str,
    p: int | None,
    target_coverage: float | None,
    method: str,
    time_limit_s: float,
    mip_rel_gap: float,
) -> None:
    if not isinstance(problem, CoverageProblem):
        _reject("`problem` must be built with CoverageProblem.from_pairs")
    if model not in MODELS:
        _reject(f"unknown model {model!r}", fix=f"use one of {', '.join(MODELS)}")
    if method not in METHODS:
        _reject(f"unknown method {method!r}", fix=f"use one of {', '.join(METHODS)}")
    if model == "lscp":
        if p is not None:
            _reject(
                "LSCP finds the number of sites itself; `p` is not used",
                fix="drop p, or use model='mclp' to place a given number of sites",
            )
        if target_coverage is not None and not (
            isinstance(target_coverage, int | float) and 0 < target_coverage <= 1
        ):
            _reject(
                f"`target_coverage` must be a share in (0, 1], got {target_coverage!r}",
                fix="e.g. 0.95 for 95% of the target population",
            )
    else:
        if target_coverage is not None:
            _reject(f"`target_coverage` is only used by LSCP, not {model}")
        if p is None or isinstance(p, bool) or int(p) != p:
            _reject(f"`p` (number of new sites) must be a whole number, got {p!r}")
        if p < 0:
            _reject(f"`p` must be >= 0, got {p}")
        if p > problem.n_candidates:
            _reject(
                f"`p` is {p} but there are only {problem.n_candidates} candidate sites",
                fix=f"ask for at most {problem.n_candidates} sites or add candidates",
            )
    if not (isinstance(time_limit_s, int | float) and time_limit_s > 0):
        _reject(f"`time_limit_s` must be > 0, got {time_limit_s!r}")
    if not (isinstance(mip_rel_gap, int | float) and 0 <= mip_rel_gap < 1):
        _reject(f"`mip_rel_gap` must be in [0, 1), got {mip_rel_gap!r}")


def solve(
    problem: CoverageProblem,
    model: Model = "mclp",
    *,
    p: int | None = None,
    target_coverage: float | None = None,
    method: Method = "auto",
    time_limit_s: float = 30.0,
    mip_rel_gap: float = 1e-4,
    unserved_min: float | None = None,
    resolve_curve: bool = False,
) -> Solution:
    """Suggest new sites.

    Parameters
    ----------
    problem
        From :meth:`CoverageProblem.from_pairs`.
    model
        ``"mclp"`` (p sites, most newly covered target population), ``"lscp"`` (fewest sites
        reaching ``target_coverage``), ``"pmedian"`` (p sites, least population-weighted
        minutes), ``"capacitated"`` (p sites, most newly served population within capacities).
    p
        Number of new sites (all models but LSCP).
    target_coverage
        LSCP: share of the total target population to cover, existing coverage included.
        Default: every unit that any candidate (or existing facility) can reach.  When it
        cannot be reached the sites cover all reachable demand and the status says how far
        short that is (``Solution.shortfall_population``).
    method
        ``"exact"`` (HiGHS MILP after the heuristic), ``"heuristic"`` or ``"auto"``.
    time_limit_s, mip_rel_gap
        Passed to HiGHS.
    unserved_min
        p-median: minutes counted for a unit that has no existing facility and no chosen site
        within the pairs' cutoff (its true time is unknown but longer than the cutoff).
        Default ``2 * cutoff_min``.  Units with no option at all are left out and reported.
    resolve_curve
        Also solve the model for every k < p (``Solution.best_curve``); the nested ``curve``
        of the ranked sites is always there.
    """
    _check_solve_args(problem, model, p, target_coverage, method, time_limit_s, mip_rel_gap)
    opts: dict[str, Any] = {
        "method": method,
        "time_limit_s": float(time_limit_s),
        "mip_rel_gap": float(mip_rel_gap),
    }
    if model == "mclp":
        draft = _solve_mclp(problem, int(p or 0), **opts)
    elif model == "pmedian":
        pen = 2.0 * problem.cutoff_min if unserved_min is None else float(unserved_min)
        if not (math.isfinite(pen) and pen > 0):
            _reject(f"`unserved_min` must be a positive number, got {unserved_min!r}")
        draft = _solve_pmedian(problem, int(p or 0), unserved_min=pen, **opts)
    elif model == "lscp":
        draft = _solve_lscp(problem, target_coverage, **opts)
    else:
        draft = _solve_capacitated(problem, int(p or 0), **opts)
    logger.info("%s: %s", model, draft.status)
    solution = _finish(problem, draft)
    if resolve_curve and model != "lscp" and p:
        best = [(0, solution.objective_curve[0][1])]
        for k in range(1, int(p)):
            sub = solve(problem, model, p=k, unserved_min=unserved_min, **opts)
            best.append((k, sub.objective))
        best.append((int(p), solution.objective))
        solution = replace(solution, best_curve=tuple(best))
    return solution


def evaluate(
    problem: CoverageProblem,
    model: Model,
    sites: Sequence[int] | np.ndarray,
    *,
    target_coverage: float | None = None,
    unserved_min: float | None = None,
) -> Solution:
    """Score given sites (in the given order) as ``solve`` would report them.

    Use it for sites a planner proposes, or to see what one layer's sites do for another.
    """
    if model not in MODELS:
        _reject(f"unknown model {model!r}", fix=f"use one of {', '.join(MODELS)}")
    s = _vector("sites", np.asarray(sites, dtype=np.int64) if len(sites) else [], kind="int")
    _check_index("sites", s, problem.n_candidates, "candidate")
    if np.unique(s).size != s.size:
        _reject("`sites` lists a candidate twice", column="sites")
    t0 = time.perf_counter()
    w = problem.demand_weight
    cb = float(w[problem.covered_before].sum())
    common: dict[str, Any] = {
        "model": model,
        "method": "evaluated",
        "source": "given",
        "selected": s.copy(),
        "bound": math.nan,
        "bound_kind": "none (sites given)",
        "optimal": False,
        "p": None if model == "lscp" else int(s.size),
        "build_s": problem.build_s,
    }
    if model == "capacitated":
        base, base_frac = _cap_served(problem, np.empty(0, dtype=np.int64))
        served = [base]
        frac = base_frac
        for k in range(1, s.size + 1):
            val, frac = _cap_served(problem, s[:k])
            served.append(val)
        gains = np.diff(np.asarray(served))
        reach = np.zeros(problem.n_demand, dtype=bool)
        reach[problem.pair_demand[problem.pair_minutes <= problem.threshold_min]] = True
        draft = _Draft(
            **common,
            gains=gains,
            objective=served[-1] - base,
            status=f"{s.size} given sites serve {_people(served[-1] - base)} more people",
            covered_before_population=base,
            covered_after=frac,
            objective_curve=tuple((k, float(v - base)) for k, v in enumerate(served)),
            unreachable=np.flatnonzero((w > 0) & (base_frac < 1 - 1e-9) & ~reach),
            solve_s=time.perf_counter() - t0,
            before_fraction=base_frac,
            covered_curve=tuple((k, float(v)) for k, v in enumerate(served)),
        )
        return _finish(problem, draft)
    if model == "pmedian":
        pen = 2.0 * problem.cutoff_min if unserved_min is None else float(unserved_min)
        inst, _units, unreachable = _pmedian_instance(problem, pen)
    else:
        inst, _units = _coverage_instance(problem)
        unreachable = _unreachable_coverage(problem)
    cost = inst.base.copy()
    gains = np.array([inst.open_site(cost, int(j)) for j in s], dtype=np.float64)
    if model == "pmedian":
        base_total = float(inst.weight @ inst.base)
        values = base_total - np.concatenate([[0.0], np.cumsum(gains)])
        status = f"{s.size} given sites: population-weighted minutes {_people(values[-1])}"
    elif model == "lscp":
        values = np.arange(s.size + 1, dtype=np.float64)
        covered = cb + gains.sum()
        status = f"{s.size} given sites cover {_people(covered)} people"
        if target_coverage is not None:
            goal = target_coverage * problem.total_population
            status += f" ({'meets' if covered >= goal - problem.tol else 'misses'} the target)"
    else:
        values = np.concatenate([[0.0], np.cumsum(gains)])
        status = f"{s.size} given sites cover {_people(values[-1])} more people"
    draft = _Draft(
        **common,
        gains=gains,
        objective=float(values[-1]),
        status=status,
        covered_before_population=cb,
        covered_after=None,
        objective_curve=tuple((k, float(v)) for k, v in enumerate(values)),
        unreachable=unreachable,
        solve_s=time.perf_counter() - t0,
    )
    return _finish(problem, draft)


def solve_colocated(
    problems: Mapping[str, CoverageProblem],
    weights: Mapping[str, float],
    *,
    p: int,
    method: Method = "auto",
    time_limit_s: float = 30.0,
    mip_rel_gap: float = 1e-4,
) -> ColocatedSolution:
    """Pick p sites serving several layers at once (a 邻里中心 with canteen and elderly station).

    Maximises ``sum_k weight_k * newly covered population of layer k`` (MCLP on the stacked
    demand of all layers; each layer keeps its own threshold).  All problems must share one
    candidate set.  ``per_layer`` scores the chosen sites, in the combined ranking, per layer.
    """
    if not problems:
        _reject("no layers given to solve_colocated")
    if set(weights) != set(problems):
        missing = sorted(set(problems) ^ set(weights))
        _reject(
            f"weights and problems name different layers ({', '.join(missing)})",
            fix="give one weight per layer",
        )
    for kind, wk in weights.items():
        if not (isinstance(wk, int | float) and math.isfinite(wk) and wk >= 0):
            _reject(f"weight of layer {kind!r} must be a number >= 0, got {wk!r}")
    n_cands = {pr.n_candidates for pr in problems.values()}
    if len(n_cands) != 1:
        _reject(
            "the layers have different numbers of candidates "
            f"({', '.join(f'{k}: {pr.n_candidates}' for k, pr in problems.items())})",
            fix="build every layer's problem on the same candidate sites",
        )
    n_c = n_cands.pop()
    t0 = time.perf_counter()
    wts, dd, cc, mm, cbs, areas = [], [], [], [], [], []
    offset = 0
    for kind, pr in problems.items():
        within = pr.pair_minutes <= pr.threshold_min
        wts.append(pr.demand_weight * float(weights[kind]))
        dd.append(pr.pair_demand[within] + offset)
        cc.append(pr.pair_candidate[within])
        mm.append(pr.pair_minutes[within] / pr.threshold_min)  # 1 = each layer's threshold
        cbs.append(pr.covered_before)
        areas.append(np.full(pr.n_demand, kind, dtype=object))
        offset += pr.n_demand
    combined_problem = CoverageProblem.from_pairs(
        np.concatenate(wts),
        np.concatenate(dd),
        np.concatenate(cc),
        np.concatenate(mm),
        threshold_min=1.0,
        n_candidates=n_c,
        covered_before=np.concatenate(cbs),
        demand_area=np.concatenate(areas),
    )
    combined_problem = replace(
        combined_problem, build_s=combined_problem.build_s + (time.perf_counter() - t0)
    )
    combined = solve(
        combined_problem,
        "mclp",
        p=p,
        method=method,
        time_limit_s=time_limit_s,
        mip_rel_gap=mip_rel_gap,
    )
    per_layer = {kind: evaluate(pr, "mclp", combined.selected) for kind, pr in problems.items()}
    return ColocatedSolution(combined=combined, per_layer=per_layer, weights=dict(weights))
