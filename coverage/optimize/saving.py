"""The saving form shared by MCLP and p-median: instance builders and heuristic-then-MILP.

Both models maximise a monotone submodular saving ``R(S)`` over at most p sites (see
:mod:`coverage.optimize.heuristics`), so one routine runs greedy, swap, the MCLP Lagrangian,
Lagrangian variable fixing and HiGHS for both; the model modules only phrase the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from coverage.optimize.heuristics import (
    LagrangianResult,
    SavingInstance,
    fix_by_lagrangian,
    greedy,
    group_units,
    lagrangian_coverage,
    swap,
    top_sum,
    undominated,
)
from coverage.optimize.highs import (
    LP_BOUND_MAX_PAIRS,
    MilpOutcome,
    cutoff_bound,
    milp_note,
    run_milp,
    use_exact,
)
from coverage.optimize.problem import CoverageProblem
from coverage.optimize.solution import Draft, rel_gap

logger = logging.getLogger(__name__)

_SWAP_BUDGET_S = 5.0
#: MCLP Lagrangian subgradient: (iterations, swap every k iterations, safety cap in seconds).
#: Iterations, not seconds, decide the quality so that a busy machine gives the same answer.
#: The exact path runs the heuristic's iterations first (so it shows the same answer early),
#: then continues for more: a tighter bound fixes more sites before HiGHS starts.
_LAGRANGE_RUN = {"heuristic": (300, 150, 3.0), "exact": (700, 250, 10.0)}

#: Called with (sites, saving bound, bound kind, source, heuristic seconds) once the
#: heuristic's answer exists and HiGHS is about to prove or improve it.
HeuristicHook = Callable[[np.ndarray, float, str, str, float], None]


class SavingAnswer(NamedTuple):
    """One answer of :func:`solve_saving` (the heuristic's early one, or the last)."""

    sites: np.ndarray
    bound: float  # on the saving
    bound_kind: str
    source: str  # "greedy", "greedy+swap", "milp"...
    optimal: bool
    note: str
    method: str  # "exact" or "heuristic"
    build_s: float  # building the MILP, added to the model's own build time
    solve_s: float


def solve_to_draft(
    problem: CoverageProblem,
    model: str,
    inst: SavingInstance,
    p: int,
    *,
    build_s: float,
    make: Callable[..., Draft],
    on_heuristic: Callable[[Draft], None] | None = None,
    **opts: Any,
) -> Draft:
    """:func:`solve_saving` with its answers (the early one and the last) as the model's drafts.

    ``make(answer, build_s)`` is the model's own draft builder, so the heuristic's answer
    handed to ``on_heuristic`` (before HiGHS starts) reads exactly like the final one.
    """
    hook: HeuristicHook | None = None
    if on_heuristic is not None:
        announce = on_heuristic

        def hook(sites: np.ndarray, bound: float, kind: str, source: str, s: float) -> None:
            note = f"{source} in {s * 1000:.0f} ms; HiGHS is proving or improving it"
            early = SavingAnswer(sites, bound, kind, source, False, note, "heuristic", 0.0, s)
            announce(make(early, build_s))

    answer = solve_saving(problem, model, inst, p, on_heuristic=hook, **opts)
    return make(answer, build_s + answer.build_s)


# --------------------------------------------------------------------------------------------
# the shared instance builders


def coverage_instance(problem: CoverageProblem) -> tuple[SavingInstance, np.ndarray]:
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


def unreachable_coverage(problem: CoverageProblem) -> np.ndarray:
    """Uncovered units with population that no candidate reaches within the threshold."""
    w = problem.demand_weight
    within = problem.pair_minutes <= problem.threshold_min
    reach = np.zeros(problem.n_demand, dtype=bool)
    reach[problem.pair_demand[within]] = True
    return np.flatnonzero((w > 0) & ~problem.covered_before & ~reach)


def pmedian_instance(
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
# MCLP and p-median (saving form, maximise)


def _saving_milp(
    inst: SavingInstance,
    p: int,
    compact_coverage: bool,
    time_limit_s: float,
    mip_rel_gap: float,
    *,
    relax: bool = False,
    cutoff: float | None = None,
) -> tuple[MilpOutcome, np.ndarray, float, float]:
    """Solve max R(S) s.t. |S| <= p as a MILP.

    Returns the outcome, the chosen sites, the bound on R and the seconds spent building.

    ``relax`` solves the LP relaxation instead (x continuous), for the heuristic's bound.
    ``cutoff``: only site sets saving more are of interest (an incumbent HiGHS cannot be
    given); the bound returned then holds for every site set (see ``cutoff_bound``).

    ``compact_coverage`` (MCLP): one continuous y per unit, ``y_i <= sum_j x_j``.  Otherwise
    (p-median): one continuous z per improving pair, ``sum_j z_ij <= 1`` and ``z_ij <= x_j``.
    """
    t0 = time.perf_counter()
    useful = inst.useful_candidates()
    if compact_coverage:
        kept = undominated(inst, useful)
        if kept.size < useful.size:
            logger.debug(
                "MILP: %d of %d candidates dominated", useful.size - kept.size, useful.size
            )
            inst, useful = inst.restrict(kept), kept
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
    # p-median: minimise the minutes themselves (base total - saving), see run_milp
    offset = 0.0 if compact_coverage else float(inst.weight @ inst.base)
    build_s = time.perf_counter() - t0
    min_cutoff = None if cutoff is None else offset - cutoff
    out = run_milp(
        cost,
        integ,
        A,
        lb,
        ub,
        time_limit_s=time_limit_s,
        mip_rel_gap=mip_rel_gap,
        offset=offset,
        objective_cutoff=min_cutoff,
    )
    sites = np.empty(0, dtype=np.int64)
    if out.x is not None:
        sites = useful[out.x[x_off:] > 0.5]
    return out, sites, offset - cutoff_bound(out, min_cutoff)[0], build_s


def _kernel_search(
    inst: SavingInstance,
    p: int,
    lam: np.ndarray,
    sites: np.ndarray,
    value: float,
    *,
    time_limit_s: float,
    mip_rel_gap: float,
    tol: float,
) -> tuple[np.ndarray, float, float]:
    """Better MCLP sites from a small MILP over the candidates the Lagrangian rates best.

    The subgradient's sites and interchange stop a little short of the optimum (0.04% on the
    westlake instance), and how many sites Lagrangian fixing can rule out, and how soon HiGHS
    can close the gap with the incumbent as its cutoff, both depend on that last bit.  The
    optimum mostly uses candidates with high Lagrangian scores ``g_j``, so HiGHS on the
    incumbent's sites plus the ``3 p`` best-scored candidates (a "kernel" [Angelelli et al.
    2010]) usually finds it in a fraction of a second.  Returns (sites, value, seconds).
    """
    t0 = time.perf_counter()
    g = np.asarray(inst.cand_matrix @ lam)
    useful = inst.useful_candidates()
    k = min(3 * p, useful.size)
    top = useful[np.argsort(-g[useful], kind="stable")[:k]]
    kernel = np.union1d(top, sites)
    if kernel.size >= useful.size:
        return sites, value, 0.0  # the kernel would be the whole model
    out, k_sites, _, _ = _saving_milp(
        inst.restrict(kernel), p, True, time_limit_s, mip_rel_gap, cutoff=value + tol
    )
    if out.x is not None:
        k_value = inst.saving(k_sites)
        if k_value > value + tol:
            logger.info("kernel search (%d candidates): %.6g -> %.6g", kernel.size, value, k_value)
            sites, value = k_sites, k_value
    return sites, value, time.perf_counter() - t0


def _lagrangian(
    inst: SavingInstance,
    p: int,
    start: np.ndarray,
    run: str,
    *,
    tol: float,
    time_limit_s: float,
    warm: LagrangianResult | None = None,
) -> LagrangianResult:
    """The MCLP Lagrangian of the ``run`` ("heuristic", or "exact" continuing it from ``warm``)."""
    iters, swap_every, cap_s = _LAGRANGE_RUN[run]
    return lagrangian_coverage(
        inst,
        p,
        start=start,
        tol=tol,
        max_iter=iters,
        swap_every=swap_every,
        time_budget_s=min(cap_s, time_limit_s / 4),
        warm=warm,
    )


def solve_saving(
    problem: CoverageProblem,
    model: str,
    inst: SavingInstance,
    p: int,
    *,
    method: str,
    time_limit_s: float,
    mip_rel_gap: float,
    on_heuristic: HeuristicHook | None = None,
) -> SavingAnswer:
    """Heuristic then (optionally) MILP for max R(S), |S| <= p.

    ``on_heuristic`` is called with the heuristic's answer before the exact phase starts (not
    at all when no exact phase follows).
    """
    tol = problem.tol
    t0 = time.perf_counter()
    g = greedy(inst, p, tol=tol)
    sites, source, value = g.order, "greedy", g.saving
    bound, bound_kind = g.bound, g.bound_kind
    if inst.max_saving < bound:
        bound, bound_kind = inst.max_saving, "every reachable unit served by its best candidate"
    lag = None
    exact = use_exact(method, model, inst.n_pairs)
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
            lag = _lagrangian(inst, p, sites, "heuristic", tol=tol, time_limit_s=time_limit_s)
            if lag.bound < bound:
                bound, bound_kind = lag.bound, "Lagrangian relaxation (subgradient)"
            if lag.value > value + tol:
                sites, source, value = lag.sites, "lagrangian+swap", lag.value
    heur_s = time.perf_counter() - t0
    logger.info(
        "%s heuristic (%s) in %.2f s: saving %.6g, bound %.6g (%s), gap %.3g%%",
        model,
        source,
        heur_s,
        value,
        max(bound, value),
        bound_kind,
        100 * rel_gap(value, max(bound, value)),
    )
    note = f"{source} in {heur_s * 1000:.0f} ms"
    build_s = 0.0
    if exact and on_heuristic is not None and value < bound - tol:
        on_heuristic(sites, max(bound, value), bound_kind, source, heur_s)
    if exact and lag is not None and value < bound - tol:
        lag = _lagrangian(inst, p, sites, "exact", tol=tol, time_limit_s=time_limit_s, warm=lag)
        if lag.bound < bound:
            bound, bound_kind = lag.bound, "Lagrangian relaxation (subgradient)"
        if lag.value > value + tol:
            sites, source, value = lag.sites, "lagrangian+swap", lag.value
        if value < bound - tol:
            k_sites, k_value, _ = _kernel_search(
                inst,
                p,
                lag.multipliers,
                sites,
                value,
                time_limit_s=min(time_limit_s / 8, 3.0),
                mip_rel_gap=mip_rel_gap,
                tol=tol,
            )
            if k_value > value + tol:
                sites, source, value = k_sites, "kernel milp", k_value
        heur_s = time.perf_counter() - t0
        note = f"{source} in {heur_s * 1000:.0f} ms"
    lam = None if lag is None else lag.multipliers
    if value >= bound - tol:
        note += "; it reaches the bound, so it is optimal"
        return SavingAnswer(
            sites, max(bound, value), bound_kind, source, True, note, used, build_s, heur_s
        )
    if not exact:
        if lam is None and inst.n_pairs <= LP_BOUND_MAX_PAIRS:
            out, _, lp_bound, build_s = _saving_milp(
                inst, p, model == "mclp", time_limit_s, 0.0, relax=True
            )
            heur_s += out.seconds
            if out.status == 0 and lp_bound < bound:
                bound, bound_kind = lp_bound, "LP relaxation"
        bound = max(bound, value)
        optimal = rel_gap(value, bound) <= mip_rel_gap
        return SavingAnswer(sites, bound, bound_kind, source, optimal, note, used, build_s, heur_s)
    # exact: with Lagrangian multipliers, first fix the sites that cannot help (MCLP)
    fixed_in = np.empty(0, dtype=np.int64)
    sub, sub_p, fixed_value, broken_bound = inst, p, 0.0, -np.inf
    # only site sets beating this matter: the incumbent is optimal within the MIP gap otherwise
    threshold = value * (1.0 + mip_rel_gap) - tol
    if lam is not None:
        fixing = fix_by_lagrangian(inst, p, lam, threshold)
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
        out = MilpOutcome(None, 0, "nothing left to decide", -np.inf, 0, 0.0)
        restricted_bound = fixed_value
        if fixed_value > value + tol:
            sites, value, source = fixed_in, fixed_value, "lagrangian fixing"
        note = f"nothing left for HiGHS after fixing; {note}"
        m_value, m_sites, milp_optimal = -np.inf, fixed_in, True
        fixed_kind = "Lagrangian fixing (any other site set is worth at most this)"
    else:
        # MCLP: HiGHS gets the incumbent as a cutoff; p-median's gap is on minutes, not saving
        cutoff = threshold - fixed_value if model == "mclp" else None
        out, sub_sites, sub_bound, build_s = _saving_milp(
            sub, sub_p, model == "mclp", time_limit_s, mip_rel_gap, cutoff=cutoff
        )
        m_sites = np.concatenate([fixed_in, sub_sites])
        m_value = inst.saving(m_sites) if out.x is not None else -np.inf
        restricted_bound = fixed_value + sub_bound if np.isfinite(sub_bound) else np.inf
        note = f"{milp_note(out, time_limit_s, cutoff=cutoff is not None)}; {note}"
        milp_optimal = out.status == 0 or (cutoff is not None and out.status == 2)
        fixed_kind = "HiGHS dual bound" + (" after Lagrangian fixing" if lam is not None else "")
        if cutoff is not None and out.status == 2:
            fixed_kind = "HiGHS: no site set beats the incumbent by the MIP gap" + (
                " (after Lagrangian fixing)" if lam is not None else ""
            )
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
    if rel_gap(value, bound) <= mip_rel_gap:
        optimal = True
    solve_s = heur_s + out.seconds
    return SavingAnswer(sites, bound, bound_kind, source, optimal, note, used, build_s, solve_s)
