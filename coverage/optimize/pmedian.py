"""p-median: p new sites, least population-weighted minutes to the nearest facility."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from coverage.optimize.heuristics import SavingInstance, order_by_gain
from coverage.optimize.problem import CoverageProblem
from coverage.optimize.saving import (
    SavingAnswer,
    pmedian_instance,
    solve_to_draft,
)
from coverage.optimize.solution import Draft, dropped_note, people, unreachable_note


def solve_pmedian(
    problem: CoverageProblem,
    p: int,
    *,
    unserved_min: float,
    on_heuristic: Callable[[Draft], None] | None = None,
    **opts: Any,
) -> Draft:
    """p-median: p new sites minimising population-weighted minutes.

    ``on_heuristic`` gets the heuristic's draft before HiGHS starts (exact path only).
    """
    t0 = time.perf_counter()
    inst, _units, unreachable = pmedian_instance(problem, unserved_min)
    build_s = problem.build_s + time.perf_counter() - t0

    make = functools.partial(_pmedian_draft, problem, inst, _units, p, unserved_min, unreachable)
    return solve_to_draft(
        problem, "pmedian", inst, p, build_s=build_s, make=make, on_heuristic=on_heuristic, **opts
    )


def _pmedian_draft(
    problem: CoverageProblem,
    inst: SavingInstance,
    _units: np.ndarray,
    p: int,
    unserved_min: float,
    unreachable: np.ndarray,
    answer: SavingAnswer,
    build_s: float,
) -> Draft:
    sites, bound, kind, source, optimal, note, used, _, solve_s = answer
    ranked = order_by_gain(inst, sites, tol=problem.tol)
    base_total = float(inst.weight @ inst.base)
    objective = base_total - float(ranked.gains.sum())
    cost = inst.cost_with(ranked.order)
    penalised = inst.weight[(cost >= unserved_min) & ~np.isfinite(problem.minutes_before[_units])]
    pen_note = ""
    if penalised.size:
        pen_note = (
            f"; {penalised.size} units ({people(float(penalised.sum()))} people) keep no "
            f"facility within the pairs' cutoff and count {unserved_min:g} min each"
        )
    cb = float(problem.demand_weight[problem.covered_before].sum())
    status = (
        f"{'optimal' if optimal else 'feasible'}: {ranked.order.size} new sites cut "
        f"population-weighted minutes from {people(base_total)} to {people(objective)}; {note}"
        + dropped_note(p, ranked.order.size, "shorten any walk")
        + pen_note
        + unreachable_note(problem, unreachable, "have no facility and no candidate in reach")
    )
    curve = base_total - np.concatenate([[0.0], np.cumsum(ranked.gains)])
    return Draft(
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
        build_s=build_s,
        solve_s=solve_s,
    )
