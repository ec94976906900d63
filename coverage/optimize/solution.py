"""What a solve returns (:class:`Solution`, :class:`ColocatedSolution`) and how drafts become one.

Every model solver hands a :class:`Draft` (sites, gains, bound, status) to :func:`finish`, which
derives what the planner reads off any solution the same way: coverage per ranked site, minutes
after, the coverage curve and the before/after table per area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from coverage.optimize.problem import CoverageProblem

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


def rel_gap(objective: float, bound: float) -> float:
    """Relative gap ``|bound - objective| / |objective|``, 0 when equal up to rounding."""
    diff = abs(bound - objective)
    if diff <= 1e-9 * max(abs(objective), abs(bound), 1.0):
        return 0.0
    return diff / abs(objective) if objective != 0 else math.inf


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


def people(x: float) -> str:
    """A population for status text: whole people, or two decimals below 10."""
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:,.2f}"


def unreachable_note(problem: CoverageProblem, unreachable: np.ndarray, what: str) -> str:
    """Status suffix naming the demand no candidate can help ('' if none)."""
    if unreachable.size == 0:
        return ""
    pop = float(problem.demand_weight[unreachable].sum())
    return (
        f"; {unreachable.size} demand units ({people(pop)} people) {what} and cannot be "
        f"helped by any candidate"
    )


@dataclass
class Draft:
    """What a model solver hands to :func:`finish`."""

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


def finish(problem: CoverageProblem, draft: Draft) -> Solution:
    """Turn a model's draft into a :class:`Solution` (curves, minutes after, per area)."""
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
    gap = rel_gap(draft.objective, draft.bound)
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


def dropped_note(requested: int, kept: int, what: str) -> str:
    """Status suffix when fewer than the requested sites add anything."""
    if kept >= requested:
        return ""
    return f"; only {kept} of the {requested} sites {what}, the others would add nothing"
