"""LSCP, the location set covering problem: fewest new sites reaching a coverage target."""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp

from coverage.optimize.heuristics import (
    SavingInstance,
    fix_cover,
    greedy,
    group_units,
    lagrangian_cover,
    order_by_gain,
)
from coverage.optimize.highs import LP_BOUND_MAX_PAIRS, MilpOutcome, milp_note, run_milp, use_exact
from coverage.optimize.problem import CoverageProblem
from coverage.optimize.saving import (
    coverage_instance,
    unreachable_coverage,
)
from coverage.optimize.solution import Draft, people, unreachable_note

#: LSCP set-covering Lagrangian: (iterations, safety cap in seconds).
_COVER_RUN = {"heuristic": (200, 3.0), "exact": (400, 10.0)}


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
) -> tuple[MilpOutcome, np.ndarray, float]:
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
    out = run_milp(cost, integ, A, lb, ub, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
    sites = np.empty(0, dtype=np.int64)
    if out.x is not None and not relax:
        sites = useful[out.x[x_off:] > 0.5]
    return out, sites, build_s


def _lscp_lp_bound(inst: SavingInstance, target: float, full: bool, time_limit_s: float) -> float:
    out, _, _ = _lscp_milp(inst, target, full, time_limit_s, 0.0, relax=True)
    return math.ceil(out.dual_bound - 1e-6) if out.status == 0 else 0.0


def solve_lscp(
    problem: CoverageProblem,
    target_coverage: float | None,
    *,
    method: str,
    time_limit_s: float,
    mip_rel_gap: float,
) -> Draft:
    """LSCP: fewest new sites reaching ``target_coverage`` (default all reachable demand)."""
    t0 = time.perf_counter()
    inst, _units = coverage_instance(problem)
    unreachable = unreachable_coverage(problem)
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
        wanted = f"{target_coverage:.1%} of {people(total)} people = {people(target_abs)}"
    need = target_abs - cb
    full = need >= reach - tol
    notes: list[str] = []
    if need > reach + tol:
        shortfall = need - reach
        most = cb + reach
        notes.append(
            f"the target ({wanted}) cannot be reached: even every candidate covers at most "
            f"{people(most)} ({most / total:.1%}), {people(shortfall)} people short; "
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
        exact = use_exact(method, "lscp", inst.n_pairs)
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
                out_note = f"{milp_note(out, time_limit_s)}; {out_note}"
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
    status = "; ".join([status_head, *notes]) + unreachable_note(
        problem, unreachable, "are beyond reach of every candidate"
    )
    count = float(ranked.order.size)
    curve = np.concatenate([[0.0], np.arange(1, ranked.order.size + 1, dtype=np.float64)])
    del milp_s
    return Draft(
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
