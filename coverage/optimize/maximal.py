"""MCLP, the maximal covering location problem: p new sites, most newly covered population."""

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
    coverage_instance,
    solve_to_draft,
    unreachable_coverage,
)
from coverage.optimize.solution import Draft, dropped_note, people, unreachable_note


def solve_mclp(
    problem: CoverageProblem,
    p: int,
    *,
    on_heuristic: Callable[[Draft], None] | None = None,
    **opts: Any,
) -> Draft:
    """MCLP: p new sites maximising newly covered target population.

    ``on_heuristic`` gets the heuristic's draft before HiGHS starts (exact path only).
    """
    t0 = time.perf_counter()
    inst, _units = coverage_instance(problem)
    unreachable = unreachable_coverage(problem)
    build_s = problem.build_s + time.perf_counter() - t0

    make = functools.partial(_mclp_draft, problem, inst, p, unreachable)
    return solve_to_draft(
        problem, "mclp", inst, p, build_s=build_s, make=make, on_heuristic=on_heuristic, **opts
    )


def _mclp_draft(
    problem: CoverageProblem,
    inst: SavingInstance,
    p: int,
    unreachable: np.ndarray,
    answer: SavingAnswer,
    build_s: float,
) -> Draft:
    sites, bound, kind, source, optimal, note, used, _, solve_s = answer
    ranked = order_by_gain(inst, sites, tol=problem.tol)
    value = float(ranked.gains.sum())
    cb = float(problem.demand_weight[problem.covered_before].sum())
    status = (
        f"{'optimal' if optimal else 'feasible'}: {ranked.order.size} new sites cover "
        f"{people(value)} more people; {note}"
        + dropped_note(p, ranked.order.size, "add coverage")
        + unreachable_note(problem, unreachable, "are beyond reach of every candidate")
    )
    curve = np.concatenate([[0.0], np.cumsum(ranked.gains)])
    return Draft(
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
        build_s=build_s,
        solve_s=solve_s,
    )
