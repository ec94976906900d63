"""The entry points: :func:`solve`, :func:`evaluate` and :func:`solve_colocated`."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from coverage.optimize.capacitated import cap_served, solve_capacitated
from coverage.optimize.maximal import solve_mclp
from coverage.optimize.pmedian import solve_pmedian
from coverage.optimize.problem import CoverageProblem, check_index, checked_vector, reject
from coverage.optimize.saving import coverage_instance, pmedian_instance, unreachable_coverage
from coverage.optimize.setcover import solve_lscp
from coverage.optimize.solution import ColocatedSolution, Draft, Solution, finish, people

logger = logging.getLogger(__name__)

Model = Literal["mclp", "lscp", "pmedian", "capacitated"]
Method = Literal["auto", "exact", "heuristic"]

MODELS: tuple[str, ...] = ("mclp", "lscp", "pmedian", "capacitated")
METHODS: tuple[str, ...] = ("auto", "exact", "heuristic")


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
        reject("`problem` must be built with CoverageProblem.from_pairs")
    if model not in MODELS:
        reject(f"unknown model {model!r}", fix=f"use one of {', '.join(MODELS)}")
    if method not in METHODS:
        reject(f"unknown method {method!r}", fix=f"use one of {', '.join(METHODS)}")
    if model == "lscp":
        if p is not None:
            reject(
                "LSCP finds the number of sites itself; `p` is not used",
                fix="drop p, or use model='mclp' to place a given number of sites",
            )
        if target_coverage is not None and not (
            isinstance(target_coverage, int | float) and 0 < target_coverage <= 1
        ):
            reject(
                f"`target_coverage` must be a share in (0, 1], got {target_coverage!r}",
                fix="e.g. 0.95 for 95% of the target population",
            )
    else:
        if target_coverage is not None:
            reject(f"`target_coverage` is only used by LSCP, not {model}")
        if p is None or isinstance(p, bool) or int(p) != p:
            reject(f"`p` (number of new sites) must be a whole number, got {p!r}")
        if p < 0:
            reject(f"`p` must be >= 0, got {p}")
        if p > problem.n_candidates:
            reject(
                f"`p` is {p} but there are only {problem.n_candidates} candidate sites",
                fix=f"ask for at most {problem.n_candidates} sites or add candidates",
            )
    if not (isinstance(time_limit_s, int | float) and time_limit_s > 0):
        reject(f"`time_limit_s` must be > 0, got {time_limit_s!r}")
    if not (isinstance(mip_rel_gap, int | float) and 0 <= mip_rel_gap < 1):
        reject(f"`mip_rel_gap` must be in [0, 1), got {mip_rel_gap!r}")


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
    on_incumbent: Callable[[Solution], None] | None = None,
) -> Solution:
    """Suggest new sites.

    Parameters
    ----------
    problem
        From :meth:`CoverageProblem.from_pairs` or :meth:`CoverageProblem.from_cost_matrix`.
    model
        ``"mclp"`` (p sites, most newly covered target population), ``"lscp"`` (fewest sites
        reaching ``target_coverage``), ``"pmedian"`` (p sites, least population-weighted
        minutes), ``"capacitated"`` (p sites, most newly served population within capacities).
    p
        Number of *new* sites (all models but LSCP).  Existing facilities (``minutes_before``
        / ``covered_before`` in :meth:`CoverageProblem.from_pairs`, ``existing_cost`` in
        :meth:`CoverageProblem.from_cost_matrix`) always stay open and are not counted: p = 3
        with 5 existing facilities gives 8 facilities.  (spopt's ``p_facilities`` counts
        predefined facilities too; here they are existing ones and p counts only the new.)
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
    on_incumbent
        Called with the first answer worth showing, before the exact proof: an exact MCLP on
        a city takes seconds, its heuristic answer and bound a fraction of that.  For MCLP and
        p-median on the exact path it gets the heuristic's :class:`Solution` (``method`` is
        ``"heuristic"``, ``optimal`` False, ``bound`` already proven) as soon as it exists,
        before HiGHS starts; otherwise (heuristic method, LSCP, capacitated, or a heuristic
        answer that already meets its bound) it gets the returned solution, just before
        :func:`solve` returns.  Called exactly once per solve, in the calling thread (not for
        the ``resolve_curve`` re-solves); an exception it raises propagates.
    """
    _check_solve_args(problem, model, p, target_coverage, method, time_limit_s, mip_rel_gap)
    opts: dict[str, Any] = {
        "method": method,
        "time_limit_s": float(time_limit_s),
        "mip_rel_gap": float(mip_rel_gap),
    }
    announced = False

    def announce(heuristic: Draft) -> None:
        nonlocal announced
        first = finish(problem, heuristic)
        logger.info("%s heuristic answer (HiGHS follows): %s", model, first.status)
        announced = True
        if on_incumbent is not None:
            on_incumbent(first)

    hook = announce if on_incumbent is not None else None
    if model == "mclp":
        draft = solve_mclp(problem, int(p or 0), on_heuristic=hook, **opts)
    elif model == "pmedian":
        pen = 2.0 * problem.cutoff_min if unserved_min is None else float(unserved_min)
        if not (math.isfinite(pen) and pen > 0):
            reject(f"`unserved_min` must be a positive number, got {unserved_min!r}")
        draft = solve_pmedian(problem, int(p or 0), unserved_min=pen, on_heuristic=hook, **opts)
    elif model == "lscp":
        draft = solve_lscp(problem, target_coverage, **opts)
    else:
        draft = solve_capacitated(problem, int(p or 0), **opts)
    logger.info("%s: %s", model, draft.status)
    solution = finish(problem, draft)
    if resolve_curve and model != "lscp" and p:
        best = [(0, solution.objective_curve[0][1])]
        for k in range(1, int(p)):
            sub = solve(problem, model, p=k, unserved_min=unserved_min, **opts)
            best.append((k, sub.objective))
        best.append((int(p), solution.objective))
        solution = replace(solution, best_curve=tuple(best))
    if on_incumbent is not None and not announced:
        on_incumbent(solution)
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
        reject(f"unknown model {model!r}", fix=f"use one of {', '.join(MODELS)}")
    s = checked_vector("sites", np.asarray(sites, dtype=np.int64) if len(sites) else [], kind="int")
    check_index("sites", s, problem.n_candidates, "candidate")
    if np.unique(s).size != s.size:
        reject("`sites` lists a candidate twice", column="sites")
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
        base, base_frac = cap_served(problem, np.empty(0, dtype=np.int64))
        served = [base]
        frac = base_frac
        for k in range(1, s.size + 1):
            val, frac = cap_served(problem, s[:k])
            served.append(val)
        gains = np.diff(np.asarray(served))
        reach = np.zeros(problem.n_demand, dtype=bool)
        reach[problem.pair_demand[problem.pair_minutes <= problem.threshold_min]] = True
        draft = Draft(
            **common,
            gains=gains,
            objective=served[-1] - base,
            status=f"{s.size} given sites serve {people(served[-1] - base)} more people",
            covered_before_population=base,
            covered_after=frac,
            objective_curve=tuple((k, float(v - base)) for k, v in enumerate(served)),
            unreachable=np.flatnonzero((w > 0) & (base_frac < 1 - 1e-9) & ~reach),
            solve_s=time.perf_counter() - t0,
            before_fraction=base_frac,
            covered_curve=tuple((k, float(v)) for k, v in enumerate(served)),
        )
        return finish(problem, draft)
    if model == "pmedian":
        pen = 2.0 * problem.cutoff_min if unserved_min is None else float(unserved_min)
        inst, _units, unreachable = pmedian_instance(problem, pen)
    else:
        inst, _units = coverage_instance(problem)
        unreachable = unreachable_coverage(problem)
    cost = inst.base.copy()
    gains = np.array([inst.open_site(cost, int(j)) for j in s], dtype=np.float64)
    if model == "pmedian":
        base_total = float(inst.weight @ inst.base)
        values = base_total - np.concatenate([[0.0], np.cumsum(gains)])
        status = f"{s.size} given sites: population-weighted minutes {people(values[-1])}"
    elif model == "lscp":
        values = np.arange(s.size + 1, dtype=np.float64)
        covered = cb + gains.sum()
        status = f"{s.size} given sites cover {people(covered)} people"
        if target_coverage is not None:
            goal = target_coverage * problem.total_population
            status += f" ({'meets' if covered >= goal - problem.tol else 'misses'} the target)"
    else:
        values = np.concatenate([[0.0], np.cumsum(gains)])
        status = f"{s.size} given sites cover {people(values[-1])} more people"
    draft = Draft(
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
    return finish(problem, draft)


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
        reject("no layers given to solve_colocated")
    if set(weights) != set(problems):
        missing = sorted(set(problems) ^ set(weights))
        reject(
            f"weights and problems name different layers ({', '.join(missing)})",
            fix="give one weight per layer",
        )
    for kind, wk in weights.items():
        if not (isinstance(wk, int | float) and math.isfinite(wk) and wk >= 0):
            reject(f"weight of layer {kind!r} must be a number >= 0, got {wk!r}")
    n_cands = {pr.n_candidates for pr in problems.values()}
    if len(n_cands) != 1:
        reject(
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
