"""MCLP, the maximal covering location problem: p new sites, most newly covered population."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from coverage.optimize.heuristics import (
    order_by_gain,
)
from coverage.optimize.problem import CoverageProblem
from coverage.optimize.saving import (
    coverage_instance,
    solve_saving,
    unreachable_coverage,
)
from coverage.optimize.solution import Draft, dropped_note, people, unreachable_note


def solve_mclp(problem: CoverageProblem, p: int, **opts: Any) -> Draft:
    """MCLP: p new sites maximising newly covered target population."""
    t0 = time.perf_counter()
    inst, _units = coverage_instance(problem)
    unreachable = unreachable_coverage(problem)
    build_s = problem.build_s + time.perf_counter() - t0
    sites, bound, kind, source, optimal, note, used, mb_s, solve_s = solve_saving(
        problem, "mclp", inst, p, **opts
    )
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
        build_s=build_s + mb_s,
        solve_s=solve_s,
    )
