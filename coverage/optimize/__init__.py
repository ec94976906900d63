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
   site variables need to be binary.  Units with identical candidate sets share one row, and
   (MCLP) candidates whose units another candidate covers too are dropped.  For MCLP the
   Lagrangian first continues where the heuristic stopped, then a small MILP over the
   candidates it rates best ("kernel search") usually finds the optimum; with that incumbent,
   sites that provably cannot be part of a better solution are fixed (Lagrangian variable
   fixing), which leaves HiGHS a small fraction of the candidates, and HiGHS gets the
   incumbent as a cutoff (``objective_bound``: scipy's HiGHS takes no warm start).  When HiGHS
   stops at its time limit with an incumbent worse than ours, ours is returned with HiGHS's
   dual bound.  ``method="auto"`` picks exact below a size (number of modelled pairs,
   :data:`AUTO_EXACT_MAX_PAIRS`) and the heuristic above it.  ``solve(...,
   on_incumbent=...)`` hands over the heuristic's answer and bound before HiGHS starts
   (westlake_10km, 27k demand nodes x 2,000 candidates, p = 30: 0.5 s, then the proven
   optimum at 1.5 s; see bench/bench_optimize.py).

Every :class:`Solution` ranks its sites by marginal gain (greedy order within the chosen set, so
"build the first k" is the best nested plan for that set) and carries a coverage-vs-sites curve
for those nested prefixes; ``resolve_curve=True`` also solves the model again for every k.
Sites that add nothing once the others are open are not suggested (the status says so).

Public API
----------
:class:`CoverageProblem`
    The checked input: :meth:`~CoverageProblem.from_pairs` (long-format reachable pairs, what the
    analysis has after routing) or :meth:`~CoverageProblem.from_cost_matrix` (a dense or sparse
    demand x candidate cost matrix in any unit, ``inf`` = unreachable).
:func:`solve`
    One signature for every model (:data:`MODELS`) and method (:data:`METHODS`).  ``p`` counts
    *new* sites: existing facilities always stay and are never counted.
:func:`evaluate`
    Score sites a planner proposes as :func:`solve` would report them.
:func:`solve_colocated`
    p sites serving several layers at once.
:class:`Solution`, :class:`ColocatedSolution`
    The answers.

Modules: :mod:`~coverage.optimize.problem`, :mod:`~coverage.optimize.solution`, one per model
family (:mod:`~coverage.optimize.maximal` MCLP, :mod:`~coverage.optimize.setcover` LSCP,
:mod:`~coverage.optimize.pmedian`, :mod:`~coverage.optimize.capacitated`, with
:mod:`~coverage.optimize.saving` shared by MCLP and p-median), :mod:`~coverage.optimize.heuristics`
(greedy, swap, Lagrangian), :mod:`~coverage.optimize.highs` (the MILP plumbing) and
:mod:`~coverage.optimize.api` (the entry points).  Each imports only modules listed before it
in that dependency order: heuristics, problem, solution, highs, saving, the models, api.

Example
-------
Three blocks of residents and two candidate sites, minutes between them (``inf``: no path
within reach); one existing facility already covers the first block:

>>> import numpy as np
>>> from coverage.optimize import CoverageProblem, solve
>>> minutes = np.array([[3.0, 12.0], [14.0, 4.0], [np.inf, 9.0]])
>>> problem = CoverageProblem.from_cost_matrix(
...     minutes, [100, 80, 50], threshold=10.0, existing_cost=[6.0, np.inf, np.inf]
... )
>>> solution = solve(problem, "mclp", p=1)
>>> solution.selected.tolist(), solution.objective, solution.coverage_rate_after
([1], 130.0, 1.0)
"""

from __future__ import annotations

from coverage.optimize.api import METHODS, MODELS, Method, Model, evaluate, solve, solve_colocated
from coverage.optimize.highs import AUTO_EXACT_MAX_PAIRS, LP_BOUND_MAX_PAIRS
from coverage.optimize.problem import CoverageProblem
from coverage.optimize.solution import ColocatedSolution, Solution

__all__ = [
    "AUTO_EXACT_MAX_PAIRS",
    "LP_BOUND_MAX_PAIRS",
    "METHODS",
    "MODELS",
    "ColocatedSolution",
    "CoverageProblem",
    "Method",
    "Model",
    "Solution",
    "evaluate",
    "solve",
    "solve_colocated",
]
