"""Capacitated coverage: p new sites, most newly served population within capacities.

A capacity-aware greedy proposes sites; an assignment LP (:func:`cap_served`) scores every set
exactly, existing facilities' remaining capacities included when they are known.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from coverage.optimize.heuristics import (
    capacitated_greedy,
    top_sum,
)
from coverage.optimize.highs import (
    LP_BOUND_MAX_PAIRS,
    MilpOutcome,
    milp_note,
    run_milp,
    use_exact,
)
from coverage.optimize.problem import CoverageProblem
from coverage.optimize.solution import Draft, dropped_note, people, rel_gap, unreachable_note

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

    def solve(self, *, time_limit_s: float, mip_rel_gap: float) -> MilpOutcome:
        """The model through HiGHS."""
        return run_milp(
            self.cost,
            self.integrality,
            self.A,
            self.lb,
            self.ub,
            time_limit_s=time_limit_s,
            mip_rel_gap=mip_rel_gap,
        )


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


def cap_served(problem: CoverageProblem, sites: np.ndarray) -> tuple[float, np.ndarray]:
    """Served population and served share per unit when ``sites`` are open (an exact LP)."""
    existing = problem.existing_capacity is not None
    frac = np.zeros(problem.n_demand) if existing else problem.covered_before.astype(np.float64)
    model = _cap_model(problem, np.asarray(sites, dtype=np.int64), p=None)
    if model.A.shape[1] == 0:
        return float(problem.demand_weight @ frac), frac
    out = model.solve(time_limit_s=600.0, mip_rel_gap=0.0)
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
        val, frac = cap_served(problem, order[:k])
        served.append(val)
    gains = np.diff(np.asarray(served))
    keep = gains > problem.tol
    if not keep.all():
        order = order[keep]
        served = [base]
        for k in range(1, order.size + 1):
            val, frac = cap_served(problem, order[:k])
            served.append(val)
        gains = np.diff(np.asarray(served))
    if order.size == 0:
        frac = cap_served(problem, order)[1]
    return order, gains, frac, served


def solve_capacitated(
    problem: CoverageProblem, p: int, *, method: str, time_limit_s: float, mip_rel_gap: float
) -> Draft:
    """Capacitated coverage: capacity-aware greedy, then HiGHS (exact) or the LP bound."""
    t0 = time.perf_counter()
    w, tol = problem.demand_weight, problem.tol
    cap = (
        np.full(problem.n_candidates, np.inf)
        if problem.candidate_capacity is None
        else problem.candidate_capacity
    )
    base, base_frac = cap_served(problem, np.empty(0, dtype=np.int64))
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
    value = cap_served(problem, sites)[0] - base
    # cheap bound: new sites carry at most their capacity and the weight they reach; without
    # existing capacities they only serve unserved units they reach, with them any unserved unit
    unserved = residual[reach] if problem.existing_capacity is None else residual
    bound = min(top_sum(per_site[useful], p), float(unserved.sum()))
    kind = "capacity bound (p largest min(capacity, reachable weight))"
    n_pairs = int(np.isin(c_all, useful).sum()) if useful.size else 0
    exact = use_exact(method, "capacitated", n_pairs)
    used = "exact" if exact else "heuristic"
    note = f"capacity-aware greedy in {(time.perf_counter() - t1) * 1000:.0f} ms"
    mb_s = 0.0
    optimal = value >= bound - tol
    if not optimal and useful.size and p > 0:
        if exact:
            tb = time.perf_counter()
            model = _cap_model(problem, useful, p=p)
            mb_s = time.perf_counter() - tb
            out = model.solve(time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
            note = f"{milp_note(out, time_limit_s)}; {note}"
            if out.x is not None:
                m_sites = useful[out.x[model.n_assign :] > 0.5]
                m_value = cap_served(problem, m_sites)[0] - base
                if m_value >= value - tol:
                    sites, value, source = m_sites, m_value, "milp"
                else:
                    note += "; the greedy sites beat HiGHS's incumbent and are returned"
            if np.isfinite(out.dual_bound) and -out.dual_bound - offset < bound:
                bound, kind = -out.dual_bound - offset, "HiGHS dual bound"
            optimal = out.status == 0 or rel_gap(value, max(bound, value)) <= mip_rel_gap
        elif n_pairs <= LP_BOUND_MAX_PAIRS:
            model = _cap_model(problem, useful, p=p, binary=False)
            out = model.solve(time_limit_s=time_limit_s, mip_rel_gap=0.0)
            if out.status == 0 and -out.dual_bound - offset < bound:
                bound, kind = -out.dual_bound - offset, "LP relaxation"
            optimal = rel_gap(value, max(bound, value)) <= mip_rel_gap
    order, gains, frac, served = _cap_order(problem, np.asarray(sites), residual, cap, base)
    value = float(served[-1] - base)
    bound = max(bound, value)
    if value >= bound - tol:
        optimal = True
    unreach_note = unreachable_note(problem, unreachable, "are beyond reach of every candidate")
    status = (
        f"{'optimal' if optimal else 'feasible'}: {order.size} new sites serve "
        f"{people(value)} more people within capacity; {note}"
        + dropped_note(p, order.size, "add served population")
        + unreach_note
    )
    curve = tuple((k, float(v)) for k, v in enumerate(served))
    return Draft(
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
